"""The faults ``rewind mutate`` serves in place of one recorded response.

Each fault answers what an agent must survive in production, shaped as its provider
really sends it, so the SDK raises (or fails to parse) exactly as it would upstream:

    429, 500, 503   the provider's own JSON error body (even for a streamed step: an API
                    refuses before a stream starts); 429 carries ``retry-after``
    timeout         ``Hang``: no answer until the client gives up
    reset           ``Reset``: the connection drops without an answer
    truncate        the recorded stream cut after the first half of its events (never
                    its last), or the first half of a JSON body; then the connection
                    closes without the stream's end
    empty           a 200 (or the recorded status) with no body, or a stream without events
    bad_tool_args   the first tool call's arguments cut to a prefix that is not JSON

Tool arguments travel as JSON *text* in OpenAI's formats (chat ``function.arguments``,
Responses ``arguments``), so they are cut in place. Anthropic's ``tool_use.input`` and
Gemini's ``functionCall.args`` are JSON *objects* on the wire, which cannot be malformed
and still be JSON: they become a string holding the cut text, which an SDK that expects
an object rejects or hands to the agent as it is. Streams are rewritten event by event:
the cut text goes into the first argument fragment of the first tool call, its later
fragments become empty, and the events that repeat the arguments whole (the Responses
API's ``.done``, ``output_item.done`` and final response) agree with it. Events the fault
does not touch keep their bytes; a rewritten one keeps its ``event:`` and other lines.

Everything here is pure: recorded bytes in, the answer to serve out. Every ``Serve``
carries ``x-rewind-fault: <name>``, so whoever reads the traffic can tell it was injected.
"""

from __future__ import annotations

import bisect
import copy
import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from rewind.canon.jsonget import as_dict, dicts
from rewind.canon.meaning import response_meaning
from rewind.canon.providers import Provider, provider_named
from rewind.canon.sse import parse_sse
from rewind.core.exchange import HOP_HEADERS, Headers, header
from rewind.errors import ConfigError
from rewind.store.models import StepRecord

__all__ = [
    "FAULT_HEADER",
    "FAULT_NAMES",
    "FaultAction",
    "Hang",
    "Reset",
    "Serve",
    "compact_json",
    "event_chunks",
    "fault_action",
    "not_applicable",
    "parse_faults",
    "reason_phrase",
    "served_headers",
]

FAULT_NAMES: tuple[str, ...] = ("429", "500", "503", "timeout", "reset", "truncate", "empty", "bad_tool_args")
FAULT_HEADER = "x-rewind-fault"
Chunks = tuple[tuple[float, bytes], ...]
# A recorded body is served decoded: its encoding header would lie, and framing is recomputed.
_UNSERVED_HEADERS = HOP_HEADERS | {"content-encoding"}
_INJECTED = "(fault injected by `rewind mutate`)"
_JSON = "application/json"


@dataclass(frozen=True)
class Serve:
    """A response served instead of the recorded one.

    ``chunks`` not ``None``: play it as a stream of these ``(t_ms, bytes)`` chunks.
    ``truncated``: end by closing the connection, without the stream's end."""

    status: int
    reason: str
    headers: Headers
    body: bytes
    chunks: Chunks | None = None
    truncated: bool = False


@dataclass(frozen=True)
class Hang:
    """No answer until the client gives up (its own timeout is what is tested)."""


@dataclass(frozen=True)
class Reset:
    """The connection is dropped without an answer."""


FaultAction = Serve | Hang | Reset


# --- choosing faults ------------------------------------------------------------------------


def parse_faults(text: str | None) -> tuple[str, ...]:
    """The faults a comma-separated list names, in order, once each; ``None``, ``""`` and
    ``"all"`` name every fault. ``ConfigError`` listing the valid names otherwise."""
    names = [name.strip().lower() for name in (text or "all").split(",") if name.strip()]
    chosen: list[str] = []
    for name in names or ["all"]:
        for fault in _expanded(name):
            if fault not in chosen:
                chosen.append(fault)
    return tuple(chosen)


def _expanded(name: str) -> tuple[str, ...]:
    return FAULT_NAMES if name == "all" else (_known(name),)


