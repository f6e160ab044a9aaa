"""An in-process HTTP/1.1 server that plays recorded streamed responses back, paced.

mitmproxy's ``Response.make`` sends a body in one piece, which loses a stream's pacing.
So the replay addon registers a matched streamed step here (``register`` returns a
one-shot token) and rewrites the request to ``http://127.0.0.1:<port>/`` with the
header ``x-rewind-playback: <token>``; this server then writes the recorded status line
and headers at once and each recorded chunk at its recorded time (scaled by the
``Pace``), draining after every chunk.

Framing: the recorded ``Content-Length``, ``Transfer-Encoding`` and connection headers
are dropped and the body is always sent with ``Transfer-Encoding: chunked`` (one HTTP
chunk per recorded chunk; empty recorded chunks are skipped, since a zero-size chunk ends
the body). Every other recorded header, ``Content-Encoding`` included, goes back as
recorded, and the chunks are the recorded bytes, so encoding stays consistent. A step
registered with ``truncated=True`` (the recorded stream broke off) ends by closing the
connection without the final chunk, as the original did. Connections are kept alive
unless the request says ``Connection: close``. An unknown or used token gets a 404.

A WebSocket handshake registered with ``register_websocket`` is answered ``101`` and the
recorded conversation is played on that connection (``replay.wsserve``). A request
registered with ``register_hang`` (an injected timeout) gets no answer at all: the
connection stays open until the client gives up, or at most the bound, then closes.

``PlaybackThread`` runs a server on its own event loop in a daemon thread, for callers
outside an asyncio loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http import HTTPStatus

from rewind.canon.websocket import Transcript
from rewind.core.exchange import HOP_HEADERS, Frame, Headers
from rewind.replay.pace import FAST, Pace, sleep_until
from rewind.replay.wsserve import Converser, WsPlayback, upgrade_head

__all__ = ["PLAYBACK_HEADER", "PlaybackServer", "PlaybackThread"]

PLAYBACK_HEADER = "x-rewind-playback"
_HEAD_LIMIT = 1 << 20
_UNKNOWN = b"unknown or already used playback token\n"


@dataclass(frozen=True)
class _Playback:
    status: int
    reason: str
    headers: Headers
    chunks: tuple[tuple[float, bytes], ...]
    truncated: bool = False


@dataclass(frozen=True)
class _Hang:
    bound_s: float


@dataclass(frozen=True)
class _Request:
    method: str
    version: str
    headers: dict[str, str]

    @property
    def keep_alive(self) -> bool:
        connection = self.headers.get("connection", "").lower()
        return connection != "close" and (self.version != "HTTP/1.0" or connection == "keep-alive")


class PlaybackServer:
    """Serves registered recorded responses chunk by chunk with recorded pacing."""

    def __init__(self, pace: Pace = FAST, host: str = "127.0.0.1") -> None:
        self.pace = pace
        self.host = host
        self.port = 0
        self._lock = threading.Lock()
        self._pending: dict[str, _Playback | WsPlayback | _Hang] = {}
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def register(
        self,
        status: int,
        reason: str,
        headers: Headers,
        chunks: Sequence[tuple[float, bytes]],
        *,
        truncated: bool = False,
    ) -> str:
        """Queue a response for one playback; returns its token. Thread-safe."""
        return self._queue(_Playback(status, reason, tuple(headers), tuple(chunks), truncated))

    def register_websocket(
        self, reason: str, headers: Headers, transcript: Transcript, on_miss: Callable[[Frame], None]
    ) -> str:
        """Queue a WebSocket conversation for one playback; returns its token. Thread-safe."""
        return self._queue(WsPlayback(reason, tuple(headers), transcript, on_miss))

    def register_hang(self, bound_s: float) -> str:
        """Queue a request that is never answered (at most ``bound_s``); returns its token."""
        return self._queue(_Hang(bound_s))

    def _queue(self, playback: _Playback | WsPlayback | _Hang) -> str:
        """Keep ``playback`` for the one request that brings the returned token."""
        token = secrets.token_urlsafe(16)
        with self._lock:
            self._pending[token] = playback
        return token

    def _claim(self, token: str | None) -> _Playback | WsPlayback | _Hang | None:
        with self._lock:
            return self._pending.pop(token, None) if token else None

    @property
    def pending(self) -> int:
        """How many registered responses have not been played yet."""
        with self._lock:
            return len(self._pending)

    async def start(self) -> int:
        """Listen on a free port of ``host``; returns the port."""
        self._server = await asyncio.start_server(self._serve, self.host, 0, limit=_HEAD_LIMIT)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        """Stop listening and end every open connection."""
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while await self._exchange(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; ``True`` to keep the connection for another."""
        started = asyncio.get_running_loop().time()
        request = await _read_request(reader)
        if request is None:
            return False
        playback = self._claim(request.headers.get(PLAYBACK_HEADER))
        if playback is None:
            await _write_unknown(writer, request.keep_alive)
            return request.keep_alive
        if isinstance(playback, _Hang):
            with contextlib.suppress(TimeoutError):  # until the client (via the proxy) hangs up
                await asyncio.wait_for(reader.read(), playback.bound_s)
            return False
        if isinstance(playback, WsPlayback):
            writer.write(upgrade_head(playback, request.headers.get("sec-websocket-key", "")))
            await writer.drain()
            await Converser(playback, self.pace, writer).run(reader, started)
            return False
        await self._play(writer, playback, request, started)
        return request.keep_alive and not playback.truncated

    async def _play(
        self, writer: asyncio.StreamWriter, playback: _Playback, request: _Request, started: float
    ) -> None:
        has_body = _has_body(request.method, playback.status)
        keep_alive = request.keep_alive and not playback.truncated
        writer.write(_head(playback, keep_alive, has_body))
        await writer.drain()
        if not has_body:
            return
        for t_ms, data in playback.chunks:
            await sleep_until(started + self.pace.delay_s(0.0, t_ms))
            await _write_chunk(writer, data)
        if not playback.truncated:
            writer.write(b"0\r\n\r\n")
            await writer.drain()


