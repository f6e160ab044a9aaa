"""The replay engine decides from recorded steps alone: hits, streams, failures, misses."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rewind.canon.fingerprint import fingerprint
from rewind.canon.providers import Provider
from rewind.canon.redact import RedactionPolicy
from rewind.canon.websocket import Transcript, encode
from rewind.core.exchange import Frame
from rewind.errors import ReplayError
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


INGEST = "https://api.openai.com/v1/traces/ingest"
TRACE_HEADERS = (("content-type", "application/json"), ("openai-beta", "traces=v1"))


def _trace(trace_id: str) -> bytes:
    return json.dumps({"data": [{"object": "trace", "id": trace_id}]}).encode()


def _with_trace_step(trace_id: str, kind: str = "telemetry") -> ReplayEngine:
    """A recording of one LLM call, then one trace upload answered 204."""
    engine, blobs = _engine("hi")
    blobs["req2"], blobs["resp2"] = _trace(trace_id), b""
    fp = fingerprint("POST", INGEST, TRACE_HEADERS, _trace(trace_id), Provider.OPENAI)
    upload = make_step(2, fp, kind=kind, url=INGEST, status=204, provider="openai")
    return ReplayEngine([*engine.steps, upload], blobs, RedactionPolicy())


def test_a_telemetry_upload_with_a_new_body_gets_the_generic_success() -> None:
    engine = _with_trace_step("trace_recorded")
    answer = engine.decide(Incoming("POST", INGEST, TRACE_HEADERS, _trace("trace_new")))
    assert (answer.status, answer.body, answer.miss, answer.telemetry) == (204, b"", None, "openai-traces")
    assert ("x-rewind-telemetry", "openai-traces") in answer.headers
    assert engine.misses == [] and engine.telemetry_answers == 1


def test_an_identical_upload_gets_the_generic_success_too() -> None:
    engine = _with_trace_step("trace_1")
    answer = engine.decide(Incoming("POST", INGEST, TRACE_HEADERS, _trace("trace_1")))
    assert answer.step is None and answer.telemetry == "openai-traces" and answer.status == 204


def test_recorded_uploads_are_never_unused_nor_counted() -> None:
    engine = _with_trace_step("trace_1")
    assert _ask(engine, "hi").body == b"answer 1"
    assert engine.matcher.unused() == [] and len(engine.matcher.recorded) == 1
    assert [s.step for s in engine.telemetry_steps] == [2]


def test_uploads_recorded_before_the_telemetry_kind_are_recognized_by_url() -> None:
    engine = _with_trace_step("trace_1", kind="http")
    assert engine.matcher.unused() == [engine.matcher.recorded[0]]
    assert [s.step for s in engine.telemetry_steps] == [2]


def test_uploads_with_no_recording_at_all_are_answered_per_service() -> None:
    engine, _ = _engine("hi")
    otlp = engine.decide(Incoming("POST", "http://localhost:4318/v1/traces", (), b"\x0a\x00"))
    langfuse = engine.decide(
        Incoming("POST", "https://cloud.langfuse.com/api/public/ingestion", (), b'{"batch": []}')
    )
    assert (otlp.status, otlp.body, langfuse.status) == (200, b"", 207)
    assert engine.misses == [] and engine.telemetry_answers == 2


def test_a_look_alike_of_an_upload_is_still_a_miss() -> None:
    engine, _ = _engine("hi")
    answer = engine.decide(Incoming("GET", INGEST, (), b""))
    assert answer.miss is not None and answer.telemetry is None


WS_URL = "wss://api.openai.com/v1/realtime"


def _ws_engine(kind: str, transcript: bytes) -> ReplayEngine:
    fp = fingerprint("GET", WS_URL, (), b"", Provider.OPENAI)
    step = make_step(1, fp, kind=kind, method="GET", url=WS_URL, status=101, reason="Switching Protocols")
    return ReplayEngine([step], {"req1": b"", "resp1": transcript}, RedactionPolicy())


def test_a_websocket_step_answers_its_handshake_with_the_conversation() -> None:
    recorded = (Frame(1.0, False, True, b"hi"),)
    engine = _ws_engine("websocket", encode(recorded, None))
    answer = engine.decide(Incoming("GET", WS_URL, (), b""))
    assert answer.status == 101 and answer.websocket == Transcript(recorded) and answer.miss is None


def test_a_damaged_transcript_fails_before_the_agent_runs() -> None:
    with pytest.raises(ReplayError, match="step 1 .*WebSocket.* line 1"):
        _ws_engine("websocket", b"\x00garbage")


def test_a_handshake_recorded_without_its_messages_is_refused_saying_why() -> None:
    engine = _ws_engine("http", b"")  # recorded before Rewind recorded WebSocket messages
    answer = engine.decide(Incoming("GET", WS_URL, (), b""))
    assert answer.status == 502 and answer.websocket is None
    assert b"recorded without its messages" in answer.body and engine.misses == [answer.miss]


def test_a_websocket_message_miss_is_remembered() -> None:
    engine = _ws_engine("websocket", encode((), None))
    report = engine.websocket_miss(WS_URL, Frame(0.0, True, True, b"what?"))
    assert engine.misses == [report] and "what?" in report.headline()
