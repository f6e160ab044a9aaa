"""The edits ``rewind branch`` makes at its fork step: a response of the user's own
(``--response FILE [--status N]``) or a patch to the recorded request (``--request-patch
FILE``).

Both are checked before anything runs, so a typo fails the command with a message that
says what is wrong and what to do, never an agent that crashes on a body its SDK cannot
read. A response for a provider's step must be that provider's response as
``canon.meaning`` reads it: an SSE stream for a step that was streamed, JSON otherwise; with
``--status`` 400 or more it may instead be the provider's JSON error body, which is served
unstreamed (an API refuses before a stream starts). A plain HTTP step takes any bytes.

A request patch is an RFC 7396 JSON Merge Patch: objects merge key by key, ``null``
removes a key, anything else (arrays included) replaces the value whole.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rewind.canon.meaning import Meaning, response_meaning
from rewind.canon.providers import Provider, provider_named
from rewind.canon.sse import parse_sse
from rewind.core.exchange import Headers, header
from rewind.errors import ConfigError
from rewind.replay.faults import Chunks, Serve, compact_json, event_chunks, reason_phrase, served_headers
from rewind.store.models import StepRecord

__all__ = ["edited_response", "load_json_file", "merge_patch", "patch_request"]

_SSE_STARTS = (b"data:", b"event:", b"id:", b"retry:", b":")
_RESPONSE = "the --response body"


# --- request patches ------------------------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 ``MergePatch(target, patch)``, as the RFC's pseudo-code; the inputs are
    left as they were (the result may share their unchanged parts)."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for name, value in patch.items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = merge_patch(merged.get(name), value)
    return merged


def load_json_file(path: Path, option: str) -> Any:
    """The JSON value in the file an ``option`` names; ``ConfigError`` naming both when it
    cannot be read or is not JSON (with the line and column of the mistake)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{option} {path}: no such file") from None
    except OSError as exc:
        raise ConfigError(f"{option} {path} cannot be read: {exc.strerror or exc}") from None
    return _strict_json(data, f"{option} {path}")


def patch_request(body: bytes, patch: Any, step: int) -> bytes:
    """The recorded request body with ``patch`` merged in, as compact UTF-8 JSON."""
    try:
        recorded = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise ConfigError(
            f"step {step}'s request body is not JSON, so --request-patch cannot apply",
            hint="--request-patch edits JSON requests; branch at a step whose request is JSON",
        ) from None
    return compact_json(merge_patch(recorded, patch))


def _strict_json(data: bytes, what: str) -> Any:
    """Strict JSON (UTF-8, a byte-order mark allowed, no NaN), or ``ConfigError`` saying
    where ``what`` goes wrong."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{what} is not UTF-8 text (byte {exc.start} is {data[exc.start]:#04x})") from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise ConfigError(f"{what} is not valid JSON: {exc.msg} at {where}") from None
    except (ValueError, RecursionError) as exc:
        raise ConfigError(f"{what} is not valid JSON: {exc}") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


# --- responses ------------------------------------------------------------------------------


def edited_response(step: StepRecord, body: bytes, status: int | None = None) -> Serve:
    """The answer ``rewind branch --response`` serves at ``step``: ``body`` with ``status``
    (default: the recorded one), checked to be what the step's client can read."""
    code = _status(step, status)
    provider = provider_named(step.provider)
    if provider is None:
        return _plain(step, body, code)
    if _sse_step(step):
        return _edited_stream(step, provider, body, code)
    return _edited_json(step, provider, body, code)


def _status(step: StepRecord, given: int | None) -> int:
    status = given if given is not None else step.status if step.status is not None else 200
    if not 100 <= status <= 599:
        raise ConfigError(f"--status {status} is not an HTTP status: give a number from 100 to 599")
    return status


def _sse_step(step: StepRecord) -> bool:
    """A step streamed as server-sent events (Gemini also streams a JSON array)."""
    content_type = (header(step.response_headers, "content-type") or "").lower()
    return _streamed(step) and "json" not in content_type


def _streamed(step: StepRecord) -> bool:
    return step.streamed or step.chunks is not None