def _known(fault: str) -> str:
    if fault not in FAULT_NAMES:
        valid = ", ".join(FAULT_NAMES)
        raise ConfigError(f"unknown fault {fault!r}: expected a comma-separated list of {valid}, or all")
    return fault


def not_applicable(fault: str, step: StepRecord, body: bytes) -> str | None:
    """Why ``fault`` cannot be injected at this recorded step, or ``None`` when it can.

    A fault that would serve the recording unchanged is not applicable: there is nothing
    to cut in an empty body, and no arguments to break without a tool call."""
    _known(fault)
    if fault in ("truncate", "empty") and not body:
        return "the response body is empty"
    if fault == "bad_tool_args":
        return _why_no_bad_args(step, body)
    return None


def fault_action(
    fault: str,
    step: StepRecord,
    body: bytes,
    chunks: Chunks | None,
    retry_after_s: int = 1,
) -> FaultAction:
    """What to answer, instead of the recorded response, to inject ``fault``.

    ``body`` is the recorded (decoded) response body; ``chunks`` its recorded chunks for a
    streamed step (``engine.split_chunks``), ``None`` otherwise. ``ConfigError`` when the
    fault is unknown or not applicable here (ask ``not_applicable`` first)."""
    _known(fault)
    if fault in _ERROR_STATUSES:
        return _error(fault, provider_named(step.provider), retry_after_s)
    if fault == "timeout":
        return Hang()
    if fault == "reset":
        return Reset()
    why = not_applicable(fault, step, body)
    if why is not None:
        raise ConfigError(f"fault {fault} cannot be injected at step {step.step}: {why}")
    return _REWRITES[fault](fault, _Recorded.of(step, body, chunks))


# --- what the recording holds ---------------------------------------------------------------


@dataclass(frozen=True)
class _Recorded:
    """A recorded response, as the faults that rewrite it read it."""

    step: StepRecord
    provider: Provider | None
    body: bytes
    chunks: Chunks | None

    @classmethod
    def of(cls, step: StepRecord, body: bytes, chunks: Chunks | None) -> _Recorded:
        streamed = chunks is not None or step.streamed or step.chunks is not None
        layout = chunks if chunks is not None else ((0.0, body),) if streamed else None
        return cls(step, provider_named(step.provider), body, layout)

    @property
    def status(self) -> int:
        return self.step.status if self.step.status is not None else 200

    @property
    def content_type(self) -> str | None:
        return header(self.step.response_headers, "content-type")

    @property
    def sse(self) -> bool:
        """A stream of server-sent events (Gemini's other stream is a JSON array)."""
        return self.chunks is not None and "json" not in (self.content_type or "").lower()

    def serve(self, fault: str, body: bytes, chunks: Chunks | None, truncated: bool = False) -> Serve:
        """The recorded status and headers around a new body."""
        headers = (*served_headers(self.step.response_headers), (FAULT_HEADER, fault))
        return Serve(self.status, reason_phrase(self.status), headers, body, chunks, truncated)


def served_headers(headers: Headers) -> Headers:
    """Recorded headers fit to serve with another body: framing and encoding dropped (the
    body is served decoded, and its length is recomputed)."""
    return tuple((name, value) for name, value in headers if name.lower() not in _UNSERVED_HEADERS)


def reason_phrase(status: int) -> str:
    """The standard reason phrase of ``status``; ``""`` for a status without one."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


# --- 429, 500, 503 --------------------------------------------------------------------------

_ERROR_STATUSES = {"429": 429, "500": 500, "503": 503}
# What each provider says, and its error type, for each status (their documented errors).
_OPENAI_ERRORS = {
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests. Please try again in {s}s."),
    500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}
_ANTHROPIC_ERRORS = {
    429: ("rate_limit_error", "This request would exceed the rate limit for your organization."),
    500: ("api_error", "Internal server error"),
    503: ("overloaded_error", "Overloaded"),
}
_GEMINI_ERRORS = {
    429: ("RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
    500: ("INTERNAL", "An internal error has occurred. Please retry or report the problem."),
    503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
}


def _error(fault: str, provider: Provider | None, retry_after_s: int) -> Serve:
    """The provider's own error answer, never streamed."""
    status = _ERROR_STATUSES[fault]
    content_type, body = _error_body(provider, status, retry_after_s)
    retry = (("retry-after", str(retry_after_s)),) if status == 429 else ()
    headers = (("content-type", content_type), *retry, (FAULT_HEADER, fault))
    return Serve(status, reason_phrase(status), headers, body)


