"""OpenAI Realtime over WebSocket (``GET /v1/realtime?model=NAME``), as the fake provider speaks it.

Rewind records and replays WebSocket conversations; its tests need an upstream that speaks
a realistic JSON-event protocol, text and binary messages, and closes from either side,
without the network. The HTTP part stays in :mod:`rewind.testing.fake_provider`:
:func:`handshake` answers the upgrade request (a ``101``, or an HTTP error as OpenAI's),
then the server hands the socket to :func:`converse`. The frames are wsproto's; the
handshake is ours, so no extension (``permessage-deflate``) is ever accepted.

Handshake: a key in ``Authorization: Bearer``, ``api-key`` or the subprotocol
``openai-insecure-api-key.KEY`` (else ``401``); ``Upgrade: websocket`` (else ``400``);
``Sec-WebSocket-Version: 13`` (else ``426``). The subprotocol ``realtime`` is echoed when
offered. Every message the server sends is one JSON text message with a random
``event_id``, as upstream:

- on connect: ``session.created`` (``session.id`` ``sess_…``, ``session.model``);
- ``conversation.item.create`` -> ``conversation.item.created`` (the item, with an ``id``);
- ``response.create`` -> ``response.created``, one ``response.text.delta`` per word of
  "This is a fake answer to: <last user text>", ``response.text.done``, ``response.done``
  (with ``usage``: word counts); the gap between these is the server's chunk delay or the
  text's ``[[delay:MS]]``; ``[[drop]]`` cuts the connection without a close frame;
- ``session.update`` -> ``session.updated``;
- ``session.close`` -> the server closes with ``1000 bye``;
- another ``type`` (or JSON that is not an object) -> an ``error`` event;
- text that is not JSON -> ``{"type": "echo", "text": …}``; a binary message is echoed.

Pings get pongs; a client's close is answered. :func:`messages_received` counts the
messages clients sent (all connections of one server), so a test can tell that nothing
reached the upstream during a replay.
"""

from __future__ import annotations

import base64
import hashlib
import json
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from io import BufferedIOBase
from typing import Any

from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Event, Message, Ping, TextMessage

from rewind.testing.fake_common import (
    Conversation,
    FakeContext,
    FakeRequest,
    JsonObject,
    JsonReply,
    PerContext,
    Reply,
    count_words,
    parse_markers,
    plan_turn,
    random_id,
    split_words,
)
from rewind.testing.fake_openai import OpenAIChat, error_reply

__all__ = [
    "PATHS",
    "accept_key",
    "converse",
    "forget_messages",
    "handles",
    "handshake",
    "is_upgrade",
    "messages_received",
]

PATHS = ("/v1/realtime",)
DEFAULT_MODEL = "gpt-4o-realtime-preview"
SUBPROTOCOL = "realtime"
KEY_SUBPROTOCOL = "openai-insecure-api-key."
WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455, section 1.3
CLOSE_WAIT_S = 5.0  # how long a server-initiated close waits for the client's reply
_READ_SIZE = 65536
_POLL_S = 0.05
_OPENAI = OpenAIChat()


# --- handshake ----------------------------------------------------------------------------


def handles(path: str) -> bool:
    """Whether ``path`` is the Realtime endpoint."""
    return path in PATHS


def is_upgrade(reply: Reply) -> bool:
    """Whether ``reply`` switched the connection to WebSocket (so :func:`converse` follows)."""
    return isinstance(reply, JsonReply) and reply.status == 101


def accept_key(key: str) -> str:
    """``Sec-WebSocket-Accept`` for a ``Sec-WebSocket-Key`` (RFC 6455, section 4.2.2)."""
    digest = hashlib.sha1((key + WEBSOCKET_GUID).encode("ascii")).digest()
    return base64.b64encode(digest).decode("ascii")


def handshake(request: FakeRequest, context: FakeContext) -> JsonReply:
    """``101 Switching Protocols`` for a valid, authenticated upgrade, else an HTTP error."""
    refused = refusal(request, context)
    if refused is not None:
        return refused
    key = request.headers["sec-websocket-key"].strip()
    headers = [("upgrade", "websocket"), ("connection", "Upgrade"), ("sec-websocket-accept", accept_key(key))]
    if SUBPROTOCOL in subprotocols(request):
        headers.append(("sec-websocket-protocol", SUBPROTOCOL))
    return JsonReply(101, None, headers=tuple(headers))