def _plain(step: StepRecord, body: bytes, status: int) -> Serve:
    """Any bytes, streamed as SSE events (or whole) when the recording was streamed."""
    chunks = None
    if _streamed(step):
        chunks = event_chunks(body) if parse_sse(body) else ((0.0, body),) if body else ()
    return _serve(step, status, served_headers(step.response_headers), body, chunks)


def _edited_stream(step: StepRecord, provider: Provider, body: bytes, status: int) -> Serve:
    if _looks_like_json(body):
        if status >= 400:
            return _edited_json(step, provider, body, status)
        raise ConfigError(
            f"step {step.step} was streamed, so {_RESPONSE} must be a stream of server-sent "
            "events ('data: {...}' lines, blank-line separated), not JSON",
            hint="a JSON error body is served unstreamed when --status is 400 or more",
        )
    if not parse_sse(body):
        raise ConfigError(f"step {step.step} was streamed, but {_RESPONSE} holds no server-sent event")
    _check_meaning(step, provider, body, status, "text/event-stream", "stream")
    headers = _with_content_type(step.response_headers, "event-stream", "text/event-stream")
    return _serve(step, status, headers, body, event_chunks(body))


def _edited_json(step: StepRecord, provider: Provider, body: bytes, status: int) -> Serve:
    """A JSON body; streamed (as one chunk) only in place of a streamed JSON array (Gemini's
    other stream form), and never as an error."""
    if body.lstrip().startswith(_SSE_STARTS):
        raise ConfigError(
            f"step {step.step}'s response was JSON, so {_RESPONSE} must be JSON too, not server-sent events"
        )
    _strict_json(body, _RESPONSE)
    meaning = _check_meaning(step, provider, body, status, "application/json", "response")
    if status < 400 and _only_an_error(meaning):
        raise ConfigError(
            f"{_RESPONSE} is a {provider.value} error body but the status is {status}",
            hint="give the error's status with --status (e.g. --status 429)",
        )
    headers = _with_content_type(step.response_headers, "json", "application/json")
    chunks = ((0.0, body),) if _streamed(step) and status < 400 else None
    return _serve(step, status, headers, body, chunks)


def _check_meaning(
    step: StepRecord, provider: Provider, body: bytes, status: int, content_type: str, form: str
) -> Meaning:
    """What ``body`` means to ``provider``'s reader; ``ConfigError`` when it means nothing."""
    meaning = response_meaning(provider, status, content_type, body)
    if meaning.kind != "llm":
        raise ConfigError(
            f"{_RESPONSE} is not a {provider.value} {form} that step {step.step}'s client could read",
            hint=f"expected {_SHAPES[provider]}; start from the recorded one, which "
            f"`rewind inspect SESSION --step {step.step} --raw` prints",
        )
    return meaning


def _only_an_error(meaning: Meaning) -> bool:
    """An error body and nothing else. (A stream may carry an error event after a 200: that
    is how providers fail mid-stream, so only JSON bodies are held to this.)"""
    said = meaning.text or meaning.tool_calls or meaning.finish_reason or meaning.refusal
    return not said and (meaning.error_type is not None or meaning.error_message is not None)


_SHAPES = {
    Provider.OPENAI: "a chat.completion (choices[].message) or a Responses API response (output[])",
    Provider.ANTHROPIC: 'a message ({"type": "message", "content": [...]})',
    Provider.GEMINI: "a GenerateContentResponse (candidates[].content.parts)",
}


def _looks_like_json(body: bytes) -> bool:
    return body.lstrip()[:1] in (b"{", b"[")


def _with_content_type(recorded: Headers, kind: str, default: str) -> Headers:
    """Recorded headers fit to serve; the recorded content type when it is of ``kind``."""
    content_type = header(recorded, "content-type") or ""
    chosen = content_type if kind in content_type.lower() else default
    kept = [(name, value) for name, value in served_headers(recorded) if name.lower() != "content-type"]
    return (("content-type", chosen), *kept)


def _serve(step: StepRecord, status: int, headers: Headers, body: bytes, chunks: Chunks | None) -> Serve:
    reason = step.reason if status == step.status and step.reason else reason_phrase(status)
    return Serve(status, reason, headers, body, chunks)