def _error_body(provider: Provider | None, status: int, retry_after_s: int) -> tuple[str, bytes]:
    """Content type and body; other hosts get the error as text."""
    if provider is None:
        return "text/plain; charset=utf-8", f"{status} {reason_phrase(status)} {_INJECTED}\n".encode()
    return _ERROR_SHAPES[provider](status, retry_after_s)


def _openai_error(status: int, retry_after_s: int) -> tuple[str, bytes]:
    kind, code, message = _OPENAI_ERRORS[status]
    text = f"{message.format(s=retry_after_s)} {_INJECTED}"
    return _JSON, compact_json({"error": {"message": text, "type": kind, "param": None, "code": code}})


def _anthropic_error(status: int, retry_after_s: int) -> tuple[str, bytes]:
    kind, message = _ANTHROPIC_ERRORS[status]
    return _JSON, compact_json(
        {"type": "error", "error": {"type": kind, "message": f"{message} {_INJECTED}"}}
    )


def _gemini_error(status: int, retry_after_s: int) -> tuple[str, bytes]:
    name, message = _GEMINI_ERRORS[status]
    error = {"code": status, "message": f"{message} {_INJECTED}", "status": name}
    return "application/json; charset=UTF-8", compact_json({"error": error})


_ERROR_SHAPES: dict[Provider, Callable[[int, int], tuple[str, bytes]]] = {
    Provider.OPENAI: _openai_error,
    Provider.ANTHROPIC: _anthropic_error,
    Provider.GEMINI: _gemini_error,
}


