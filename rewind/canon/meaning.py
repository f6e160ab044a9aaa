"""What a response means to the agent: its text, tool calls, finish reason or error.

Two runs of an agent are compared by what the model said, not by the bytes: ids,
timestamps, usage, model versions and system fingerprints are left out.
``response_meaning`` reads a recorded response, JSON or SSE, of

    OpenAI chat       choices[0].message, or streamed delta.content and delta.tool_calls
                      (merged by index, argument fragments joined); finish_reason;
                      refusal; reasoning_content / reasoning (compatible servers)
    OpenAI Responses  output items: message (output_text, refusal), function_call,
                      custom_tool_call, reasoning; a stream is read from its final
                      response.completed / .incomplete / .failed response when there is
                      one, else assembled from its deltas; finish reason = the status, or
                      incomplete_details.reason when incomplete
    Anthropic         content blocks text, tool_use input, thinking; stop_reason; streams:
                      content_block_start / _delta (text_delta, input_json_delta,
                      thinking_delta), message_delta's stop_reason
    Gemini            candidates[0].content.parts text (``thought`` parts are reasoning)
                      and functionCall args; the last finishReason, else
                      promptFeedback.blockReason; generateContent, streamGenerateContent
                      SSE and its JSON-array form
    errors            OpenAI {"error": {type, code, message}} (type = code, else type),
                      Anthropic {"type": "error", "error": {type, message}}, Gemini
                      {"error": {code, status, message}} (type = status); as a body or as
                      a stream event

Anything else (no provider, a shape not recognised, bytes that are not JSON) is of kind
``"http"``: the status and the parsed JSON body, or ``{"sha256": hex}`` of the bytes.
A transport error with no response is ``kind "http"``, ``status None``, ``error_type
"transport"``; one that cut a response short marks its partial meaning the same way.

The digest is a contract, versioned like the fingerprint:

    digest = "m1:" + sha256(RFC 8785 bytes of {kind, status, text, tool_calls: [{name,
             arguments}], finish_reason, error_type, refusal, body})

Tool arguments are compared parsed, so key order and spacing do not count; arguments
that are not JSON (or JSON that RFC 8785 cannot represent) are compared as their text.
Reasoning and error messages are kept for display but are not compared. A JSON body over
``MAX_PARSED_BYTES`` (16 MB) is not parsed (that would cost several times its size in
memory while recording): its meaning is its status and ``{"sha256": hex}``. Text holding
lone surrogates cannot be RFC 8785 serialised; such a meaning is hashed from sorted,
ASCII-escaped JSON instead. Readers never raise.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Final, Protocol

from rewind.canon.canonjson import canonical_json
from rewind.canon.jsonget import as_dict as _dict
from rewind.canon.jsonget import as_text as _text
from rewind.canon.jsonget import dicts as _dicts
from rewind.canon.jsonget import nonempty_str as _str
from rewind.canon.providers import Provider
from rewind.canon.sse import iter_sse

__all__ = ["DIGEST_PREFIX", "MAX_PARSED_BYTES", "Meaning", "ToolCall", "response_meaning"]

MAX_PARSED_BYTES = 16 * 1024 * 1024

DIGEST_PREFIX = "m1:"
_NOT_JSON: Final = object()
_STREAM_STARTS = (b"data:", b"event:", b"id:", b"retry:", b":")


# --- JSON helpers ---------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _strict_json(data: str | bytes | memoryview) -> Any:
    """Strict JSON (as ``jsonnorm.load_json``: UTF-8, no NaN), or ``_NOT_JSON``.

    A memoryview is decoded in place, so a big body is decoded once and never copied."""
    try:
        text = data if isinstance(data, str) else str(data, "utf-8")
        return json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return _NOT_JSON


def _canonicalisable(value: Any) -> bool:
    """Whether RFC 8785 can serialise ``value`` (big integers and lone surrogates cannot)."""
    try:
        canonical_json(value)
    except (ValueError, RecursionError):
        return False
    return True


def _canonical_bytes(value: Any) -> bytes:
    try:
        return canonical_json(value)
    except (ValueError, RecursionError):
        text = json.dumps(value, sort_keys=True, ensure_ascii=True, separators=(",", ":"), default=repr)
        return text.encode("ascii")


def _json_text(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=True, separators=(",", ":"))
    except (ValueError, TypeError, RecursionError):
        return ""


def _index(obj: dict[str, Any], key: str = "index") -> int:
    """A stream's position field; -1 when missing or not an integer."""
    value = obj.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else -1


