"""The replay engine decides from recorded steps alone: hits, streams, failures, misses."""

from __future__ import annotations

import json
from typing import Any

from rewind.canon.fingerprint import fingerprint
from rewind.canon.providers import Provider
from rewind.canon.redact import RedactionPolicy
from rewind.replay.engine import Incoming, ReplayEngine, split_chunks
from tests.unit.replay.factories import make_step

URL = "https://api.openai.com/v1/chat/completions"
HEADERS = (("content-type", "application/json"), ("authorization", "Bearer sk-test-fake"))


def _body(prompt: str, **extra: Any) -> bytes:
    return json.dumps(
        {"model": "gpt-4o", "messages": [{"role": "user", "content": prompt}], **extra}
    ).encode()


def _engine(*prompts: str, **step_fields: Any) -> tuple[ReplayEngine, dict[str, bytes]]:
    blobs: dict[str, bytes] = {}
    steps = []
    for i, prompt in enumerate(prompts, start=1):
        body = _body(prompt)
        blobs[f"req{i}"], blobs[f"resp{i}"] = body, f"answer {i}".encode()
        fp = fingerprint("POST", URL, HEADERS, body, Provider.OPENAI)
        steps.append(make_step(i, fp, **step_fields))
    return ReplayEngine(steps, blobs, RedactionPolicy()), blobs


def _ask(engine: ReplayEngine, prompt: str, **extra: Any) -> Any:
    return engine.decide(Incoming("POST", URL, HEADERS, _body(prompt, **extra)))


def test_hits_are_served_first_in_first_out() -> None:
    engine, _ = _engine("hi", "hi", "bye")
    assert [_ask(engine, "hi").body for _ in range(2)] == [b"answer 1", b"answer 2"]
    assert _ask(engine, "bye").body == b"answer 3"
    assert engine.matcher.unused() == []


def test_key_order_and_user_field_do_not_matter() -> None:
    engine, _ = _engine("hi")
    body = json.dumps({"user": "u-123", "messages": [{"content": "hi", "role": "user"}], "model": "gpt-4o"})
    answer = engine.decide(Incoming("POST", URL, (("content-type", "application/json"),), body.encode()))
    assert answer.miss is None and answer.body == b"answer 1"


def test_a_miss_is_explained_and_remembered() -> None:
    engine, _ = _engine("hi")
    answer = _ask(engine, "hello", temperature=0.2)
    assert answer.status == 404 and answer.miss is not None
    text = answer.miss.text()
    assert "step 1" in text and "messages[0]" in text and "temperature" in text
    assert b"rewind_replay_miss" in answer.body
    assert engine.misses == [answer.miss]
    assert "sk-test-fake" not in text


def test_streamed_steps_come_back_in_their_chunks() -> None:
    engine, blobs = _engine("hi", streamed=True, chunks=((1.0, 3), (5.0, 5)))
    blobs["resp1"] = b"abcdefgh"
    answer = _ask(engine, "hi")
    assert answer.streamed and answer.chunks == ((1.0, b"abc"), (5.0, b"defgh"))


def test_recorded_failures_come_back_as_failures() -> None:
    engine, _ = _engine("hi", status=None, error="connection refused", response_sha=None)
    answer = _ask(engine, "hi")
    assert answer.status == 502 and b"connection refused" in answer.body


def test_old_fingerprint_versions_are_recomputed() -> None:
    engine, _ = _engine("hi")
    step = make_step(1, "v0:deadbeef", request_headers=(("content-type", "application/json"),))
    legacy = ReplayEngine([step], engine.blobs, RedactionPolicy())
    assert _ask(legacy, "hi").body == b"answer 1"


def test_split_chunks_keeps_any_tail() -> None:
    assert split_chunks(b"abcdef", [(1.0, 2)]) == ((1.0, b"ab"), (1.0, b"cdef"))
    assert split_chunks(b"", []) == ()
