"""An injected timeout (``register_hang``): the playback server reads the request and never
answers it; the connection stays open until the client gives up, or until the bound."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator

import pytest

from rewind.replay.playback import PLAYBACK_HEADER, PlaybackServer, PlaybackThread

BOUND_S = 0.3
QUIET_S = 0.2  # how long a client waits to be sure no byte came


@pytest.fixture
def playback() -> Iterator[PlaybackThread]:
    thread = PlaybackThread()
    thread.start()
    yield thread
    thread.stop()


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