def _code(value: Any) -> str | None:
    """An error code given as a string or a number."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return _str(value)


# --- the model ------------------------------------------------------------------------


@dataclass(frozen=True)
class ToolCall:
    """One tool call the model asked for; ``arguments`` parsed, or the raw text if invalid."""

    name: str
    arguments: Any
    arguments_valid: bool = True

    @classmethod
    def from_text(cls, name: str, text: str) -> ToolCall:
        """A call whose arguments are JSON text (OpenAI); kept as text when not JSON."""
        value = _strict_json(text)
        if value is _NOT_JSON or not _canonicalisable(value):
            return cls(name, text, False)
        return cls(name, value, True)

    @classmethod
    def from_value(cls, name: str, value: Any) -> ToolCall:
        """A call whose arguments arrived parsed (Anthropic ``input``, Gemini ``args``).
        Those are JSON objects on the wire: text in their place is not valid arguments."""
        if isinstance(value, str):
            return cls(name, value, False)
        if _canonicalisable(value):
            return cls(name, value, True)
        return cls(name, _json_text(value), False)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "arguments": self.arguments, "arguments_valid": self.arguments_valid}


@dataclass(frozen=True)
class Meaning:
    """What one response said to the agent; ``digest()`` compares two of them."""

    kind: str
    status: int | None
    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    refusal: str | None = None
    reasoning: str = ""
    body: Any = None

    def compared(self) -> dict[str, Any]:
        """The fields the digest covers, in their canonical shape."""
        return {
            "kind": self.kind,
            "status": self.status,
            "text": self.text,
            "tool_calls": [{"name": c.name, "arguments": c.arguments} for c in self.tool_calls],
            "finish_reason": self.finish_reason,
            "error_type": self.error_type,
            "refusal": self.refusal,
            "body": self.body,
        }

    def digest(self) -> str:
        """``m1:`` and the sha256 of the RFC 8785 serialisation of ``compared()``."""
        return DIGEST_PREFIX + hashlib.sha256(_canonical_bytes(self.compared())).hexdigest()

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "status": self.status,
            "text": self.text,
            "tool_calls": [c.to_json() for c in self.tool_calls],
            "finish_reason": self.finish_reason,
            "error_type": self.error_type,
            "error_message": self.error_message,
            "refusal": self.refusal,
            "reasoning": self.reasoning,
            "body": self.body,
        }


# --- what readers build ---------------------------------------------------------------


@dataclass
class _Call:
    """A tool call as it arrives: a name, argument fragments or a parsed value."""

    name: str = ""
    fragments: list[str] = field(default_factory=list)
    value: Any = None
    has_value: bool = False

    def given(self, value: Any) -> None:
        self.value, self.has_value = value, True

    def tool_call(self) -> ToolCall:
        text = "".join(self.fragments)
        if self.has_value and not text:
            return ToolCall.from_value(self.name, self.value)
        return ToolCall.from_text(self.name, text)


@dataclass
class _Builder:
    """The parts of a meaning, filled in payload by payload."""

    understood: bool = False
    text: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    refusal: list[str] = field(default_factory=list)
    calls: dict[Hashable, _Call] = field(default_factory=dict)
    finish_reason: str | None = None
    error_type: str | None = None
    error_message: str | None = None

    def call(self, key: Hashable) -> _Call:
        return self.calls.setdefault(key, _Call())

    def new_call(self, name: Any) -> _Call:
        call = self.call(len(self.calls))
        call.name = _text(name)
        return call

    def finish(self, reason: Any) -> None:
        self.finish_reason = _str(reason) or self.finish_reason

    def fail(self, kind: str | None, message: Any) -> None:
        self.understood = True
        self.error_type = kind or self.error_type
        self.error_message = _str(message) or self.error_message

    def meaning(self, status: int | None) -> Meaning:
        return Meaning(
            kind="llm",
            status=status,
            text="".join(self.text),
            tool_calls=tuple(call.tool_call() for call in self.calls.values()),
            finish_reason=self.finish_reason,
            error_type=self.error_type,
            error_message=self.error_message,
            refusal="".join(self.refusal) or None,
            reasoning="".join(self.reasoning),
        )


class _Reader(Protocol):
    def feed(self, obj: dict[str, Any], event: str | None) -> None: ...

    def result(self) -> _Builder: ...


def _error_of(out: _Builder, error: Any, type_keys: tuple[str, ...]) -> None:
    """An error object (or a bare message string) into ``out``."""
    if isinstance(error, str):
        out.fail(None, error)
        return
    err = _dict(error)
    kind = next((c for c in (_code(err.get(k)) for k in type_keys) if c), None)
    out.fail(kind, err.get("message"))


# --- OpenAI chat completions ----------------------------------------------------------


def _chat_payload(out: _Builder, obj: dict[str, Any]) -> None:
    """A ``chat.completion`` or one ``chat.completion.chunk`` (choice 0 only)."""
    out.understood = True
    choice = next((c for c in _dicts(obj.get("choices")) if c.get("index", 0) == 0), None)
    if choice is None:
        return
    streamed = isinstance(choice.get("delta"), dict)
    _chat_message(out, _dict(choice.get("delta") if streamed else choice.get("message")), streamed)
    out.text.append(_text(choice.get("text")))  # legacy /v1/completions
    out.finish(choice.get("finish_reason"))


def _chat_message(out: _Builder, message: dict[str, Any], streamed: bool) -> None:
    out.text.append(_chat_content(message.get("content")))
    out.refusal.append(_text(message.get("refusal")))
    out.reasoning.append(_text(message.get("reasoning_content")) or _text(message.get("reasoning")))
    for position, raw in enumerate(_dicts(message.get("tool_calls"))):
        index = _index(raw) if streamed and "index" in raw else position
        _chat_tool_piece(out.call(("tool", index)), _dict(raw.get("function")))
    if isinstance(message.get("function_call"), dict):  # the legacy single function call
        _chat_tool_piece(out.call("function_call"), message["function_call"])


def _chat_content(content: Any) -> str:
    """A string, or the text of a list of content parts."""
    if isinstance(content, str):
        return content
    return "".join(_text(p.get("text")) for p in _dicts(content) if p.get("type") in ("text", None))


def _chat_tool_piece(call: _Call, function: dict[str, Any]) -> None:
    call.name = _str(function.get("name")) or call.name
    arguments = function.get("arguments")
    if isinstance(arguments, str):
        call.fragments.append(arguments)
    elif isinstance(arguments, dict):  # compatible servers that send an object
        call.given(arguments)


# --- OpenAI Responses API -------------------------------------------------------------


def _response_object(out: _Builder, response: dict[str, Any]) -> None:
    """A ``response`` object: its output items, status and error."""
    out.understood = True
    for item in _dicts(response.get("output")):
        _response_item(out, item)
    status = _str(response.get("status"))
    reason = _str(_dict(response.get("incomplete_details")).get("reason"))
    out.finish(reason if status == "incomplete" and reason else status)
    if response.get("error"):
        _error_of(out, response["error"], ("code", "type"))


def _response_item(out: _Builder, item: dict[str, Any]) -> None:
    kind = item.get("type")
    if kind == "message":
        _response_content(out, item.get("content"))
    elif kind == "function_call":
        out.new_call(item.get("name")).fragments.append(_text(item.get("arguments")))
    elif kind == "custom_tool_call":
        out.new_call(item.get("name")).fragments.append(_text(item.get("input")))
    elif kind == "reasoning":
        out.reasoning.extend(_text(p.get("text")) for p in _dicts(item.get("summary")))
        out.reasoning.extend(_text(p.get("text")) for p in _dicts(item.get("content")))


def _response_content(out: _Builder, content: Any) -> None:
    if isinstance(content, str):
        out.text.append(content)
    for part in _dicts(content):
        if part.get("type") in ("output_text", "text"):
            out.text.append(_text(part.get("text")))
        elif part.get("type") == "refusal":
            out.refusal.append(_text(part.get("refusal")))


_TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed", "response.cancelled"})
# Delta events and the piece of an output item each one grows.
_DELTAS = {
    "response.output_text.delta": "text",
    "response.refusal.delta": "refusal",
    "response.function_call_arguments.delta": "arguments",
    "response.custom_tool_call_input.delta": "input",
    "response.reasoning_summary_text.delta": "reasoning",
    "response.reasoning_text.delta": "reasoning",
}
_GUESSED_TYPES = (("arguments", "function_call"), ("input", "custom_tool_call"), ("reasoning", "reasoning"))


@dataclass
class _StreamedItems:
    """Responses API output items as a stream builds them, by ``output_index``."""

    added: dict[int, dict[str, Any]] = field(default_factory=dict)
    done: dict[int, dict[str, Any]] = field(default_factory=dict)
    pieces: dict[tuple[int, str], list[str]] = field(default_factory=dict)
    arguments: dict[int, str] = field(default_factory=dict)

    def feed(self, kind: str, obj: dict[str, Any]) -> None:
        index = _index(obj, "output_index")
        if kind in ("response.output_item.added", "response.output_item.done") and "item" in obj:
            (self.added if kind.endswith("added") else self.done)[index] = _dict(obj["item"])
        elif kind == "response.function_call_arguments.done" and isinstance(obj.get("arguments"), str):
            self.arguments[index] = obj["arguments"]
        elif kind in _DELTAS and isinstance(obj.get("delta"), str):
            self.pieces.setdefault((index, _DELTAS[kind]), []).append(obj["delta"])

    def items(self) -> list[dict[str, Any]]:
        indexes = sorted({*self.added, *self.done, *(index for index, _ in self.pieces)})
        return [self.done.get(index) or self._built(index) for index in indexes]

    def _built(self, index: int) -> dict[str, Any]:
        """An item that never arrived whole, from its opening and its deltas."""
        base = self.added.get(index, {})
        joined = {piece: "".join(parts) for (i, piece), parts in self.pieces.items() if i == index}
        guessed = next((kind for piece, kind in _GUESSED_TYPES if piece in joined), "message")
        content = [
            {"type": "output_text", "text": joined.get("text", "")},
            {"type": "refusal", "refusal": joined.get("refusal", "")},
            {"type": "reasoning_text", "text": joined.get("reasoning", "")},
        ]
        arguments = self.arguments.get(index) or joined.get("arguments") or base.get("arguments")
        return {
            **base,
            "type": base.get("type") or guessed,
            "content": content,
            "arguments": arguments,
            "input": joined.get("input") or base.get("input"),
        }


# --- the OpenAI reader (chat and Responses) -------------------------------------------


@dataclass
class _OpenAIReader:
    out: _Builder = field(default_factory=_Builder)
    streamed: _StreamedItems = field(default_factory=_StreamedItems)
    final: dict[str, Any] | None = None

    def feed(self, obj: dict[str, Any], event: str | None) -> None:
        kind = _text(obj.get("type")) or _text(event)
        if "choices" in obj:
            _chat_payload(self.out, obj)
        elif obj.get("object") == "response":
            _response_object(self.out, obj)
        elif kind.startswith("response."):
            self._event(kind, obj)
        elif kind == "error" and "error" not in obj:  # a Responses stream error event
            _error_of(self.out, obj, ("code", "type"))
        elif obj.get("error"):
            _error_of(self.out, obj["error"], ("code", "type"))

    def _event(self, kind: str, obj: dict[str, Any]) -> None:
        self.out.understood = True
        if kind in _TERMINAL and isinstance(obj.get("response"), dict):
            self.final = obj["response"]
        else:
            self.streamed.feed(kind, obj)

    def result(self) -> _Builder:
        if self.final is None:
            for item in self.streamed.items():
                _response_item(self.out, item)
            return self.out
        return self._from_final(self.final)

    def _from_final(self, final: dict[str, Any]) -> _Builder:
        """The final response, with the deltas only if it lists no output, and the
        stream's error events if it carries no error."""
        out = _Builder()
        _response_object(out, final)
        if not _dicts(final.get("output")):
            for item in self.streamed.items():
                _response_item(out, item)
        if out.error_type is None and out.error_message is None:
            out.error_type, out.error_message = self.out.error_type, self.out.error_message
        return out


