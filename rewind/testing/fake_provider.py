"""A fake LLM provider on loopback: the outside world, for tests and ``make demo``.

One HTTP/1.1 server (keep-alive, stdlib only) answers, faithfully enough for the
official SDKs to parse every response:

- OpenAI ``POST /v1/chat/completions`` (:mod:`rewind.testing.fake_openai`);
- OpenAI ``POST /v1/responses`` and ``GET``/``DELETE /v1/responses/{id}``
  (:mod:`rewind.testing.fake_responses`);
- OpenAI Realtime over WebSocket, ``GET /v1/realtime?model=NAME``
  (:mod:`rewind.testing.fake_realtime`);
- Anthropic ``POST /v1/messages`` (:mod:`rewind.testing.fake_anthropic`);
- Gemini ``POST /v1beta/models/{model}:generateContent`` and
  ``:streamGenerateContent`` (:mod:`rewind.testing.fake_gemini`);
- plain tool endpoints under ``/tools/`` (:mod:`rewind.testing.fake_tools`);
- telemetry sinks: ``POST /v1/traces/ingest`` (openai-agents' trace export) answers
  ``204 No Content`` as OpenAI does, and LangSmith's ``POST /runs/batch`` and
  ``/runs/multipart`` answer ``202 {}`` (route ``api.smith.langchain.com`` here);
- ``GET /_fake/stats`` (``{"requests": n, "by_path": {...}}``) and ``POST /_fake/reset``,
  which are not counted as requests;
- ``GET /_fake/big?bytes=N[&sse=1]``: a JSON body (or an SSE stream) of about N bytes,
  for memory benchmarks; not counted either.

Markers in the last user text drive failures and pacing; see
:mod:`rewind.testing.fake_common`. Usage::

    with FakeProvider(chunk_delay_ms=0) as fake:
        fake.url            # "http://127.0.0.1:PORT"
        fake.request_count  # requests seen, /_fake/ excluded
        fake.requests       # [FakeRequest(method, path, query, headers, body)]
        fake.ws_messages    # WebSocket messages received, all connections

or ``python -m rewind.testing.fake_provider [--port N] [--chunk-delay-ms N]``, which
prints the URL on its first stdout line and serves until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import gzip
import json
import signal
import socket
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

from rewind.testing import (
    fake_anthropic,
    fake_gemini,
    fake_openai,
    fake_realtime,
    fake_responses,
    fake_tools,
)
from rewind.testing.fake_common import (
    ChatFormat,
    DropReply,
    FakeContext,
    FakeRequest,
    JsonReply,
    Reply,
    StreamReply,
    serve_chat,
    sse_data,
)

__all__ = ["FakeProvider", "FakeRequest", "main"]

CONTROL_PREFIX = "/_fake/"
_OPENAI = fake_openai.OpenAIChat()
_ANTHROPIC = fake_anthropic.AnthropicMessages()
_GEMINI = fake_gemini.GeminiGenerate()


class FakeProvider:
    """A fake OpenAI/Anthropic/Gemini/tool server on ``127.0.0.1`` and a free port.

    ``chunk_delay_ms`` is the gap between SSE chunks unless a request says
    ``[[delay:MS]]``; ``api_key``, when given, is the only key accepted (otherwise any
    non-empty key is); ``gzip`` compresses JSON bodies for clients that accept it.
    """

    def __init__(
        self,
        chunk_delay_ms: int = 0,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        gzip: bool = False,
    ) -> None:
        self.chunk_delay_ms = chunk_delay_ms
        self.gzip = gzip
        self.context = FakeContext(api_key=api_key)
        self._address = (host, port)
        self._requests: list[FakeRequest] = []
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> Self:
        """Bind and serve in a daemon thread; returns self."""
        if self._server is None:
            self._server = _Server(self._address, self)
            self._thread = threading.Thread(
                target=self._server.serve_forever, args=(0.05,), name="fake-provider", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and cut open connections (keep-alive ones too); never hangs."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def port(self) -> int:
        """The port the server listens on."""
        if self._server is None:
            raise RuntimeError("FakeProvider is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``, without a trailing slash."""
        return f"http://{self._address[0]}:{self.port}"

    @property
    def requests(self) -> list[FakeRequest]:
        """Every request received so far, in order (``/_fake/`` excluded)."""
        with self._lock:
            return list(self._requests)

    @property
    def request_count(self) -> int:
        """How many requests were received (``/_fake/`` excluded)."""
        with self._lock:
            return len(self._requests)

    @property
    def ws_messages(self) -> int:
        """WebSocket messages received from clients, all connections (not pings or closes)."""
        return fake_realtime.messages_received(self.context)

    def stats(self) -> dict[str, Any]:
        """``{"requests": n, "by_path": {path: n}}``, as ``GET /_fake/stats`` answers."""
        with self._lock:
            by_path = Counter(r.path for r in self._requests)
            return {"requests": len(self._requests), "by_path": dict(by_path)}

    def reset(self) -> None:
        """Forget the requests received so far, the prompt cache and stored responses."""
        with self._lock:
            self._requests.clear()
        fake_realtime.forget_messages(self.context)
        with self.context.lock:
            self.context.cached_prefixes.clear()
        fake_responses.store_of(self.context).clear()

    def handle(self, request: FakeRequest) -> Reply:
        """Record ``request`` (unless it is a control request) and build the reply."""
        if request.path.startswith(CONTROL_PREFIX):
            return self._control(request)
        with self._lock:
            self._requests.append(request)
        return route(request, self.context)

    def _control(self, request: FakeRequest) -> Reply:
        if request.path == CONTROL_PREFIX + "big":
            return big_reply(request)
        if request.path == CONTROL_PREFIX + "reset":
            self.reset()
        if request.path in (CONTROL_PREFIX + "reset", CONTROL_PREFIX + "stats"):
            return JsonReply(200, self.stats())
        return JsonReply(404, {"error": f"Unknown control path {request.path}"})


