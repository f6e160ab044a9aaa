"""The conversation as the model saw it, read from a request body.

``conversation(provider, path, request_body)`` gives one :class:`Message` per turn, in
order, with roles ``system``, ``user``, ``assistant`` and ``tool``:

    OpenAI chat       messages: string content or content parts; developer as system;
                      assistant tool_calls (and the legacy function_call); tool and
                      function results; legacy completions' ``prompt`` as one user turn
    OpenAI Responses  instructions as system; input as a string or items: message,
                      function_call / custom_tool_call (an assistant turn each),
                      function_call_output / custom_tool_call_output (a tool turn each)
    Anthropic         system as a string or text blocks; messages with text, tool_use and
                      tool_result blocks (each tool_result becomes a tool turn of its own)
    Gemini            systemInstruction / system_instruction; contents with role user,
                      model (as assistant) or function; parts text, functionCall and
                      functionResponse (each a tool turn of its own)

Parts that are not text (images, audio, files) become a placeholder such as
``"[image]"``; reasoning and thinking parts are left out. A tool result carries the tool's
name when the request says it or an earlier call with the same id does. An unknown
provider or a body that is not such a request gives ``[]``; nothing here raises.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from rewind.canon.jsonget import as_dict as _dict
from rewind.canon.jsonget import as_text as _text
from rewind.canon.jsonget import dicts as _dicts
from rewind.canon.jsonget import nonempty_str as _str
from rewind.canon.jsonnorm import load_json
from rewind.canon.meaning import ToolCall
from rewind.canon.providers import Provider

__all__ = ["Message", "conversation"]

_TEXT_PARTS = frozenset({"text", "input_text", "output_text"})
_SKIPPED_PARTS = frozenset({"thinking", "redacted_thinking", "reasoning", "tool_use", "tool_result"})
_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


@dataclass(frozen=True)
class Message:
    """One turn of the conversation."""

    role: str
    text: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "text": self.text,
            "tool_calls": [call.to_json() for call in self.tool_calls],
            "tool_call_id": self.tool_call_id,
            "name": self.name,
        }


def conversation(provider: Provider | None, path: str, request_body: bytes) -> list[Message]:
    """The messages of a chat request to ``provider``; ``[]`` when there are none to read."""
    body = _load(request_body)
    if provider is None or not isinstance(body, dict):
        return []
    if provider == Provider.ANTHROPIC:
        return _anthropic(body)
    if provider == Provider.GEMINI:
        return _gemini(body)
    if _is_responses(path, body):
        return _responses(body)
    return _openai(body)


def _is_responses(path: str, body: dict[str, Any]) -> bool:
    """A Responses API request: by its path, else by its ``input`` / ``instructions``."""
    if path.split("?", 1)[0].rstrip("/").endswith("/responses"):
        return True
    return not isinstance(body.get("messages"), list) and ("input" in body or "instructions" in body)


def _load(data: bytes) -> Any:
    try:
        return load_json(bytes(data))
    except (ValueError, RecursionError, TypeError):
        return None


# --- shared helpers -------------------------------------------------------------------


def _placeholder(kind: Any) -> str:
    """``[image]`` for ``image``, ``image_url`` or ``input_image``; ``[content]`` if untyped."""
    name = _text(kind).removeprefix("input_").removesuffix("_url")
    return f"[{name or 'content'}]"


def _part_text(part: dict[str, Any]) -> str | None:
    """The text a content part shows the model; ``None`` for parts left out."""
    kind = part.get("type")
    if kind in _TEXT_PARTS or (kind is None and isinstance(part.get("text"), str)):
        return _text(part.get("text"))
    if kind == "refusal":
        return _text(part.get("refusal"))
    if kind in _SKIPPED_PARTS:
        return None
    return _placeholder(kind)


def _content_text(content: Any) -> str:
    """A string content, or its parts' texts and placeholders joined by newlines."""
    if isinstance(content, str):
        return content
    texts = (_part_text(part) for part in _dicts(content))
    return "\n".join(text for text in texts if text is not None)