def compact_json(value: Any) -> bytes:
    """``value`` as compact UTF-8 JSON, as providers send it."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# --- truncate and empty ---------------------------------------------------------------------


def _truncated(fault: str, recorded: _Recorded) -> Serve:
    """The first half of the stream's events (never the last), or of a JSON body's bytes."""
    if recorded.chunks is None:
        half = recorded.body[: len(recorded.body) // 2]
        return recorded.serve(fault, half, ((0.0, half),), truncated=True)
    units = _stream_units(recorded)
    kept = tuple(units[: len(units) // 2])
    return recorded.serve(fault, b"".join(data for _, data in kept), kept, truncated=True)


def _stream_units(recorded: _Recorded) -> list[tuple[float, bytes]]:
    """The pieces a stream can be cut between: its SSE events, else its recorded chunks."""
    chunks = recorded.chunks or ()
    if recorded.sse:
        return list(event_chunks(recorded.body, chunks))
    return [(t_ms, data) for t_ms, data in chunks if data]


def _empty(fault: str, recorded: _Recorded) -> Serve:
    """A stream that ends without an event, or a 200 with no body."""
    if recorded.chunks is not None:
        return recorded.serve(fault, b"", ())
    served = recorded.serve(fault, b"", None)
    return Serve(200, reason_phrase(200), served.headers, b"")


# --- server-sent events as bytes --------------------------------------------------------------

# A line break followed by another (a blank line) ends an SSE event; "\r\n" is one break.
_EVENT_END = re.compile(rb"(?:\r\n|\r(?!\n)|\n)(?:\r\n|\r(?!\n)|\n)")
_LINE_BREAK = re.compile(rb"\r\n|\r|\n")


def _sse_events(body: bytes) -> list[tuple[int, bytes]]:
    """``(offset, bytes)`` of each SSE event of ``body``, its framing included, so the
    events join back into ``body``. A block that dispatches no event (a comment, stray
    blank lines) travels with the event after it, or with the last one at the end."""
    events: list[tuple[int, bytes]] = []
    pending = 0  # where the bytes not yet given to an event start
    for start, end in _blocks(body):
        if parse_sse(body[start:end]):
            events.append((pending, body[pending:end]))
            pending = end
    if pending < len(body):
        if events:
            offset, data = events.pop()
            events.append((offset, data + body[pending:]))
        else:
            events.append((pending, body[pending:]))
    return events


def _blocks(body: bytes) -> Iterator[tuple[int, int]]:
    start = 0
    for found in _EVENT_END.finditer(body):
        yield start, found.end()
        start = found.end()
    if start < len(body):
        yield start, len(body)


def event_chunks(body: bytes, chunks: Sequence[tuple[float, bytes]] = ()) -> Chunks:
    """One chunk per SSE event of ``body``, at the recorded time of the chunk the event
    started in (0.0 without ``chunks``)."""
    events = _sse_events(body)
    times = _times([offset for offset, _ in events], chunks)
    return tuple(zip(times, (data for _, data in events), strict=True))


def _times(offsets: Sequence[int], chunks: Sequence[tuple[float, bytes]]) -> list[float]:
    """The recorded time of the chunk holding each body offset."""
    starts, times, at = [], [], 0
    for t_ms, data in chunks:
        starts.append(at)
        times.append(t_ms)
        at += len(data)
    return [times[bisect.bisect_right(starts, o) - 1] if starts else 0.0 for o in offsets]


def _with_data(event: bytes, data: str) -> bytes:
    """``event`` with its ``data:`` lines replaced by one line holding ``data``; its other
    lines (``event:``, ``id:``, comments) and line endings kept."""
    content = event.rstrip(b"\r\n")
    found = _LINE_BREAK.search(event)
    eol = found.group() if found else b"\n"
    lines: list[bytes] = []
    placed = False
    for line in _LINE_BREAK.split(content):
        if line.partition(b":")[0] != b"data":
            lines.append(line)
        elif not placed:
            lines.append(b"data: " + data.encode("utf-8"))
            placed = True
    return eol.join(lines) + event[len(content) :]


# --- bad tool arguments -----------------------------------------------------------------------

_Slot = tuple[dict[str, Any], str]  # an object and the key holding (part of) the arguments


@dataclass
class _Slots:
    """Where the first tool call's arguments sit: ``fragments`` that join into them (stream
    deltas), and ``wholes`` that each hold them entire."""

    fragments: list[_Slot] = field(default_factory=list)
    wholes: list[_Slot] = field(default_factory=list)

    def text(self) -> str | None:
        """The arguments as JSON text; ``None`` when there is no tool call to break."""
        if self.fragments:
            return "".join(str(holder.get(key) or "") for holder, key in self.fragments)
        if self.wholes:
            holder, key = self.wholes[0]
            value = holder.get(key)
            return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        return None

    def write(self, cut: str) -> None:
        for position, (holder, key) in enumerate(self.fragments):
            holder[key] = cut if position == 0 else ""
        for holder, key in self.wholes:
            holder[key] = cut


def _cut_json(text: str) -> str:
    """A prefix of ``text`` (about half) that is not valid JSON; ``"{"`` when none is."""
    for end in range(len(text) // 2, 0, -1):
        if not _parses(text[:end]):
            return text[:end]
    return "{"


def _parses(text: str) -> bool:
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        return False
    return True


def _broken(slots: _Slots) -> bool:
    """Cut the arguments ``slots`` point at; whether there were any."""
    text = slots.text()
    if text is None:
        return False
    slots.write(_cut_json(text))
    return True


def _why_no_bad_args(step: StepRecord, body: bytes) -> str | None:
    meaning = response_meaning(provider_named(step.provider), step.status, _content_type(step), body)
    if not meaning.tool_calls:
        return "the response has no tool call"
    if _bad_tool_body(_Recorded.of(step, body, None)) is None:
        return "the response's tool call arguments are in a form that cannot be rewritten"
    return None


def _content_type(step: StepRecord) -> str | None:
    return header(step.response_headers, "content-type")


def _bad_tool_args(fault: str, recorded: _Recorded) -> Serve:
    chunks = _bad_tool_body(recorded)
    assert chunks is not None, "not_applicable found the tool call first"
    body = b"".join(data for _, data in chunks)
    return recorded.serve(fault, body, tuple(chunks) if recorded.chunks is not None else None)


def _bad_tool_body(recorded: _Recorded) -> list[tuple[float, bytes]] | None:
    """The response with its first tool call's arguments cut, as chunks (one for a JSON
    body); ``None`` when no tool call was found to cut."""
    provider = recorded.provider
    if provider is None:
        return None
    if recorded.sse:
        return _bad_stream(provider, recorded)
    value = _strict_json(recorded.body)
    if value is _NOT_JSON or not _broken(_JSON_SLOTS[provider](_objects(value))):
        return None
    first = recorded.chunks[0][0] if recorded.chunks else 0.0
    return [(first, compact_json(value))]


def _bad_stream(provider: Provider, recorded: _Recorded) -> list[tuple[float, bytes]] | None:
    events = list(event_chunks(recorded.body, recorded.chunks or ()))
    parsed = [_event_object(data) for _, data in events]
    found = _STREAM_SLOTS[provider]([(obj, name) for obj, name, _ in parsed if obj is not None])
    if not _broken(found):
        return None
    return [
        (t_ms, data if obj is None or obj == original else _with_data(data, compact_json(obj).decode()))
        for (t_ms, data), (obj, _, original) in zip(events, parsed, strict=True)
    ]


_NOT_JSON = object()


def _strict_json(data: bytes | str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return _NOT_JSON


def _event_object(event: bytes) -> tuple[dict[str, Any] | None, str | None, Any]:
    """An event's JSON object (to rewrite), its name, and a copy to compare it with."""
    parsed = parse_sse(event)
    value = _strict_json(parsed[0].data) if parsed else _NOT_JSON
    if not isinstance(value, dict):
        return None, None, None
    return value, parsed[0].event, copy.deepcopy(value)