# --- Anthropic ------------------------------------------------------------------------


def _anthropic_block(out: _Builder, key: Hashable, block: dict[str, Any]) -> None:
    kind = block.get("type")
    if kind == "text":
        out.text.append(_text(block.get("text")))
    elif kind == "thinking":
        out.reasoning.append(_text(block.get("thinking")))
    elif kind == "tool_use":
        call = out.call(key)
        call.name = _text(block.get("name"))
        call.given(block.get("input", {}))


def _anthropic_message(out: _Builder, obj: dict[str, Any]) -> None:
    for position, block in enumerate(_dicts(obj.get("content"))):
        _anthropic_block(out, position, block)
    out.finish(obj.get("stop_reason"))


def _anthropic_start(out: _Builder, obj: dict[str, Any]) -> None:
    out.finish(_dict(obj.get("message")).get("stop_reason"))


def _anthropic_block_start(out: _Builder, obj: dict[str, Any]) -> None:
    _anthropic_block(out, _index(obj), _dict(obj.get("content_block")))


def _anthropic_delta(out: _Builder, obj: dict[str, Any]) -> None:
    delta = _dict(obj.get("delta"))
    kind = delta.get("type")
    if kind == "text_delta":
        out.text.append(_text(delta.get("text")))
    elif kind == "thinking_delta":
        out.reasoning.append(_text(delta.get("thinking")))
    elif kind == "input_json_delta":
        out.call(_index(obj)).fragments.append(_text(delta.get("partial_json")))


