"""exchange_to_step: redaction first, then provider, usage, fingerprint and blobs."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

import pytest

from rewind.canon.fingerprint import fingerprint
from rewind.canon.providers import Provider
from rewind.canon.redact import RedactionPolicy
from rewind.canon.redactor import Redactor
from rewind.core.exchange import Chunk, Exchange
from rewind.store.blobs import iter_objects, reader_for
from rewind.store.home import Home
from rewind.store.index import Store
from rewind.store.ingest import describe, exchange_to_step, prepare, store_step
from rewind.store.writer import SessionWriter

from .conftest import make_start

SECRET = "sk-" + "test-0123456789abcdef0123456789"  # built so no key-shaped literal is committed
POLICY = RedactionPolicy.build()
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
REPLY = {
    "id": "chatcmpl-1", "model": "gpt-4o-mini-2024-07-18",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello"}}],
    "usage": {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14},
}


def make_exchange(**changes: Any) -> Exchange:
    """An OpenAI chat completion as the proxy captures it, API key included."""
    fields: dict[str, Any] = {
        "step": 1, "started_at": 1000.0, "method": "POST",
        "url": "https://api.openai.com/v1/chat/completions",
        "request_headers": (("authorization", f"Bearer {SECRET}"),
                            ("content-type", "application/json")),
        "request_body": json.dumps(CHAT).encode(), "status": 200, "reason": "OK",
        "response_headers": (("content-type", "application/json"),),
        "response_body": json.dumps(REPLY).encode(), "ttfb_ms": 40.0, "latency_ms": 55.0,
    }
    return Exchange(**{**fields, **changes})


@pytest.fixture
def writer(home: Home) -> SessionWriter:
    return SessionWriter(home, make_start())


def test_llm_call_is_described(writer: SessionWriter) -> None:
    step = exchange_to_step(make_exchange(), writer, writer.session_id, POLICY)
    assert (step.session_id, step.step, step.kind, step.provider) == (
        writer.session_id, 1, "llm", "openai")
    assert (step.model, step.input_tokens, step.output_tokens) == ("gpt-4o-mini", 11, 3)
    assert (step.status, step.latency_ms, step.ttft_ms, step.streamed) == (200, 55.0, 40.0, False)
    assert step.chunks is None and step.fingerprint.startswith("v2:")


def test_secrets_are_redacted_before_anything_is_stored(
    writer: SessionWriter, home: Home
) -> None:
    step = exchange_to_step(make_exchange(), writer, writer.session_id, POLICY)
    writer.add_step(step)
    writer.close()
    assert SECRET not in repr(step)
    journal = b"".join(p.read_bytes() for p in home.session_journal(step.session_id).iterdir())
    refs = {ref.sha: ref for ref in iter_objects(home.root)}
    blobs = b"".join(reader_for(home.root, refs).get(ref) for ref in refs.values())
    packs = b"".join(p.read_bytes() for p in home.objects_dir.iterdir())
    assert blobs and SECRET.encode() not in journal + blobs + packs


def test_fingerprint_is_of_the_redacted_request(writer: SessionWriter) -> None:
    first = exchange_to_step(make_exchange(), writer, writer.session_id, POLICY)
    other_key = make_exchange(request_headers=(("authorization", "Bearer sk-other-key-999999"),
                                               ("content-type", "application/json")))
    second = exchange_to_step(other_key, writer, writer.session_id, POLICY)
    assert first.fingerprint == second.fingerprint == fingerprint(
        "POST", first.url, first.request_headers, json.dumps(CHAT).encode(), Provider.OPENAI)


def test_bodies_are_stored_as_blobs(writer: SessionWriter, home: Home) -> None:
    writer.add_step(exchange_to_step(make_exchange(), writer, writer.session_id, POLICY))
    writer.finish(0)
    _, steps, blobs = Store(home).load(writer.session_id)
    assert json.loads(blobs[steps[0].request_sha]) == CHAT
    assert json.loads(blobs[steps[0].response_sha or ""]) == REPLY


def test_stream_keeps_chunk_times_and_lengths(writer: SessionWriter) -> None:
    events = [
        b'data: {"choices":[{"delta":{"content":"hel"}}],"model":"gpt-4o-mini"}\n\n',
        b'data: {"choices":[{"delta":{"content":"lo"}}]}\n\n',
        b'data: {"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":2}}\n\n',
        b"data: [DONE]\n\n",
    ]
    chunks = tuple(Chunk(5.0 + 10 * i, data) for i, data in enumerate(events))
    ex = make_exchange(response_headers=(("content-type", "text/event-stream"),),
                       response_body=b"".join(events), chunks=chunks, ttfb_ms=4.0)
    step = exchange_to_step(ex, writer, writer.session_id, POLICY)
    assert step.streamed and step.ttft_ms == 5.0
    assert step.chunks == tuple((c.t_ms, len(c.data)) for c in chunks)
    assert (step.input_tokens, step.output_tokens) == (7, 2)


def test_failed_exchange_has_no_response_blob(writer: SessionWriter) -> None:
    ex = make_exchange(status=None, reason="", response_headers=(), response_body=b"",
                       error="connection refused", ttfb_ms=None)
    step = exchange_to_step(ex, writer, writer.session_id, POLICY)
    assert (step.status, step.response_sha, step.error) == (None, None, "connection refused")


def test_tool_http_call_and_secret_query_parameter(writer: SessionWriter) -> None:
    ex = make_exchange(method="GET", url=f"https://weather.example.com/v1?city=Paris&key={SECRET}",
                       request_headers=(), request_body=b"", response_body=b'{"temp": 21}')
    step = exchange_to_step(ex, writer, writer.session_id, POLICY)
    assert (step.kind, step.provider, step.model) == ("http", None, None)
    assert SECRET not in step.url and "city=Paris" in step.url


def test_requests_to_one_endpoint_are_delta_coded(writer: SessionWriter, home: Home) -> None:
    history = [{"role": "user", "content": hashlib.sha256(b"%d" % n).hexdigest() * 8} for n in range(10)]
    first = make_exchange(request_body=json.dumps({**CHAT, "messages": history}).encode())
    grown = [*history, {"role": "assistant", "content": "one more turn"}]
    second = make_exchange(step=2, request_body=json.dumps({**CHAT, "messages": grown}).encode())
    a = exchange_to_step(first, writer, writer.session_id, POLICY)
    b = exchange_to_step(second, writer, writer.session_id, POLICY)
    writer.add_step(a)
    writer.add_step(b)
    writer.finish(0)
    refs = {ref.sha: ref for ref in iter_objects(home.root)}
    assert refs[b.request_sha].base == a.request_sha
    assert refs[b.request_sha].data_length * 4 < refs[a.request_sha].data_length
    _, _, blobs = Store(home).load(writer.session_id)
    assert blobs[b.request_sha] == second.request_body


def _stream(*events: bytes) -> dict[str, Any]:
    body = b"".join(events)
    return {"response_headers": (("content-type", "text/event-stream"),), "response_body": body,
            "chunks": (Chunk(1.0, body),)}


@pytest.mark.parametrize(("finished", "error_kept"), [(True, False), (False, True)])
def test_a_client_that_stopped_reading_failed_only_if_the_stream_was_cut_off(
    writer: SessionWriter, finished: bool, error_kept: bool
) -> None:
    from rewind.core.exchange import CLIENT_STOPPED_READING

    last = b',"finish_reason":"stop"' if finished else b""
    events = (b'data: {"choices":[{"index":0,"delta":{"content":"hi"}' + last + b"}]}\n\n",)
    error = f"{CLIENT_STOPPED_READING}: Client disconnected."
    step = exchange_to_step(make_exchange(error=error, **_stream(*events)), writer, "s1", POLICY)
    assert (step.error == error) is error_kept and step.status == 200
    assert (step.finish_reason == "stop") is finished


def test_storing_leaves_the_description_for_later_and_describing_completes_the_step(
    writer: SessionWriter,
) -> None:
    stored = store_step(make_exchange(), writer, writer.session_id, POLICY)
    first = exchange_to_step(make_exchange(step=2), writer, writer.session_id, POLICY)
    assert not stored.described and stored.step.input_tokens is None and stored.step.model is None
    assert stored.step.fingerprint == first.fingerprint and stored.step.request_sha == first.request_sha
    step = describe(stored, classify=lambda _step, meaning: f"tag:{meaning.kind}")
    assert stored.described and step is stored.step
    assert (step.model, step.input_tokens, step.response_model, step.tag) == (
        "gpt-4o-mini", 11, "gpt-4o-mini-2024-07-18", "tag:llm")
    assert step.meaning == first.meaning


def test_a_failed_exchange_is_described_at_once(writer: SessionWriter) -> None:
    stored = store_step(make_exchange(status=None, response_body=b"", error="reset"), writer,
                        writer.session_id, POLICY)
    assert stored.described and stored.step.error_type == "transport"


def test_a_prepared_request_is_reused_when_still_valid_and_redone_when_not(writer: SessionWriter) -> None:
    redactor = Redactor(POLICY)
    prepared = prepare(make_exchange(status=None, response_body=b""), redactor)
    plain = exchange_to_step(make_exchange(step=9), writer, writer.session_id, POLICY)
    assert prepared.fingerprint == plain.fingerprint
    marked = dataclasses.replace(prepared, fingerprint="v2:" + "f" * 64)  # shows which path ran
    reused = store_step(make_exchange(prepared=marked), writer, writer.session_id, redactor)
    assert reused.step.fingerprint == marked.fingerprint and SECRET not in repr(reused.step)
    other = make_exchange(step=2, prepared=marked, request_body=b'{"model": "gpt-4o"}')
    redone = store_step(other, writer, writer.session_id, redactor)
    assert redone.step.fingerprint not in (marked.fingerprint, plain.fingerprint)
