from __future__ import annotations

import asyncio
import http.client
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from rewind.replay.pace import FAST, ORIGINAL, Pace, parse_pace
from rewind.replay.playback import PLAYBACK_HEADER, PlaybackServer, PlaybackThread

SSE_HEADERS = (
    ("content-type", "text/event-stream"),
    ("content-length", "999"),
    ("transfer-encoding", "chunked"),
    ("connection", "keep-alive"),
    ("x-request-id", "req_1"),
)
CHUNKS = [(0.0, b"data: 1\n\n"), (200.0, b"data: 2\n\n"), (400.0, b"data: [DONE]\n\n")]


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    chunks: list[tuple[float, bytes]] = field(default_factory=list)  # (arrival, data)
    complete: bool = True

    @property
    def body(self) -> bytes:
        return b"".join(data for _, data in self.chunks)

    def arrivals(self, sent: float) -> list[float]:
        """When each chunk arrived, in seconds since the request was ``sent``.

        Bounds from the request, not gaps between arrivals: the client's own lateness in
        reading one chunk shortens the next gap it sees, but cannot make any chunk early.
        """
        return [t - sent for t, _ in self.chunks]


class Client:
    """A raw HTTP/1.1 client that notes when each response chunk arrives."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def send(
        self, token: str | None, head: str = "POST / HTTP/1.1", body: bytes = b"{}", extra: str = ""
    ) -> Reply:
        lines = [head, "host: 127.0.0.1", f"content-length: {len(body)}"]
        lines += [f"{PLAYBACK_HEADER}: {token}"] * (token is not None)
        self.writer.write(("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode() + body)
        await self.writer.drain()
        return await self.read_reply(head.startswith("HEAD"))

    async def read_reply(self, head_only: bool = False) -> Reply:
        status_line, *lines = (await self.reader.readuntil(b"\r\n\r\n")).decode().split("\r\n")
        pairs = (line.split(": ", 1) for line in lines if line)
        reply = Reply(int(status_line.split()[1]), {k.lower(): v for k, v in pairs})
        if head_only or reply.headers.get("transfer-encoding") != "chunked":
            size = int(reply.headers.get("content-length", 0))
            reply.chunks.append((time.monotonic(), await self.reader.readexactly(size)))
            return reply
        await self.read_chunks(reply)
        return reply

    async def read_chunks(self, reply: Reply) -> None:
        try:
            while size := int(await self.reader.readuntil(b"\r\n"), 16):
                reply.chunks.append((time.monotonic(), await self.reader.readexactly(size)))
                await self.reader.readexactly(2)
            await self.reader.readexactly(2)
        except asyncio.IncompleteReadError:
            reply.complete = False


Scenario = Callable[[PlaybackServer, Client], Awaitable[None]]


def serve(scenario: Scenario, pace: Pace = FAST) -> None:
    async def main() -> None:
        server = PlaybackServer(pace)
        port = await server.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            await scenario(server, Client(reader, writer))
        finally:
            writer.close()
            await server.stop()

    asyncio.run(asyncio.wait_for(main(), 30))


def test_streams_recorded_status_headers_and_chunks() -> None:
    async def scenario(server: PlaybackServer, client: Client) -> None:
        reply = await client.send(server.register(200, "OK", SSE_HEADERS, CHUNKS))
        assert reply.status == 200
        assert reply.headers["content-type"] == "text/event-stream"
        assert reply.headers["x-request-id"] == "req_1"
        assert reply.headers["transfer-encoding"] == "chunked"
        assert "content-length" not in reply.headers
        assert [data for _, data in reply.chunks] == [data for _, data in CHUNKS]
        assert reply.complete

    serve(scenario)


def test_fast_pace_does_not_wait_for_recorded_gaps() -> None:
    async def scenario(server: PlaybackServer, client: Client) -> None:
        slow = [(0.0, b"a"), (5_000.0, b"b"), (10_000.0, b"c")]
        reply = await client.send(server.register(200, "OK", SSE_HEADERS, slow))
        assert reply.body == b"abc"
        assert reply.chunks[-1][0] - reply.chunks[0][0] < 5.0

    serve(scenario, FAST)


def test_original_pace_honours_recorded_gaps() -> None:
    async def scenario(server: PlaybackServer, client: Client) -> None:
        sent = time.monotonic()
        reply = await client.send(server.register(200, "OK", SSE_HEADERS, CHUNKS))
        recorded = [t_ms / 1000 for t_ms, _ in CHUNKS]  # 0.2 s apart
        assert all(at >= t for at, t in zip(reply.arrivals(sent), recorded, strict=True))

    serve(scenario, ORIGINAL)


def test_factor_pace_scales_gaps_relative_to_original() -> None:
    chunks = [(0.0, b"a"), (300.0, b"b"), (1200.0, b"c")]

    async def scenario(server: PlaybackServer, client: Client) -> None:
        sent = time.monotonic()
        reply = await client.send(server.register(200, "OK", SSE_HEADERS, chunks))
        _, second, third = reply.arrivals(sent)
        assert second >= 0.075 and third >= 0.3  # 4x: at 75 and 300 ms instead of 300 and 1,200
        assert third < 1.2  # sooner than recorded

    serve(scenario, parse_pace("4x"))


def test_first_chunk_waits_for_its_recorded_time() -> None:
    async def scenario(server: PlaybackServer, client: Client) -> None:
        started = time.monotonic()
        reply = await client.send(server.register(200, "OK", SSE_HEADERS, [(300.0, b"a")]))
        assert reply.chunks[0][0] - started >= 0.25

    serve(scenario, ORIGINAL)


def test_unknown_and_used_tokens_get_404() -> None:
    async def scenario(server: PlaybackServer, client: Client) -> None:
        token = server.register(200, "OK", SSE_HEADERS, CHUNKS)
        assert (await client.send(token)).status == 200
        assert (await client.send(token)).status == 404
        assert (await client.send("nope")).status == 404
        assert (await client.send(None)).status == 404
        assert server.pending == 0

    serve(scenario)


def test_keep_alive_serves_several_requests_with_bodies() -> None:
    async def scenario(server: PlaybackServer, client: Client) -> None:
        for i in range(3):
            token = server.register(201, "", (), [(0.0, b"n%d" % i)])
            reply = await client.send(token, body=b'{"big": "' + b"x" * 100_000 + b'"}')
            assert (reply.status, reply.body) == (201, b"n%d" % i)
            assert reply.headers["connection"] == "keep-alive"

    serve(scenario)


def test_chunked_request_body_is_consumed() -> None:
    async def scenario(server: PlaybackServer, client: Client) -> None:
        head = f"POST / HTTP/1.1\r\n{PLAYBACK_HEADER}: {server.register(200, 'OK', (), CHUNKS)}"
        client.writer.write(f"{head}\r\ntransfer-encoding: chunked\r\n\r\n".encode())
        client.writer.write(b"3\r\nabc\r\n0\r\n\r\n")
        assert (await client.read_reply()).status == 200
        assert (await client.send(server.register(202, "OK", (), CHUNKS))).status == 202

    serve(scenario)


def test_truncated_stream_closes_without_final_chunk() -> None:
    async def scenario(server: PlaybackServer, client: Client) -> None:
        token = server.register(200, "OK", SSE_HEADERS, CHUNKS[:2], truncated=True)
        reply = await client.send(token)
        assert reply.body == b"data: 1\n\ndata: 2\n\n"
        assert not reply.complete
        assert reply.headers["connection"] == "close"

    serve(scenario)


def test_empty_recorded_chunks_do_not_end_the_body() -> None:
    async def scenario(server: PlaybackServer, client: Client) -> None:
        chunks = [(0.0, b"a"), (1.0, b""), (2.0, b"b")]
        reply = await client.send(server.register(200, "OK", (), chunks))
        assert reply.body == b"ab" and reply.complete

    serve(scenario)


@pytest.mark.parametrize(("head", "status"), [("HEAD / HTTP/1.1", 200), ("POST / HTTP/1.1", 204)])
def test_responses_without_body(head: str, status: int) -> None:
    async def scenario(server: PlaybackServer, client: Client) -> None:
        reply = await client.send(server.register(status, "", (), CHUNKS), head=head, body=b"")
        assert reply.status == status and "transfer-encoding" not in reply.headers
        assert (await client.send(server.register(200, "OK", (), CHUNKS))).body.endswith(b"[DONE]\n\n")

    serve(scenario)


def test_connection_close_is_honoured() -> None:
    async def scenario(server: PlaybackServer, client: Client) -> None:
        reply = await client.send(server.register(200, "OK", (), CHUNKS), extra="connection: close\r\n")
        assert reply.headers["connection"] == "close"
        assert await client.reader.read() == b""

    serve(scenario)


def test_stop_ends_idle_keep_alive_connections() -> None:
    async def main() -> None:
        server = PlaybackServer()
        port = await server.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await Client(reader, writer).send(server.register(200, "OK", (), CHUNKS))
        await asyncio.wait_for(server.stop(), 5)
        assert await reader.read() == b""
        writer.close()

    asyncio.run(main())


def test_playback_thread_serves_a_standard_http_client() -> None:
    playback = PlaybackThread(ORIGINAL)
    port = playback.start()
    try:
        token = playback.register(200, "OK", SSE_HEADERS, [(0.0, b"data: a\n\n"), (50.0, b"x")])
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("POST", "/", body=b"{}", headers={PLAYBACK_HEADER: token})
        response = connection.getresponse()
        assert (response.status, response.reason) == (200, "OK")
        assert response.read() == b"data: a\n\nx"
        connection.close()
    finally:
        playback.stop()
    assert playback.port == port


# --- register_hang: an injected timeout is never answered ----------------------------------


BOUND_S = 0.3
QUIET_S = 0.2  # how long a client waits to be sure no byte came


def _request(token: str, body: bytes = b'{"model": "m"}') -> bytes:
    head = f"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\n{PLAYBACK_HEADER}: {token}\r\n"
    return f"{head}content-length: {len(body)}\r\n\r\n".encode() + body


def _connect(port: int, token: str) -> socket.socket:
    client = socket.create_connection(("127.0.0.1", port), timeout=5)
    client.sendall(_request(token))
    return client


def _read_until_closed(client: socket.socket, timeout: float) -> bytes:
    client.settimeout(timeout)
    received = b""
    while chunk := client.recv(4096):
        received += chunk
    return received


def test_a_hung_request_gets_no_byte_while_the_client_waits(playback: PlaybackThread) -> None:
    with _connect(playback.port, playback.register_hang(30.0)) as client:
        client.settimeout(QUIET_S)
        with pytest.raises(TimeoutError):
            client.recv(1)


def test_the_server_lets_go_when_the_client_gives_up(playback: PlaybackThread) -> None:
    with _connect(playback.port, playback.register_hang(30.0)) as client:
        client.settimeout(QUIET_S)
        with pytest.raises(TimeoutError):
            client.recv(1)
        started = time.monotonic()
        client.shutdown(socket.SHUT_WR)  # the client is done: no more requests
        assert _read_until_closed(client, 5) == b""
        assert time.monotonic() - started < 5  # long before the 30 s bound


def test_the_bound_closes_the_connection_without_a_response(playback: PlaybackThread) -> None:
    token = playback.register_hang(BOUND_S)
    started = time.monotonic()
    with _connect(playback.port, token) as client:
        assert _read_until_closed(client, 5) == b""
    assert BOUND_S - 0.05 <= time.monotonic() - started < 3


def test_a_hang_token_is_used_once(playback: PlaybackThread) -> None:
    token = playback.register_hang(BOUND_S)
    assert playback.server.pending == 1
    with _connect(playback.port, token) as client:
        assert _read_until_closed(client, 5) == b""
    assert playback.server.pending == 0
    with _connect(playback.port, token) as client:
        client.settimeout(5)
        assert client.recv(4096).startswith(b"HTTP/1.1 404 ")


def test_the_server_itself_holds_a_hang_to_its_bound() -> None:
    async def main() -> tuple[bytes, float]:
        server = PlaybackServer()
        port = await server.start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(_request(server.register_hang(BOUND_S)))
            started = asyncio.get_running_loop().time()
            received = await asyncio.wait_for(reader.read(), 5)
            writer.close()
            return received, asyncio.get_running_loop().time() - started
        finally:
            await server.stop()

    received, took = asyncio.run(main())
    assert received == b""
    assert BOUND_S - 0.05 <= took < 3