def _anthropic_message_delta(out: _Builder, obj: dict[str, Any]) -> None:
    out.finish(_dict(obj.get("delta")).get("stop_reason"))


def _anthropic_error(out: _Builder, obj: dict[str, Any]) -> None:
    _error_of(out, obj.get("error"), ("type",))


def _ignore(out: _Builder, obj: dict[str, Any]) -> None:
    """An event that carries nothing the agent sees (ping, block or message stop)."""


_ANTHROPIC_EVENTS: dict[str, Callable[[_Builder, dict[str, Any]], None]] = {
    "message": _anthropic_message,
    "message_start": _anthropic_start,
    "content_block_start": _anthropic_block_start,
    "content_block_delta": _anthropic_delta,
    "message_delta": _anthropic_message_delta,
    "error": _anthropic_error,
    "ping": _ignore,
    "content_block_stop": _ignore,
    "message_stop": _ignore,
}


@dataclass
class _AnthropicReader:
    out: _Builder = field(default_factory=_Builder)

    def feed(self, obj: dict[str, Any], event: str | None) -> None:
        handler = _ANTHROPIC_EVENTS.get(_text(obj.get("type")) or _text(event))
        if handler is not None:
            self.out.understood = True
            handler(self.out, obj)

    def result(self) -> _Builder:
        return self.out