def _json_text(value: Any) -> str:
    try:
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    except (ValueError, TypeError, RecursionError):
        return ""


@dataclass
class _Names:
    """Tool names by call id, so a result can say which tool it answers."""

    by_id: dict[str, str] = field(default_factory=dict)

    def remember(self, call_id: Any, name: str) -> None:
        if isinstance(call_id, str) and name:
            self.by_id[call_id] = name

    def of(self, call_id: str | None, given: Any = None) -> str | None:
        return _str(given) or (self.by_id.get(call_id) if call_id else None)


# --- OpenAI chat completions ------------------------------------------------------------


def _openai(body: dict[str, Any]) -> list[Message]:
    if isinstance(body.get("messages"), list):
        names = _Names()
        return [m for raw in _dicts(body["messages"]) if (m := _chat_message(raw, names))]
    prompt = body.get("prompt")
    return [Message("user", prompt)] if isinstance(prompt, str) else []


def _chat_message(raw: dict[str, Any], names: _Names) -> Message | None:
    role = raw.get("role")
    text = _content_text(raw.get("content"))
    if role in ("tool", "function"):
        call_id = _str(raw.get("tool_call_id"))
        return Message("tool", text, tool_call_id=call_id, name=names.of(call_id, raw.get("name")))
    if role not in _ROLES:
        return None
    return Message(_ROLES[role], text, tool_calls=_chat_tool_calls(raw, names))


def _chat_tool_calls(raw: dict[str, Any], names: _Names) -> tuple[ToolCall, ...]:
    calls = []
    for call in _dicts(raw.get("tool_calls")):
        function = _dict(call.get("function"))
        calls.append(_call(function.get("name"), function.get("arguments")))
        names.remember(call.get("id"), calls[-1].name)
    if isinstance(raw.get("function_call"), dict):
        calls.append(_call(raw["function_call"].get("name"), raw["function_call"].get("arguments")))
    return tuple(calls)


def _call(name: Any, arguments: Any) -> ToolCall:
    """A tool call from JSON-text arguments (OpenAI) or parsed ones."""
    if isinstance(arguments, str):
        return ToolCall.from_text(_text(name), arguments)
    return ToolCall.from_value(_text(name), arguments if arguments is not None else {})


# --- OpenAI Responses API ---------------------------------------------------------------


def _responses(body: dict[str, Any]) -> list[Message]:
    messages = [Message("system", body["instructions"])] if _str(body.get("instructions")) else []
    if isinstance(body.get("input"), str):
        return [*messages, Message("user", body["input"])]
    names = _Names()
    return messages + [m for item in _dicts(body.get("input")) if (m := _response_item(item, names))]


def _response_item(item: dict[str, Any], names: _Names) -> Message | None:
    kind = item.get("type")
    if kind in ("function_call", "custom_tool_call"):
        arguments = item.get("arguments") if kind == "function_call" else item.get("input")
        call = _call(item.get("name"), _text(arguments))
        names.remember(item.get("call_id"), call.name)
        return Message("assistant", "", tool_calls=(call,))
    if kind in ("function_call_output", "custom_tool_call_output"):
        call_id = _str(item.get("call_id"))
        return Message(
            "tool", _content_text(item.get("output")), tool_call_id=call_id, name=names.of(call_id)
        )
    if kind in ("message", None) and item.get("role") in _ROLES:
        return Message(_ROLES[item["role"]], _content_text(item.get("content")))
    return None


# --- Anthropic --------------------------------------------------------------------------


def _anthropic(body: dict[str, Any]) -> list[Message]:
    system = _content_text(body.get("system"))
    messages = [Message("system", system)] if system else []
    names = _Names()
    for raw in _dicts(body.get("messages")):
        messages.extend(_anthropic_turn(raw, names))
    return messages


def _anthropic_turn(raw: dict[str, Any], names: _Names) -> list[Message]:
    """One message; each tool_result block becomes a tool message, in its place."""
    role = _ROLES.get(_text(raw.get("role")))
    content = raw.get("content")
    if role is None:
        return []
    if isinstance(content, str):
        return [Message(role, content)]
    turn = _Turn(role)
    for block in _dicts(content):
        turn.add(block, names)
    return turn.messages()