def refusal(request: FakeRequest, context: FakeContext) -> JsonReply | None:
    """The HTTP error an upgrade request gets, in the order OpenAI checks: method, key, upgrade."""
    if request.method != "GET":
        return error_reply(405, f"Method {request.method} not allowed on {request.path}")
    problem = context.key_problem(presented_key(request))
    if problem:
        return _OPENAI.auth_error(problem)
    if "websocket" not in _tokens(request.headers.get("upgrade", "")):
        return error_reply(400, "This endpoint only accepts WebSocket connections (Upgrade: websocket).")
    if request.headers.get("sec-websocket-version", "").strip() != "13":
        refused = error_reply(426, "Unsupported Sec-WebSocket-Version; this server speaks 13.")
        return replace(refused, headers=(*refused.headers, ("sec-websocket-version", "13")))
    if not request.headers.get("sec-websocket-key", "").strip():
        return error_reply(400, "Missing Sec-WebSocket-Key header.")
    return None


def presented_key(request: FakeRequest) -> str | None:
    """The API key of a bearer token, an ``api-key`` header or a browser's key subprotocol."""
    offered = [p[len(KEY_SUBPROTOCOL) :] for p in subprotocols(request) if p.startswith(KEY_SUBPROTOCOL)]
    return request.bearer() or request.headers.get("api-key", "").strip() or next(iter(offered), None)


def subprotocols(request: FakeRequest) -> list[str]:
    """The offered subprotocols, in the client's order."""
    return [p.strip() for p in request.headers.get("sec-websocket-protocol", "").split(",") if p.strip()]


def _tokens(value: str) -> list[str]:
    return [token.strip().lower() for token in value.split(",")]


# --- what the server says -------------------------------------------------------------------


@dataclass(frozen=True)
class Send:
    """Send one message (``str``: text, ``bytes``: binary) after ``delay_ms``."""

    data: str | bytes
    delay_ms: int = 0


@dataclass(frozen=True)
class Close:
    """Close the conversation from the server's side."""

    code: int
    reason: str


@dataclass(frozen=True)
class Drop:
    """Cut the connection without a close frame (an upstream crash)."""


Action = Send | Close | Drop


@dataclass
class Session:
    """What one connection remembers: its session, the pacing, the conversation so far."""

    model: str
    delay_ms: int = 0
    id: str = field(default_factory=lambda: random_id("sess_"))
    settings: JsonObject = field(default_factory=dict)
    user_texts: list[str] = field(default_factory=list)
    last_item_id: str | None = None

    def describe(self) -> JsonObject:
        """The ``session`` object of ``session.created`` and ``session.updated``."""
        defaults = {"modalities": ["text"], "instructions": "", "tools": [], "temperature": 0.8}
        return {**defaults, **self.settings, "id": self.id, "object": "realtime.session", "model": self.model}


def event(kind: str, **fields: Any) -> JsonObject:
    """A server event: its ``type``, a fresh ``event_id``, then ``fields``."""
    return {"type": kind, "event_id": random_id("event_"), **fields}


def error_event(message: str, code: str, param: str | None = None, cause: Any = None) -> JsonObject:
    """An ``error`` event as the Realtime API sends for a bad client event (``cause``)."""
    client_event_id = cause.get("event_id") if isinstance(cause, dict) else None
    error = {"type": "invalid_request_error", "code": code, "message": message, "param": param}
    return event("error", error={**error, "event_id": client_event_id})


def send(*events: JsonObject, delay_ms: int = 0) -> list[Action]:
    """``events`` as text messages, each but the first after ``delay_ms``."""
    return [Send(_dump(e), delay_ms if index else 0) for index, e in enumerate(events)]


def _dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def on_connect(session: Session) -> list[Action]:
    """What the server says first: ``session.created``."""
    return send(event("session.created", session=session.describe()))


def answer_bytes(data: bytes) -> list[Action]:
    """A binary message comes back as it came."""
    return [Send(data)]


def answer_text(text: str, session: Session) -> list[Action]:
    """The reply to a text message: an echo when it is not JSON, else by event ``type``."""
    try:
        message = json.loads(text)
    except ValueError:
        return send({"type": "echo", "text": text})
    if not isinstance(message, dict):
        return send(error_event("The event must be a JSON object.", "invalid_json"))
    handler = HANDLERS.get(str(message.get("type")))
    if handler is None:
        supported = ", ".join(map(repr, HANDLERS))
        problem = f"Invalid value: {message.get('type')!r}. Supported values are: {supported}."
        return send(error_event(problem, "invalid_value", "type", message))
    return handler(message, session)