def big_reply(request: FakeRequest) -> Reply:
    """About ``bytes`` of filler: one JSON body, or ``sse=1`` 16 KB ``data:`` events."""
    size = int(request.param("bytes") or 0)
    if request.param("sse"):
        event = sse_data({"pad": "x" * 16_000})
        return StreamReply((event,) * max(1, size // len(event)))
    return JsonReply(200, {"pad": "x" * size})


def route(request: FakeRequest, context: FakeContext) -> Reply:
    """The reply to a recorded request, by path."""
    if request.path.startswith(fake_tools.PREFIX):
        return fake_tools.handle(request)
    if request.method == "POST" and request.path in TELEMETRY_SINKS:
        return TELEMETRY_SINKS[request.path]
    if fake_realtime.handles(request.path):
        return fake_realtime.handshake(request, context)
    if fake_responses.handles(request.path):
        return fake_responses.serve(request, context)
    fmt = chat_format(request.path)
    if fmt is None:
        return JsonReply(404, {"error": {"message": f"Invalid URL ({request.method} {request.path})"}})
    if request.method != "POST":
        return fmt.error(405, f"Method {request.method} not allowed on {request.path}")
    return serve_chat(fmt, request, context)


# What the real services answer a trace upload; the body of a 204 is never sent.
TELEMETRY_SINKS: dict[str, Reply] = {
    "/v1/traces/ingest": JsonReply(204, None),
    "/runs/batch": JsonReply(202, {}),
    "/runs/multipart": JsonReply(202, {}),
}


def chat_format(path: str) -> ChatFormat | None:
    """Which provider's chat format serves ``path``."""
    if path in fake_openai.PATHS:
        return _OPENAI
    if path in fake_anthropic.PATHS:
        return _ANTHROPIC
    if fake_gemini.PATH.match(path):
        return _GEMINI
    return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], provider: FakeProvider) -> None:
        self.provider = provider
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def track(self, connection: socket.socket, is_open: bool) -> None:
        with self.connections_lock:
            (self.connections.add if is_open else self.connections.discard)(connection)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client hanging up (as proxies and SDKs do) is normal, not a traceback."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def close_connections(self) -> None:
        with self.connections_lock:
            connections = list(self.connections)
        for connection in connections:
            _shut(connection)


def _shut(connection: socket.socket) -> None:
    try:
        connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


NO_BODY_STATUSES = (101, 204, 304)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        self.server.track(self.connection, False)
        try:
            super().finish()
        except OSError:
            pass

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests and the demo read stdout and stderr."""

    def _dispatch(self) -> None:
        request = self._request()
        try:
            reply = self.server.provider.handle(request)
            self._send(reply)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            return
        if fake_realtime.is_upgrade(reply):
            self._converse(request)

    def _converse(self, request: FakeRequest) -> None:
        """After a ``101`` the connection speaks WebSocket until one side closes it."""
        self.close_connection = True
        fake = self.server.provider
        fake_realtime.converse(request, self.connection, self.rfile, fake.context, fake.chunk_delay_ms)

    def _request(self) -> FakeRequest:
        path, _, query = self.path.partition("?")
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        return FakeRequest(self.command, path, query, headers, self._body())

    def _body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._chunked_body()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _chunked_body(self) -> bytes:
        parts: list[bytes] = []
        while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
            parts.append(self.rfile.read(size))
            self.rfile.readline()
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass
        return b"".join(parts)

    def _send(self, reply: Reply) -> None:
        if isinstance(reply, DropReply):
            self.close_connection = True
            _shut(self.connection)
        elif isinstance(reply, StreamReply):
            self._send_stream(reply)
        else:
            self._send_json(reply)

    def _send_json(self, reply: JsonReply) -> None:
        if reply.status in NO_BODY_STATUSES:
            self._head(reply.status, dict(reply.headers))
            return
        body = json.dumps(reply.payload).encode()
        headers = dict(reply.headers)
        headers.setdefault("content-type", "application/json")
        if self.server.provider.gzip and "gzip" in self.headers.get("Accept-Encoding", ""):
            body, headers["content-encoding"] = gzip.compress(body), "gzip"
        headers["content-length"] = str(len(body))
        self._head(reply.status, headers)
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_stream(self, reply: StreamReply) -> None:
        chunked = self.request_version != "HTTP/1.0"
        headers = {"content-type": reply.content_type, "cache-control": "no-cache"}
        headers.update(reply.headers)
        headers.update({"transfer-encoding": "chunked"} if chunked else {"connection": "close"})
        self.close_connection = self.close_connection or not chunked
        self._head(200, headers)
        delay = self.server.provider.chunk_delay_ms if reply.delay_ms is None else reply.delay_ms
        for index, event in enumerate(reply.events):
            if index and delay > 0:
                time.sleep(delay / 1000)
            self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event) if chunked else event)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")

    def _head(self, status: int, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM or SIGINT, after printing the URL on the first stdout line."""
    args = _parser().parse_args(argv)
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    with FakeProvider(args.chunk_delay_ms, port=args.port, api_key=args.api_key) as fake:
        print(fake.url, flush=True)
        while not stopping.wait(0.5):
            pass
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m rewind.testing.fake_provider",
        description="Serve a fake OpenAI/Anthropic/Gemini provider on 127.0.0.1.",
    )
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    parser.add_argument("--chunk-delay-ms", type=int, default=0, help="gap between SSE chunks")
    parser.add_argument("--api-key", default=None, help="the only API key to accept")
    return parser


if __name__ == "__main__":
    sys.exit(main())