@dataclass
class _Turn:
    """The messages of one Anthropic or Gemini turn, built block by block."""

    role: str
    texts: list[str] = field(default_factory=list)
    calls: list[ToolCall] = field(default_factory=list)
    done: list[Message] = field(default_factory=list)

    def add(self, block: dict[str, Any], names: _Names) -> None:
        kind = block.get("type")
        if kind == "tool_use":
            self.calls.append(_call(block.get("name"), block.get("input")))
            names.remember(block.get("id"), self.calls[-1].name)
        elif kind == "tool_result":
            call_id = _str(block.get("tool_use_id"))
            self.result(Message("tool", _content_text(block.get("content")), (), call_id, names.of(call_id)))
        elif (text := _part_text(block)) is not None:
            self.texts.append(text)

    def result(self, message: Message) -> None:
        """A tool result: what came before it is a message of its own."""
        self.flush()
        self.done.append(message)

    def flush(self) -> None:
        if self.texts or self.calls:
            self.done.append(Message(self.role, "\n".join(self.texts), tuple(self.calls)))
        self.texts, self.calls = [], []

    def messages(self) -> list[Message]:
        self.flush()
        return self.done


# --- Gemini -----------------------------------------------------------------------------

_GEMINI_ROLES = {"user": "user", "model": "assistant", "system": "system", "function": "tool"}


def _gemini(body: dict[str, Any]) -> list[Message]:
    system = body.get("systemInstruction", body.get("system_instruction"))
    text = system if isinstance(system, str) else _gemini_parts_text(_dict(system).get("parts"))
    messages = [Message("system", text)] if text else []
    names = _Names()
    for content in _dicts(body.get("contents")):
        messages.extend(_gemini_turn(content, names))
    return messages


def _gemini_parts_text(parts: Any) -> str:
    texts = (_gemini_part_text(part) for part in _dicts(parts))
    return "\n".join(text for text in texts if text is not None)


def _gemini_turn(content: dict[str, Any], names: _Names) -> list[Message]:
    role = _GEMINI_ROLES.get(_text(content.get("role")) or "user")
    if role is None:
        return []
    turn = _Turn("user" if role == "tool" else role)
    for part in _dicts(content.get("parts")):
        _gemini_part(turn, part, names)
    return turn.messages()


def _gemini_part(turn: _Turn, part: dict[str, Any], names: _Names) -> None:
    call = part.get("functionCall", part.get("function_call"))
    response = part.get("functionResponse", part.get("function_response"))
    if isinstance(call, dict):
        turn.calls.append(_call(call.get("name"), call.get("args")))
        names.remember(call.get("id"), turn.calls[-1].name)
    elif isinstance(response, dict):
        call_id = _str(response.get("id"))
        name = names.of(call_id, response.get("name"))
        turn.result(Message("tool", _json_text(response.get("response")), (), call_id, name))
    elif (text := _gemini_part_text(part)) is not None:
        turn.texts.append(text)


def _gemini_part_text(part: dict[str, Any]) -> str | None:
    """A part's text, a placeholder for inline or file data; ``None`` for thoughts."""
    if part.get("thought") is True:
        return None
    if isinstance(part.get("text"), str):
        return str(part["text"])
    data = _dict(part.get("inlineData", part.get("inline_data", part.get("fileData", part.get("file_data")))))
    if data:
        mime = _text(data.get("mimeType", data.get("mime_type")))
        return _placeholder(mime.split("/", 1)[0] if mime.split("/", 1)[0] in _MEDIA else "file")
    kinds = [key for key in part if key not in _PART_METADATA]
    return _placeholder(kinds[0]) if kinds else None


_MEDIA = frozenset({"image", "audio", "video"})
_PART_METADATA = frozenset(
    {"thought", "thoughtSignature", "thought_signature", "videoMetadata", "video_metadata"}
)
