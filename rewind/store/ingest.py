"""From a captured ``Exchange`` to a stored ``StepRecord``: where capture, canon and store meet.

Order matters: the exchange is redacted first, so the fingerprint, the blobs and every
field of the step are computed from redacted bytes only. The caller then hands the
returned step to ``SessionWriter.add_step``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from rewind.canon.fingerprint import fingerprint
from rewind.canon.meaning import Meaning, response_meaning
from rewind.canon.providers import (
    Provider,
    detect_provider,
    extract_model,
    extract_response_model,
    extract_usage,
    is_llm_call,
)
from rewind.canon.redact import PreparedRequest, RedactionPolicy, redact_exchange
from rewind.canon.redactor import Redactor
from rewind.canon.telemetry import is_telemetry
from rewind.canon.websocket import encode as encode_transcript
from rewind.canon.websocket import transcript_meaning
from rewind.core.exchange import CLIENT_STOPPED_READING, Exchange, Frame, header
from rewind.store.journal import chain_key
from rewind.store.models import StepRecord
from rewind.store.writer import SessionWriter

# Names a failed step's failure (``rewind.analysis.tags``, which the caller passes in).
Classify = Callable[[StepRecord, Meaning], "str | None"]


def exchange_to_step(
    ex: Exchange, writer: SessionWriter, session_id: str, redaction: Redactor | RedactionPolicy,
    classify: Classify | None = None,
) -> StepRecord:
    """Redact ``ex`` (with a session's redactor, which learns its secrets, or a bare policy),
    store its bodies as blobs and describe it as a step, with what its response means to
    the agent and, given ``classify``, its failure tag."""
    return describe(store_step(ex, writer, session_id, redaction), classify)


@dataclass(frozen=True)
class Stored:
    """An exchange redacted, its bodies stored and fingerprinted (``step``): all that replay
    needs. What its response means is not read yet (``describe``)."""

    step: StepRecord
    red: Exchange
    provider: Provider | None

    @property
    def described(self) -> bool:
        return self.step.meaning is not None


@dataclass(frozen=True)
class Prepared:
    """A request redacted and fingerprinted while its response was awaited."""

    redaction: PreparedRequest
    fingerprint: str


def prepare(ex: Exchange, redactor: Redactor) -> Prepared:
    """The request-side work of storing ``ex`` (its response not there yet), done while the
    upstream answers: ``store_step`` reuses it if no secret was learned since."""
    redaction = redactor.prepare_request(ex)
    red = replace(ex, url=redaction.url)  # off the response's path: a copy is cheap enough
    provider = detect_provider(red.host, red.path, red.listener)
    fp = fingerprint(ex.method, redaction.url, redaction.request_headers, redaction.request_body, provider)
    return Prepared(redaction, fp)


def store_step(
    ex: Exchange, writer: SessionWriter, session_id: str, redaction: Redactor | RedactionPolicy,
) -> Stored:
    """The part of recording an exchange that must be on disk before its response reaches
    the agent. An exchange that failed is described at once: whether a client that stopped
    reading lost anything depends on what the stream said."""
    red, known = _reusing(ex, redaction)
    provider = detect_provider(red.host, red.path, red.listener)
    stored = Stored(_step(red, provider, writer, session_id, known), red, provider)
    if red.error is not None:
        describe(stored)
    return stored


def describe(stored: Stored, classify: Classify | None = None) -> StepRecord:
    """The stored step with its model, token usage, what its response means (digest,
    finish reason, error type, answering model) and, given ``classify``, its failure tag;
    set on the step itself (no copy of the whole record)."""
    step, red, provider = stored.step, stored.red, stored.provider
    content_type = header(red.response_headers, "content-type")
    meaning = _meaning(provider, red, content_type)
    if red.error is not None and red.frames is not None:  # a conversation cut short
        meaning = replace(meaning, error_type="transport", error_message=red.error)
    elif red.error is not None and not _complete_anyway(red.error, meaning):
        meaning = response_meaning(provider, red.status, content_type, red.response_body, red.error)
    elif red.error is not None:
        step.error = None  # the client read the whole stream, then hung up
    usage = extract_usage(provider, red.response_body, content_type)
    step.input_tokens, step.output_tokens = usage.input_tokens, usage.output_tokens
    step.cache_read_tokens, step.cache_write_tokens = usage.cache_read_tokens, usage.cache_write_tokens
    step.model = extract_model(provider, red.path, red.request_body, red.response_body)
    step.meaning, step.error_type = meaning.digest(), meaning.error_type
    step.finish_reason = "refusal" if meaning.refusal else meaning.finish_reason
    step.response_model = extract_response_model(provider, red.response_body)
    if classify is not None:
        step.tag = classify(step, meaning)
    return step


def _meaning(provider: Provider | None, red: Exchange, content_type: str | None) -> Meaning:
    if red.frames is not None:
        return transcript_meaning(red.frames, red.close)
    return response_meaning(provider, red.status, content_type, red.response_body)


def _complete_anyway(error: str, meaning: Meaning) -> bool:
    """A client that stopped reading a stream that had ended, by its provider's format
    (a finish reason), lost nothing: the exchange did not fail."""
    return error.startswith(CLIENT_STOPPED_READING) and meaning.finish_reason is not None


def _reusing(ex: Exchange, redaction: Redactor | RedactionPolicy) -> tuple[Exchange, str | None]:
    """``ex`` redacted, and its fingerprint when its prepared request could be reused."""
    prepared = ex.prepared
    if isinstance(prepared, Prepared) and isinstance(redaction, Redactor) and ex.frames is None:
        red = redaction.redact_prepared(ex, prepared.redaction)
        if red is not None:
            return red, prepared.fingerprint
    return _redacted(ex, redaction), None


def _step(
    red: Exchange, provider: Provider | None, writer: SessionWriter, session_id: str,
    known_fingerprint: str | None = None,
) -> StepRecord:
    request_sha = writer.put_blob(red.request_body, chain_of(red, "request"))
    return StepRecord(
        session_id=session_id, step=red.step,
        kind=step_kind(red, provider),
        method=red.method, url=red.url, started_at=round(red.started_at, 6),
        fingerprint=known_fingerprint or fingerprint(
            red.method, red.url, red.request_headers, red.request_body, provider),
        request_headers=red.request_headers,
        request_sha=request_sha,
        provider=_name(provider),
        status=red.status, reason=red.reason, error=red.error,
        response_headers=red.response_headers, response_sha=_response_sha(red, writer, request_sha),
        latency_ms=_ms(red.latency_ms), ttft_ms=_ms(_ttft(red)), streamed=red.streamed,
        chunks=_chunks(red),
    )


def step_kind(red: Exchange, provider: Provider | None) -> str:
    """``websocket`` for a WebSocket conversation, ``telemetry`` for a tracing or analytics
    upload, ``llm`` for a model call, else ``http``."""
    if red.frames is not None:
        return "websocket"
    if is_telemetry(red.host, red.path, red.method):
        return "telemetry"
    return "llm" if is_llm_call(provider, red.path) else "http"


def _redacted(ex: Exchange, redaction: Redactor | RedactionPolicy) -> Exchange:
    red = _redact(ex, redaction)
    if ex.frames is None:
        return red
    frames = tuple(_redacted_frame(f, ex, redaction) for f in ex.frames)  # learns their secrets
    frames = tuple(_redacted_frame(f, ex, redaction) for f in frames)  # scrubs later ones from earlier
    return replace(red, frames=frames, response_body=encode_transcript(frames, red.close))


def _redact(ex: Exchange, redaction: Redactor | RedactionPolicy) -> Exchange:
    if isinstance(redaction, Redactor):
        return redaction.redact_exchange(ex)
    return redact_exchange(ex, redaction)


def _redacted_frame(frame: Frame, ex: Exchange, redaction: Redactor | RedactionPolicy) -> Frame:
    """A WebSocket message redacted as a body would be, in the direction it went."""
    carrier = Exchange(ex.step, ex.started_at, "WEBSOCKET", ex.url)
    if frame.from_client:
        data = _redact(replace(carrier, request_body=frame.data), redaction).request_body
    else:
        data = _redact(replace(carrier, response_body=frame.data), redaction).response_body
    return frame if data == frame.data else replace(frame, data=data)


def _name(provider: Provider | None) -> str | None:
    return None if provider is None else provider.value


def _response_sha(red: Exchange, writer: SessionWriter, request_sha: str) -> str | None:
    """No blob when no response came back at all. A response is delta-coded against
    its own request (which it often quotes) when no earlier recording has its twin."""
    if red.status is None and not red.response_body:
        return None
    return writer.put_blob(red.response_body, chain_of(red, "response"), near=request_sha)


def chain_of(red: Exchange, part: str) -> str:
    """Bodies of one endpoint form a delta chain: an agent resends its conversation."""
    return chain_key(part, red.method, red.url)


def _ms(value: float | None) -> float | None:
    """Times are kept to the microsecond: finer digits are noise that costs disk."""
    return None if value is None else round(value, 3)


def _ttft(red: Exchange) -> float | None:
    """Time to the first body chunk for streams, else time to the first byte."""
    if red.chunks:
        return red.chunks[0].t_ms
    return red.ttfb_ms


def _chunks(red: Exchange) -> tuple[tuple[float, int], ...] | None:
    """(t_ms, length) per chunk; redaction keeps the body the join of the chunks."""
    if red.chunks is None:
        return None
    return tuple((round(c.t_ms, 3), len(c.data)) for c in red.chunks)