def create_item(message: JsonObject, session: Session) -> list[Action]:
    """``conversation.item.create``: remember a user text, confirm the item with an id."""
    item = message.get("item")
    if not isinstance(item, dict):
        problem = "Missing required parameter: 'item'."
        return send(error_event(problem, "missing_required_parameter", "item", message))
    created = {**item, "id": item.get("id") or random_id("item_"), "object": "realtime.item",
               "status": "completed"}  # fmt: skip
    previous, session.last_item_id = session.last_item_id, created["id"]
    if item.get("role") == "user":
        session.user_texts.append(content_text(item.get("content")))
    return send(event("conversation.item.created", previous_item_id=previous, item=created))


def content_text(content: Any) -> str:
    """The text parts (``input_text``, ``text``) of an item's content, joined."""
    parts = content if isinstance(content, list) else []
    return " ".join(p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str))


def create_response(message: JsonObject, session: Session) -> list[Action]:
    """``response.create``: the fake answer to the last user text, one word per delta."""
    last = session.user_texts[-1] if session.user_texts else ""
    markers = parse_markers(last)
    if markers.drop:
        return [Drop()]
    delay = session.delay_ms if markers.delay_ms is None else markers.delay_ms
    return send(*response_events(plan_turn(Conversation(last_user_text=last)).text, session), delay_ms=delay)


def response_events(text: str, session: Session) -> list[JsonObject]:
    """``response.created``, the deltas of ``text``, ``response.text.done``, ``response.done``."""
    response_id, item_id = random_id("resp_"), random_id("item_")
    where = {"response_id": response_id, "item_id": item_id, "output_index": 0, "content_index": 0}
    deltas = [event("response.text.delta", **where, delta=piece) for piece in split_words(text)]
    done = response_object(response_id, "completed", [answer_item(item_id, text)], usage(text, session))
    return [
        event("response.created", response=response_object(response_id, "in_progress", [], None)),
        *deltas,
        event("response.text.done", **where, text=text),
        event("response.done", response=done),
    ]


def response_object(response_id: str, status: str, output: list[JsonObject], usage: Any) -> JsonObject:
    """The ``response`` of ``response.created`` and ``response.done``."""
    return {"id": response_id, "object": "realtime.response", "status": status, "output": output,
            "usage": usage}  # fmt: skip


def answer_item(item_id: str, text: str) -> JsonObject:
    """The assistant message a response produced."""
    return {"id": item_id, "object": "realtime.item", "type": "message", "status": "completed",
            "role": "assistant", "content": [{"type": "text", "text": text}]}  # fmt: skip


def usage(text: str, session: Session) -> JsonObject:
    """Word counts: the user texts so far in, the answer out."""
    input_tokens = max(1, count_words(session.user_texts))
    output_tokens = max(1, count_words(text))
    return {"total_tokens": input_tokens + output_tokens, "input_tokens": input_tokens,
            "output_tokens": output_tokens}  # fmt: skip


def update_session(message: JsonObject, session: Session) -> list[Action]:
    """``session.update``: merge the given settings (never the id or model)."""
    settings = message.get("session")
    if isinstance(settings, dict):
        session.settings.update({k: v for k, v in settings.items() if k not in ("id", "model", "object")})
    return send(event("session.updated", session=session.describe()))


def close_session(message: JsonObject, session: Session) -> list[Action]:
    """``session.close`` (the fake's own event): a server-initiated close, ``1000 bye``."""
    return [Close(1000, "bye")]


HANDLERS: dict[str, Callable[[JsonObject, Session], list[Action]]] = {
    "conversation.item.create": create_item,
    "response.create": create_response,
    "session.update": update_session,
    "session.close": close_session,
}


# --- counting -------------------------------------------------------------------------------