# --- Gemini ---------------------------------------------------------------------------


def _gemini_part(out: _Builder, part: dict[str, Any]) -> None:
    if isinstance(part.get("text"), str):
        (out.reasoning if part.get("thought") is True else out.text).append(part["text"])
    call = part.get("functionCall", part.get("function_call"))
    if isinstance(call, dict):
        out.new_call(call.get("name")).given(call.get("args", {}))


def _gemini_chunk(out: _Builder, obj: dict[str, Any]) -> None:
    """One GenerateContentResponse (the whole answer, or one streamed piece of it)."""
    out.understood = True
    candidate = next((c for c in _dicts(obj.get("candidates")) if c.get("index", 0) == 0), None)
    if candidate is None:
        out.finish(_dict(obj.get("promptFeedback")).get("blockReason"))
        return
    for part in _dicts(_dict(candidate.get("content")).get("parts")):
        _gemini_part(out, part)
    out.finish(candidate.get("finishReason"))


@dataclass
class _GeminiReader:
    out: _Builder = field(default_factory=_Builder)

    def feed(self, obj: dict[str, Any], event: str | None) -> None:
        if obj.get("error"):
            _error_of(self.out, obj["error"], ("status", "code"))
        elif "candidates" in obj or "promptFeedback" in obj:
            _gemini_chunk(self.out, obj)

    def result(self) -> _Builder:
        return self.out