def _objects(value: Any) -> list[dict[str, Any]]:
    """A JSON object, or the objects of a JSON array (Gemini's streamed array form)."""
    return dicts(value) if isinstance(value, list) else dicts([value])


def _choice_zero(obj: dict[str, Any]) -> dict[str, Any]:
    """The choice an agent reads (``canon.meaning`` reads choice 0 too)."""
    return next((c for c in dicts(obj.get("choices")) if c.get("index", 0) == 0), {})


# - where each provider's arguments are, in a JSON body -


def _openai_json(objects: list[dict[str, Any]]) -> _Slots:
    for obj in objects:
        found = _chat_message_slot(obj) if "choices" in obj else _response_output_slot(as_dict(obj))
        if found is not None:
            return _Slots(wholes=[found])
    return _Slots()


def _chat_message_slot(obj: dict[str, Any]) -> _Slot | None:
    message = as_dict(_choice_zero(obj).get("message"))
    call = next(iter(dicts(message.get("tool_calls"))), None)
    function = as_dict(call.get("function")) if call is not None else as_dict(message.get("function_call"))
    return (function, "arguments") if "arguments" in function else None


def _response_output_slot(response: dict[str, Any]) -> _Slot | None:
    """The first function call of a Responses API ``response`` object."""
    if response.get("object") != "response":
        return None
    calls = (item for item in dicts(response.get("output")) if item.get("type") == "function_call")
    return next(((item, "arguments") for item in calls), None)


def _anthropic_json(objects: list[dict[str, Any]]) -> _Slots:
    blocks = (b for obj in objects if obj.get("type") == "message" for b in dicts(obj.get("content")))
    found = next(((block, "input") for block in blocks if block.get("type") == "tool_use"), None)
    return _Slots(wholes=[found] if found else [])


def _gemini_json(objects: list[dict[str, Any]]) -> _Slots:
    found = next(_gemini_calls(objects), None)
    return _Slots(wholes=[(found, "args")] if found is not None else [])