class MessageCounter:
    """Messages received from clients; shared by the connections' threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0

    def add(self) -> None:
        with self._lock:
            self._count += 1

    @property
    def count(self) -> int:
        with self._lock:
            return self._count

    def clear(self) -> None:
        with self._lock:
            self._count = 0


# The message counter of the fake server whose context is given.
counter_of = PerContext(MessageCounter)


def messages_received(context: FakeContext) -> int:
    """WebSocket messages clients sent to the server of ``context`` (pings and closes excluded)."""
    return counter_of(context).count


def forget_messages(context: FakeContext) -> None:
    """Start counting received messages from zero again."""
    counter_of(context).clear()


# --- the conversation on the wire -----------------------------------------------------------


def converse(
    request: FakeRequest, sock: socket.socket, reader: BufferedIOBase, context: FakeContext, delay_ms: int
) -> None:
    """Speak WebSocket on ``sock`` (after the ``101``) until a side closes or the line is cut.

    ``reader`` is the server's buffered reader on ``sock``: it may already hold the first
    frames. Cutting the socket (``FakeProvider.stop()``) ends the call promptly.
    """
    model = request.param("model") or DEFAULT_MODEL
    session = Session(context.model_versions.get(model, model), delay_ms)
    wire = Wire(sock, reader, counter_of(context))
    try:
        if wire.perform(on_connect(session)):
            while wire.serve_once(session):
                pass
    except OSError:
        pass  # the client hung up, or the server is stopping


class Wire:
    """One server-side WebSocket connection: frames in and out through wsproto."""

    def __init__(self, sock: socket.socket, reader: BufferedIOBase, counter: MessageCounter) -> None:
        self.sock = sock
        self.reader = reader
        self.counter = counter
        self.ws = Connection(ConnectionType.SERVER)
        self.parts: list[str | bytes] = []

    def serve_once(self, session: Session) -> bool:
        """Read once and act on what came; False when the conversation is over."""
        data = self.reader.read1(_READ_SIZE)
        self.ws.receive_data(data or None)
        return all(self.on_event(e, session) for e in list(self.ws.events())) and bool(data)

    def on_event(self, received: Event, session: Session) -> bool:
        if isinstance(received, Message):
            return self.on_message(received, session)
        if isinstance(received, Ping) and self.ws.state is ConnectionState.OPEN:
            self.sock.sendall(self.ws.send(received.response()))
        if isinstance(received, CloseConnection):
            return self.on_close(received)
        return True

    def on_message(self, received: Message[Any], session: Session) -> bool:
        self.parts.append(received.data if isinstance(received, TextMessage) else bytes(received.data))
        if not received.message_finished:
            return True
        parts, self.parts = self.parts, []
        self.counter.add()
        if self.ws.state is not ConnectionState.OPEN:
            return True  # closing: no more answers
        if isinstance(received, BytesMessage):
            return self.perform(answer_bytes(b"".join(p for p in parts if isinstance(p, bytes))))
        return self.perform(answer_text("".join(p for p in parts if isinstance(p, str)), session))

    def on_close(self, received: CloseConnection) -> bool:
        """Answer the client's close (or a protocol error); our own close is now complete."""
        if self.ws.state is ConnectionState.REMOTE_CLOSING:
            self.sock.sendall(self.ws.send(received.response()))
        elif self.ws.state is ConnectionState.OPEN:  # a frame wsproto could not parse
            self.sock.sendall(self.ws.send(CloseConnection(received.code, received.reason)))
        return False

    def perform(self, actions: list[Action]) -> bool:
        """Carry out ``actions``; False when one of them ended the conversation."""
        for action in actions:
            if isinstance(action, Drop):
                self.sock.shutdown(socket.SHUT_RDWR)
                return False
            if isinstance(action, Close):
                self.sock.sendall(self.ws.send(CloseConnection(action.code, action.reason)))
                self.sock.settimeout(CLOSE_WAIT_S)
                return True  # read on until the client answers the close
            if action.delay_ms and not pause(self.sock, action.delay_ms / 1000):
                return False
            self.sock.sendall(self.ws.send(_message(action.data)))
        return True


def _message(data: str | bytes) -> Message[Any]:
    return TextMessage(data) if isinstance(data, str) else BytesMessage(data)


def pause(sock: socket.socket, seconds: float) -> bool:
    """Wait ``seconds`` unless the connection is cut meanwhile (a stopping server); False then.

    Frames the client sends during the pause stay unread until it is over.
    """
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select([sock], [], [], min(left, _POLL_S))
        if readable and not sock.recv(1, socket.MSG_PEEK):
            return False
        if readable:
            time.sleep(min(left, _POLL_S))
    return True