async def _read_request(reader: asyncio.StreamReader) -> _Request | None:
    """The next request on the connection (its body read and dropped); ``None`` at EOF."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial.strip():
            raise
        return None
    request = _parse_head(head.decode("latin-1"))
    await _skip_body(reader, request.headers)
    return request


def _parse_head(head: str) -> _Request:
    request_line, *lines = head.rstrip("\r\n").split("\r\n")
    method, _, rest = request_line.partition(" ")
    version = rest.rpartition(" ")[2] or "HTTP/1.1"
    pairs = (line.partition(":") for line in lines if ":" in line)
    return _Request(method.upper(), version, {k.strip().lower(): v.strip() for k, _, v in pairs})


async def _skip_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> None:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        await _skip_chunked(reader)
    elif headers.get("content-length", "").strip().isdigit():
        await reader.readexactly(int(headers["content-length"]))


async def _skip_chunked(reader: asyncio.StreamReader) -> None:
    while size := int((await reader.readuntil(b"\r\n")).split(b";")[0].strip() or b"0", 16):
        await reader.readexactly(size + 2)
    while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
        pass


def _has_body(method: str, status: int) -> bool:
    return method != "HEAD" and status >= 200 and status not in (204, 304)


def _head(playback: _Playback, keep_alive: bool, has_body: bool) -> bytes:
    reason = playback.reason or _phrase(playback.status)
    lines = [f"HTTP/1.1 {playback.status} {reason}"]
    lines += [f"{k}: {v}" for k, v in playback.headers if k.lower() not in HOP_HEADERS]
    lines += ["transfer-encoding: chunked"] * has_body
    lines += ["connection: keep-alive" if keep_alive else "connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape")


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


async def _write_chunk(writer: asyncio.StreamWriter, data: bytes) -> None:
    if data:
        writer.write(b"%x\r\n%s\r\n" % (len(data), data))
        await writer.drain()


async def _write_unknown(writer: asyncio.StreamWriter, keep_alive: bool) -> None:
    connection = b"keep-alive" if keep_alive else b"close"
    writer.write(
        b"HTTP/1.1 404 Not Found\r\ncontent-type: text/plain\r\n"
        b"content-length: %d\r\nconnection: %s\r\n\r\n%s" % (len(_UNKNOWN), connection, _UNKNOWN)
    )
    await writer.drain()


class PlaybackThread:
    """A ``PlaybackServer`` running on its own event loop in a daemon thread."""

    def __init__(self, pace: Pace = FAST, host: str = "127.0.0.1") -> None:
        self.server = PlaybackServer(pace, host)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.server.port

    def start(self, timeout: float = 10.0) -> int:
        """Start the loop thread and the server; returns the port."""
        loop = self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=loop.run_forever, name="rewind-playback", daemon=True)
        self._thread.start()
        return asyncio.run_coroutine_threadsafe(self.server.start(), loop).result(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server, then the loop and its thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        asyncio.run_coroutine_threadsafe(self.server.stop(), loop).result(timeout)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        loop.close()
        self._loop = self._thread = None

    def register(
        self,
        status: int,
        reason: str,
        headers: Headers,
        chunks: Sequence[tuple[float, bytes]],
        *,
        truncated: bool = False,
    ) -> str:
        """Queue a response for one playback; returns its token. Thread-safe."""
        return self.server.register(status, reason, headers, chunks, truncated=truncated)

    def register_websocket(
        self, reason: str, headers: Headers, transcript: Transcript, on_miss: Callable[[Frame], None]
    ) -> str:
        """Queue a WebSocket conversation for one playback; returns its token. Thread-safe."""
        return self.server.register_websocket(reason, headers, transcript, on_miss)

    def register_hang(self, bound_s: float) -> str:
        """Queue a request that is never answered (at most ``bound_s``). Thread-safe."""
        return self.server.register_hang(bound_s)
