"""What the fake provider says, independent of any provider's wire format.

A provider module turns its request into a :class:`Conversation`, asks :func:`plan_turn`
what the assistant does next (answer in text, or call a tool), and renders the
:class:`Turn` in its own JSON or SSE shape. The replies it can build are
:class:`JsonReply`, :class:`StreamReply` and :class:`DropReply`; the server writes them.

Behaviour driven by the last user text:

- ``[[status:NNN]]`` answers with the provider's error body and status NNN;
- ``[[drop]]`` closes the connection without a response;
- ``[[delay:MS]]`` sets the gap between SSE chunks for that request;
- ``[[vary]]`` makes a text answer end with the model (as reported), the system prompt,
  the temperature and the tool names, so that a run changing any of them gets another
  answer (for bisect);
- ``[[random]]`` makes a text answer end with a random word: the same request gets
  another answer each time (model nondeterminism, for bisect).

``FakeContext.model_versions`` maps a requested model to the (dated) model the fake
reports answering with, as a provider does when it moves an alias to a new snapshot.

Token counts are word counts, so they are deterministic; ids are random, as upstream.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import string
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar
from urllib.parse import parse_qs

T = TypeVar("T")

JsonObject = dict[str, Any]

_ALPHABET = string.ascii_letters + string.digits
_MARKER = re.compile(r"\[\[(status|delay):(\d+)\]\]|\[\[drop\]\]|\[\[vary\]\]|\[\[random\]\]")
_CITY_KEYS = frozenset({"city", "location", "place"})
# Keys whose values are structure, not text: not counted as tokens.
_STRUCTURAL = frozenset({"type", "role", "id", "tool_call_id", "tool_use_id", "cache_control", "signature"})


@dataclass(frozen=True)
class FakeRequest:
    """One request as the fake received it (header names lower-cased)."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    def param(self, name: str) -> str | None:
        """The first value of query parameter ``name``."""
        values = parse_qs(self.query).get(name)
        return values[0] if values else None

    def json(self) -> Any:
        """The body parsed as JSON; raises ``ValueError`` when it is not JSON."""
        return json.loads(self.body or b"null")

    def bearer(self) -> str | None:
        """The token of an ``Authorization: Bearer`` header."""
        scheme, _, token = self.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return None
        return token.strip() or None


@dataclass
class FakeContext:
    """Server-wide settings and memory that provider handlers share."""

    api_key: str | None = None
    cached_prefixes: set[str] = field(default_factory=set)
    model_versions: dict[str, str] = field(default_factory=dict)  # requested -> reported
    lock: threading.Lock = field(default_factory=threading.Lock)

    def key_problem(self, presented: str | None) -> str | None:
        """Why ``presented`` is refused, or None when it is acceptable."""
        if not presented:
            return "missing"
        if self.api_key is not None and presented != self.api_key:
            return "invalid"
        return None

    def seen_before(self, prefix_key: str) -> bool:
        """Remember a cached prompt prefix; True when it was already cached."""
        with self.lock:
            seen = prefix_key in self.cached_prefixes
            self.cached_prefixes.add(prefix_key)
            return seen


@dataclass(frozen=True)
class JsonReply:
    """A complete response written with a Content-Length."""

    status: int
    payload: Any
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class StreamReply:
    """A response written chunk by chunk (chunked transfer encoding), one event per chunk."""

    events: tuple[bytes, ...]
    content_type: str = "text/event-stream; charset=utf-8"
    delay_ms: int | None = None
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class DropReply:
    """Close the connection without writing a response."""


Reply = JsonReply | StreamReply | DropReply
ErrorFactory = Callable[[int, str], JsonReply]


@dataclass(frozen=True)
class Markers:
    """Test controls found in the last user text."""

    status: int | None = None
    drop: bool = False
    delay_ms: int | None = None
    vary: bool = False
    random: bool = False


@dataclass(frozen=True)
class ToolSpec:
    """A tool the request offers: its name and JSON-schema parameters."""

    name: str
    parameters: JsonObject = field(default_factory=dict)


@dataclass(frozen=True)
class Conversation:
    """The parts of a chat request that decide the fake's answer."""

    last_user_text: str
    tool_result: str | None = None
    tools: tuple[ToolSpec, ...] = ()
    tools_allowed: bool = True


@dataclass(frozen=True)
class Turn:
    """The assistant's next move: a text answer, or one tool call."""

    text: str = ""
    tool_name: str | None = None
    tool_args: JsonObject | None = None

    @property
    def is_tool_call(self) -> bool:
        return self.tool_name is not None