def _gemini_calls(objects: Sequence[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for obj in objects:
        candidate = next((c for c in dicts(obj.get("candidates")) if c.get("index", 0) == 0), {})
        for part in dicts(as_dict(candidate.get("content")).get("parts")):
            call = part.get("functionCall", part.get("function_call"))
            if isinstance(call, dict):
                yield call


_JSON_SLOTS: dict[Provider, Callable[[list[dict[str, Any]]], _Slots]] = {
    Provider.OPENAI: _openai_json,
    Provider.ANTHROPIC: _anthropic_json,
    Provider.GEMINI: _gemini_json,
}


# - where each provider's arguments are, in a stream -

_Events = list[tuple[dict[str, Any], str | None]]  # each event's JSON object and its name


def _openai_stream(events: _Events) -> _Slots:
    if any("choices" in obj for obj, _ in events):
        return _chat_stream(events)
    return _responses_stream(events)


def _chat_stream(events: _Events) -> _Slots:
    """The ``delta.tool_calls`` fragments of the first call (by its ``index``)."""
    slots, first = _Slots(), None
    for obj, _ in events:
        for position, call in enumerate(dicts(as_dict(_choice_zero(obj).get("delta")).get("tool_calls"))):
            index = call.get("index", position)
            first = index if first is None else first
            function = call.get("function")
            if index == first and isinstance(function, dict) and isinstance(function.get("arguments"), str):
                slots.fragments.append((function, "arguments"))
    return slots


_RESPONSE_DELTA = "response.function_call_arguments.delta"
_RESPONSE_DONE = "response.function_call_arguments.done"
_ITEM_EVENTS = ("response.output_item.added", "response.output_item.done")
_TERMINAL = ("response.completed", "response.incomplete", "response.failed", "response.cancelled")


def _kind(obj: dict[str, Any], name: str | None) -> str:
    kind = obj.get("type")
    return kind if isinstance(kind, str) else name or ""


def _responses_stream(events: _Events) -> _Slots:
    """The first function call's deltas, and every event that repeats its arguments whole."""
    index = _first_call_index(events)
    slots = _Slots()
    for obj, name in events:
        kind = _kind(obj, name)
        final = _response_output_slot(as_dict(obj.get("response"))) if kind in _TERMINAL else None
        if final is not None:
            slots.wholes.append(final)
        elif index is None or obj.get("output_index") != index:
            continue
        elif kind == _RESPONSE_DELTA and isinstance(obj.get("delta"), str):
            slots.fragments.append((obj, "delta"))
        elif kind == _RESPONSE_DONE and isinstance(obj.get("arguments"), str):
            slots.wholes.append((obj, "arguments"))
        elif kind == "response.output_item.done" and as_dict(obj.get("item")).get("type") == "function_call":
            slots.wholes.append((obj["item"], "arguments"))
    return slots


def _first_call_index(events: _Events) -> Any:
    for obj, name in events:
        kind = _kind(obj, name)
        is_call = kind in _ITEM_EVENTS and as_dict(obj.get("item")).get("type") == "function_call"
        if is_call or kind in (_RESPONSE_DELTA, _RESPONSE_DONE):
            return obj.get("output_index")
    return None


def _anthropic_stream(events: _Events) -> _Slots:
    """The ``input_json_delta`` fragments of the first ``tool_use`` block."""
    starts = (obj for obj, name in events if _kind(obj, name) == "content_block_start")
    tools = (start for start in starts if as_dict(start.get("content_block")).get("type") == "tool_use")
    index = next((start.get("index") for start in tools), None)
    slots = _Slots()
    for obj, name in events:
        delta = as_dict(obj.get("delta"))
        ours = _kind(obj, name) == "content_block_delta" and index is not None and obj.get("index") == index
        if ours and delta.get("type") == "input_json_delta" and isinstance(delta.get("partial_json"), str):
            slots.fragments.append((delta, "partial_json"))
    return slots


def _gemini_stream(events: _Events) -> _Slots:
    return _gemini_json([obj for obj, _ in events])


_STREAM_SLOTS: dict[Provider, Callable[[_Events], _Slots]] = {
    Provider.OPENAI: _openai_stream,
    Provider.ANTHROPIC: _anthropic_stream,
    Provider.GEMINI: _gemini_stream,
}


_REWRITES: dict[str, Callable[[str, _Recorded], Serve]] = {
    "truncate": _truncated,
    "empty": _empty,
    "bad_tool_args": _bad_tool_args,
}