_READERS: dict[Provider, Callable[[], _Reader]] = {
    Provider.OPENAI: _OpenAIReader,
    Provider.ANTHROPIC: _AnthropicReader,
    Provider.GEMINI: _GeminiReader,
}


# --- reading a response ---------------------------------------------------------------


def response_meaning(
    provider: Provider | None,
    status: int | None,
    content_type: str | None,
    body: bytes | memoryview,
    error: str | None = None,
) -> Meaning:
    """What a recorded response (or a transport ``error`` instead of one) means; never raises."""
    if error is not None and status is None:
        return Meaning(kind="http", status=None, error_type="transport", error_message=error)
    if len(body) > MAX_PARSED_BYTES and not _is_stream(content_type, bytes(memoryview(body)[:64]).lstrip()):
        meaning = Meaning(kind="http", status=status, body={"sha256": hashlib.sha256(body).hexdigest()})
    else:
        meaning = _read(provider, status, content_type, body)
    if error is None:
        return meaning
    return replace(meaning, error_type=meaning.error_type or "transport", error_message=error)


def _read(
    provider: Provider | None, status: int | None, content_type: str | None, body: bytes | memoryview
) -> Meaning:
    head = bytes(memoryview(body)[:64]).lstrip()
    streamed = _is_stream(content_type, head)
    if streamed and provider is not None:
        built = _fed(provider, _stream_objects(body))
        if built.understood:
            return built.meaning(status)
    value = _strict_json(body) if not streamed or head[:1] in (b"{", b"[") else _NOT_JSON
    if provider is not None and value is not _NOT_JSON:
        built = _fed(provider, ((obj, None) for obj in _objects(value)))
        if built.understood:
            return built.meaning(status)
    return Meaning(kind="http", status=status, body=_http_body(body, value))


def _is_stream(content_type: str | None, head: bytes) -> bool:
    media = (content_type or "").lower()
    return "event-stream" in media or ("json" not in media and head.startswith(_STREAM_STARTS))


def _stream_objects(body: bytes | memoryview) -> Iterator[tuple[dict[str, Any], str | None]]:
    for event in iter_sse(body):
        for obj in _objects(_strict_json(event.data)):
            yield obj, event.event


def _objects(value: Any) -> list[dict[str, Any]]:
    """A JSON object, or the objects of a JSON array (Gemini's streamed array form)."""
    return _dicts(value) if isinstance(value, list) else _dicts([value])


def _fed(provider: Provider, objects: Iterator[tuple[dict[str, Any], str | None]]) -> _Builder:
    reader = _READERS[provider]()
    for obj, event in objects:
        reader.feed(obj, event)
    return reader.result()


def _http_body(body: bytes | memoryview, value: Any) -> Any:
    """The parsed JSON body, ``None`` when empty, else ``{"sha256": hex}`` of the bytes."""
    if memoryview(body).nbytes == 0:
        return None
    if value is not _NOT_JSON and _canonicalisable(value):
        return value
    return {"sha256": hashlib.sha256(body).hexdigest()}