def random_id(prefix: str, length: int = 24) -> str:
    """An id like upstream's: ``prefix`` followed by random letters and digits."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def parse_markers(text: str) -> Markers:
    """Read ``[[status:N]]``, ``[[drop]]`` and ``[[delay:MS]]`` out of ``text``."""
    status = delay = None
    drop = vary = random = False
    for match in _MARKER.finditer(text):
        kind, value = match.group(1), match.group(2)
        if kind == "status":
            status = int(value)
        elif kind == "delay":
            delay = int(value)
        elif match.group() == "[[vary]]":
            vary = True
        elif match.group() == "[[random]]":
            random = True
        else:
            drop = True
    return Markers(status=status, drop=drop, delay_ms=delay, vary=vary, random=random)


def strip_markers(text: str) -> str:
    """``text`` without its test markers, whitespace tidied."""
    return " ".join(_MARKER.sub(" ", text).split())


def count_words(value: Any) -> int:
    """Words in the strings inside ``value`` (a JSON value), structural fields skipped."""
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, dict):
        return sum(count_words(v) for k, v in value.items() if k not in _STRUCTURAL)
    if isinstance(value, list):
        return sum(count_words(v) for v in value)
    return 0


def plan_turn(conversation: Conversation) -> Turn:
    """Decide the reply: summarise a tool result, call the first tool, or answer."""
    if conversation.tool_result is not None:
        return Turn(text=f"According to the tool, {summarise(conversation.tool_result)}.")
    if conversation.tools and conversation.tools_allowed:
        tool = conversation.tools[0]
        return Turn(tool_name=tool.name, tool_args=fill_arguments(tool, conversation))
    return Turn(text=f"This is a fake answer to: {strip_markers(conversation.last_user_text)}")


def completion_words(turn: Turn) -> int:
    """Output token count of a turn (at least 1)."""
    if turn.is_tool_call:
        return 1 + count_words(turn.tool_args)
    return max(1, count_words(turn.text))


def fill_arguments(tool: ToolSpec, conversation: Conversation) -> JsonObject:
    """Arguments for ``tool``: each required string property gets the user's text.

    Properties named city/location/place get the last capitalised word instead
    ("What's the weather in Paris?" -> "Paris"); required numbers get 1, booleans true.
    """
    text = strip_markers(conversation.last_user_text)
    properties = tool.parameters.get("properties") or {}
    args: JsonObject = {}
    for name in tool.parameters.get("required") or []:
        kind = str((properties.get(name) or {}).get("type", "string")).lower()
        value = _default_for(kind, name, text)
        if value is not None:
            args[name] = value
    return args


def _default_for(kind: str, name: str, text: str) -> Any:
    if kind == "string":
        return last_capitalised_word(text) if name.lower() in _CITY_KEYS else text
    if kind in ("integer", "number"):
        return 1
    if kind == "boolean":
        return True
    return None


def last_capitalised_word(text: str) -> str:
    """The last word starting with a capital letter, else the whole text."""
    words = re.findall(r"[A-Z][\w-]*", text)
    return words[-1] if words else text


def summarise(result: str) -> str:
    """A tool result in words: ``key: value`` pairs for a JSON object, else the text."""
    try:
        value = json.loads(result)
    except ValueError:
        return result.strip()
    while isinstance(value, dict) and len(value) == 1 and isinstance(_only(value), dict):
        value = _only(value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_plain(v)}" for k, v in value.items())
    return _plain(value)


def _only(mapping: JsonObject) -> Any:
    return next(iter(mapping.values()))


def _plain(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def split_words(text: str) -> list[str]:
    """``text`` cut into stream pieces of one word each, keeping the spaces."""
    return re.findall(r"\S+\s*|\s+", text) or [""]


def split_fixed(text: str, size: int = 8) -> list[str]:
    """``text`` cut into pieces of ``size`` characters (tool-argument fragments)."""
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def stable_number(seed: str, modulo: int) -> int:
    """A number in ``range(modulo)`` that depends only on ``seed``."""
    return hashlib.sha256(seed.encode()).digest()[0] % modulo


def sse_data(payload: Any, eol: str = "\n") -> bytes:
    """One ``data: <json>`` server-sent event."""
    return f"data: {json.dumps(payload, separators=(',', ':'))}{eol}{eol}".encode()


def sse_event(name: str, payload: Any) -> bytes:
    """One named server-sent event (``event:`` then ``data:``)."""
    return f"event: {name}\ndata: {json.dumps(payload, separators=(',', ':'))}\n\n".encode()


def marker_reply(markers: Markers, error: ErrorFactory) -> Reply | None:
    """The reply a test marker asks for (drop or error status), if any."""
    if markers.drop:
        return DropReply()
    if markers.status is not None:
        return error(markers.status, f"Fake error requested with [[status:{markers.status}]]")
    return None


@dataclass(frozen=True)
class ChatCall:
    """A valid chat request and the turn the fake decided to answer it with."""

    request: FakeRequest
    body: JsonObject
    conversation: Conversation
    markers: Markers
    turn: Turn
    reported_model: str = ""  # the model the answer says it came from


class ChatFormat(Protocol):
    """How one provider reads a chat request and writes its answer."""

    def presented_key(self, request: FakeRequest) -> str | None: ...

    def auth_error(self, problem: str) -> JsonReply: ...

    def error(self, status: int, message: str) -> JsonReply: ...

    def invalid(self, request: FakeRequest, body: JsonObject) -> str | None: ...

    def conversation(self, body: JsonObject) -> Conversation: ...

    def wants_stream(self, request: FakeRequest, body: JsonObject) -> bool: ...

    def json_reply(self, call: ChatCall, context: FakeContext) -> JsonReply: ...

    def stream_reply(self, call: ChatCall, context: FakeContext) -> StreamReply: ...


def serve_chat(fmt: ChatFormat, request: FakeRequest, context: FakeContext) -> Reply:
    """Authenticate, validate, honour markers, then answer in ``fmt``'s shape."""
    refused = context.key_problem(fmt.presented_key(request))
    if refused:
        return fmt.auth_error(refused)
    body = _json_object(request)
    problem = "Request body is not a JSON object" if body is None else fmt.invalid(request, body)
    if body is None or problem:
        return fmt.error(400, problem or "Invalid request")
    return _answer(fmt, request, body, context)


