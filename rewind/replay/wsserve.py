"""The playback server's side of a replayed WebSocket conversation.

The replay addon points a matched WebSocket handshake at the playback server, as it does
a stream. The server answers ``101`` with the recorded headers (its own
``Sec-WebSocket-Accept`` for the key it was sent; no extension, so no compression), then
speaks WebSocket (``wsproto``) as the recorded server did: ``replay.wsplay`` says which
messages to send and when. mitmproxy relays the frames to the agent, as it did when
recording. Pings are answered; the agent's close is answered and ends the conversation.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Message, Ping, TextMessage

from rewind.canon.websocket import Transcript
from rewind.core.exchange import HOP_HEADERS, Frame, Headers
from rewind.replay.pace import Pace, sleep_until
from rewind.replay.wsplay import MISS_CLOSE_CODE, MISS_CLOSE_REASON, Conversation, Reply

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
# Besides framing: the handshake this server makes itself (its accept key, no extension).
_NOT_REPLAYED = HOP_HEADERS | {"upgrade", "sec-websocket-accept", "sec-websocket-extensions"}
_READ_SIZE = 1 << 16
ABNORMAL_CLOSURE = 1006  # no close frame: the connection was cut


@dataclass(frozen=True)
class WsPlayback:
    """A recorded conversation registered for one playback."""

    reason: str
    headers: Headers
    transcript: Transcript
    on_miss: Callable[[Frame], None]


def accept_key(key: str) -> str:
    """RFC 6455's ``Sec-WebSocket-Accept`` for a client's ``Sec-WebSocket-Key``."""
    return base64.b64encode(hashlib.sha1(key.strip().encode("ascii") + _GUID).digest()).decode("ascii")


def upgrade_head(playback: WsPlayback, key: str) -> bytes:
    lines = [f"HTTP/1.1 101 {playback.reason or 'Switching Protocols'}"]
    lines += [f"{k}: {v}" for k, v in playback.headers if k.lower() not in _NOT_REPLAYED]
    lines += ["upgrade: websocket", "connection: Upgrade", f"sec-websocket-accept: {accept_key(key)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape")


class Converser:
    """Plays one conversation on one connection."""

    def __init__(self, playback: WsPlayback, pace: Pace, writer: asyncio.StreamWriter) -> None:
        self.playback = playback
        self.pace = pace
        self.writer = writer
        self.ws = Connection(ConnectionType.SERVER)
        self.talk = Conversation(playback.transcript)
        self._parts: list[bytes] = []

    async def run(self, reader: asyncio.StreamReader, started: float) -> None:
        if await self._send(self.talk.opening(), started):
            return
        while True:
            data = await reader.read(_READ_SIZE)
            self.ws.receive_data(data or None)
            if await self._handle_events() or not data:
                return

    async def _handle_events(self) -> bool:
        """Answer what the agent sent; True once the conversation is over."""
        for event in self.ws.events():
            if isinstance(event, Message) and await self._on_message(event):
                return True
            if isinstance(event, Ping):
                await self._write(self.ws.send(event.response()))
            if isinstance(event, CloseConnection):
                await self._write(self.ws.send(event.response()))
                return True
        return False

    async def _on_message(self, event: Message) -> bool:  # type: ignore[type-arg]
        is_text = isinstance(event, TextMessage)
        self._parts.append(event.data.encode("utf-8") if is_text else bytes(event.data))
        if not event.message_finished:
            return False
        frame = Frame(0.0, True, is_text, b"".join(self._parts))
        self._parts.clear()
        reply = self.talk.answer(frame)
        if reply is None:
            self.playback.on_miss(frame)
            await self._write(self.ws.send(CloseConnection(MISS_CLOSE_CODE, MISS_CLOSE_REASON)))
            return True
        return await self._send(reply, asyncio.get_running_loop().time())

    async def _send(self, reply: Reply, anchor: float) -> bool:
        """Send a reply's messages at their recorded delays; True if it closed the conversation."""
        for frame in reply.frames:
            await sleep_until(anchor + self.pace.delay_s(reply.anchor_ms, frame.t_ms))
            await self._write(self.ws.send(_message(frame)))
        if reply.close is None:
            return False
        await sleep_until(anchor + self.pace.delay_s(reply.anchor_ms, reply.close.t_ms))
        if reply.close.code != ABNORMAL_CLOSURE:  # else the server just dropped the connection
            await self._write(self.ws.send(CloseConnection(reply.close.code or 1000, reply.close.reason)))
        return True

    async def _write(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()


def _message(frame: Frame) -> Message:  # type: ignore[type-arg]
    if frame.text:
        return TextMessage(data=frame.data.decode("utf-8", "replace"))
    return BytesMessage(data=frame.data)
