"""The playback server speaking WebSocket: the handshake, the recorded messages in order
and paced, pings, a miss closing with 1011, a server close played back."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage

from rewind.canon.websocket import Transcript
from rewind.core.exchange import Close, Frame
from rewind.replay.pace import FAST, ORIGINAL, Pace
from rewind.replay.playback import PLAYBACK_HEADER, PlaybackServer
from rewind.replay.wsserve import accept_key

RECORDED = Transcript(
    (
        Frame(0.0, False, True, b"hello"),
        Frame(10.0, True, True, b'{"q": 1, "event_id": "x"}'),
        Frame(110.0, False, True, b"a1"),
        Frame(210.0, False, False, b"\x00\xff"),
        Frame(300.0, True, True, b"bye"),
    ),
    Close(310.0, False, 1000, "bye"),
)


class WsClient:
    """A wsproto client on a raw connection, noting when each event arrives."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.ws = Connection(ConnectionType.CLIENT)
        self.head = b""

    async def handshake(self, token: str) -> None:
        self.writer.write(
            b"GET /rt HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\nconnection: Upgrade\r\n"
            b"sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n"
            + f"{PLAYBACK_HEADER}: {token}\r\n\r\n".encode()
        )
        self.head = await self.reader.readuntil(b"\r\n\r\n")

    async def send(self, event: Any) -> None:
        self.writer.write(self.ws.send(event))
        await self.writer.drain()

    async def events(self, count: int) -> list[tuple[float, Any]]:
        got: list[tuple[float, Any]] = []
        while len(got) < count:
            data = await self.reader.read(65536)
            self.ws.receive_data(data or None)
            got += [(time.monotonic(), e) for e in self.ws.events()]
            if not data:
                break
        return got


async def converse(pace: Pace, script: Any) -> tuple[list[Any], list[Frame]]:
    server = PlaybackServer(pace)
    port = await server.start()
    misses: list[Frame] = []
    token = server.register_websocket(
        "Switching Protocols", (("sec-websocket-protocol", "realtime"),), RECORDED, misses.append
    )
    client = WsClient(*await asyncio.open_connection("127.0.0.1", port))
    try:
        await client.handshake(token)
        return await script(client), misses
    finally:
        client.writer.close()
        await server.stop()


def test_accept_key_is_rfc_6455s() -> None:
    assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_the_conversation_is_played_in_order_with_the_recorded_gaps_and_the_servers_close() -> None:
    asked: list[float] = []

    async def script(client: WsClient) -> list[Any]:
        seen = await client.events(1)
        asked.append(time.monotonic())
        await client.send(TextMessage('{"event_id": "other", "q": 1}'))  # matched without event_id
        seen += await client.events(2)
        await client.send(Ping(b"p"))
        await client.send(TextMessage("bye"))
        return seen + await client.events(2)

    seen, misses = asyncio.run(converse(ORIGINAL, script))
    events = [e for _, e in seen]
    assert [type(e) for e in events] == [TextMessage, TextMessage, BytesMessage, Pong, CloseConnection]
    assert [e.data for e in events[:3]] == ["hello", "a1", b"\x00\xff"]
    assert (events[-1].code, events[-1].reason) == (1000, "bye") and misses == []
    # recorded 100 and 200 ms after the question: paced, not bunched
    assert seen[1][0] - asked[0] >= 0.1 and seen[2][0] - asked[0] >= 0.2


def test_the_101_carries_the_recorded_headers_and_an_accept_for_this_key() -> None:
    async def script(client: WsClient) -> list[Any]:
        return [client.head]

    [head], _ = asyncio.run(converse(FAST, script))
    assert head.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert b"sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head
    assert b"sec-websocket-protocol: realtime" in head and b"extensions" not in head


def test_a_message_not_in_the_recording_is_a_miss_closed_with_1011() -> None:
    async def script(client: WsClient) -> list[Any]:
        await client.events(1)
        await client.send(TextMessage("never said"))
        return await client.events(1)

    seen, misses = asyncio.run(converse(FAST, script))
    [(_, close)] = seen
    assert isinstance(close, CloseConnection) and close.code == 1011
    assert [m.data for m in misses] == [b"never said"]