def _answer(fmt: ChatFormat, request: FakeRequest, body: JsonObject, ctx: FakeContext) -> Reply:
    conversation = fmt.conversation(body)
    markers = parse_markers(conversation.last_user_text)
    early = marker_reply(markers, fmt.error)
    if early is not None:
        return early
    turn = plan_turn(conversation)
    requested = str(body.get("model") or "")
    reported = ctx.model_versions.get(requested, requested)
    if markers.vary and not turn.is_tool_call:
        turn = Turn(text=f"{turn.text} ({_varied_by(body, reported)})")
    if markers.random and not turn.is_tool_call:
        turn = Turn(text=f"{turn.text} {random_id('r', 8)}")
    call = ChatCall(request, body, conversation, markers, turn, reported)
    if fmt.wants_stream(request, body):
        return fmt.stream_reply(call, ctx)
    return fmt.json_reply(call, ctx)


def _varied_by(body: JsonObject, reported: str) -> str:
    tools = sorted(_tool_name(t) for t in body.get("tools") or [] if isinstance(t, dict))
    return (f"model {reported}; system {system_text(body)!r}; "
            f"temperature {body.get('temperature')}; tools {','.join(tools)}")


def _tool_name(tool: JsonObject) -> str:
    function = tool.get("function")
    return str((function if isinstance(function, dict) else tool).get("name") or "")


def system_text(body: JsonObject) -> str:
    """The system prompt of a chat request in any provider's shape, as plain text."""
    found = [body.get(k) for k in ("system", "systemInstruction", "system_instruction", "instructions")]
    found += [m.get("content") for m in body.get("messages") or [] if isinstance(m, dict)
              and m.get("role") in ("system", "developer")]  # fmt: skip
    return " ".join(_words(v) for v in found if v)


def _words(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return " ".join(_words(v) for k, v in value.items() if k in ("text", "parts", "content"))
    return " ".join(_words(v) for v in value) if isinstance(value, list) else ""


def _json_object(request: FakeRequest) -> JsonObject | None:
    try:
        body = request.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


class PerContext(Generic[T]):
    """One ``T`` per ``FakeContext`` (so per ``FakeProvider``), made on first use and
    dropped with its context: state a fake keeps beside the context (stored responses,
    WebSocket message counts)."""

    def __init__(self, factory: Callable[[], T]) -> None:
        self.factory = factory
        self._items: dict[int, T] = {}
        self._lock = threading.Lock()

    def __call__(self, context: FakeContext) -> T:
        with self._lock:
            item = self._items.get(id(context))
            if item is None:
                item = self._items[id(context)] = self.factory()
                weakref.finalize(context, self._items.pop, id(context), None)
            return item
