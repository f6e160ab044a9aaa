"""The recording addon: each mitmproxy flow becomes an ``Exchange`` handed to a sink.

Thin by design: hooks note timings and stream chunks, then plain functions build the
record. The recorded URL is the logical one, noted before any later addon (the replay
addon, the ``Router`` for ``--route``) points the request somewhere else.

Durability: the ``response`` and ``error`` hooks are ``async`` and await the sink's
future, and mitmproxy sends nothing more of that flow until they return. A buffered
response goes out only after the hook; a streamed one has its chunks passed on at once,
but its end (the chunked terminator, HTTP/2 end-of-stream, or the closing of a
read-until-close connection) is sent after the hook. So a response the agent saw
complete has its step on disk, even after ``kill -9`` of the recorder. A streamed type
that carries a Content-Length would be complete at the client before the hook runs, so
such responses are buffered instead of streamed (they are rare, and their client reads
them as one body anyway).

A client may close as soon as it has read a stream's last event, before the upstream's
end-of-stream reaches the proxy (mitmproxy then reports "Client disconnected." and drops
the upstream). Such an exchange keeps the chunks the client was given, and its error
says the client stopped reading (``CLIENT_STOPPED_READING``); the store drops that error
when the stream was complete by its provider's format, and keeps it when it was cut off.

Speed: given ``prepare``, the request-side work of storing (redaction, fingerprint) runs on
the event loop right after the request hook, while the upstream answers; the exchange
carries it, and the store reuses it unless a secret learned since makes it stale.

Memory: a streamed body is joined once, and its chunks become views of that one body.

WebSockets: a handshake the server accepts (``101``) is kept when the conversation ends
(``websocket_end``), with every message in both directions and their times, as one
exchange with ``frames``. One still open when the proxy stops is kept then, with an error
saying so. So a conversation's step reaches the journal when it closes, not per message:
``kill -9`` of the recorder during a conversation loses that conversation.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from mitmproxy import connection, http, tcp, tls

from rewind.capture.listeners import ListenerPorts, is_passthrough
from rewind.core.exchange import CLIENT_STOPPED_READING, Chunk, Close, Exchange, Frame, Headers

# Takes an exchange; may return a future resolved once it is stored (or has failed).
Sink = Callable[[Exchange], "Future[Any] | None"]
# Called in the request hook with the logical URL and the headers the agent sent.
RequestObserver = Callable[[str, Headers], None]
# Does the request-side work of storing an exchange while its response is awaited.
Preparer = Callable[[Exchange], object]
STREAMED_TYPES = ("text/event-stream", "application/x-ndjson", "application/jsonl")
META_STEP = "rewind_step"
META_URL = "rewind_url"
META_TAP = "rewind_tap"
META_HEADERS = "rewind_request_headers"
META_KEPT = "rewind_kept"
META_STILL_OPEN = "rewind_still_open"
META_PREPARED = "rewind_prepared"
# How mitmproxy words an HTTP/2 client's reset of one stream (its connection stays open).
STREAM_RESET = "stream reset by client"
STILL_OPEN = "the recording ended while this WebSocket was still open"


class StreamTap:
    """``flow.response.stream`` callable: passes chunks on at once, noting arrival times."""

    def __init__(self, started: float) -> None:
        self.started = started
        self.chunks: list[Chunk] = []

    def __call__(self, data: bytes) -> bytes:
        if data:
            self.chunks.append(Chunk((time.time() - self.started) * 1000, data))
        return data

    def joined(self) -> tuple[bytes, tuple[Chunk, ...]]:
        """The whole body, and the chunks as views of it (their own copies are let go)."""
        body = b"".join(c.data for c in self.chunks)
        self.chunks = list(_views(body, self.chunks))
        return body, tuple(self.chunks)


def _views(body: bytes, chunks: list[Chunk]) -> list[Chunk]:
    view, start, out = memoryview(body), 0, []
    for chunk in chunks:
        end = start + len(chunk.data)
        out.append(Chunk(chunk.t_ms, view[start:end]))
        start = end
    return out


class Recorder:
    """Records every flow, noting which provider's listener it came through."""

    def __init__(
        self,
        sink: Sink,
        ports: ListenerPorts | None = None,
        notify: Callable[[str], None] | None = None,
        on_request: RequestObserver | None = None,
        prepare: Preparer | None = None,
    ) -> None:
        self.sink = sink
        self.prepare = prepare
        self.ports = ports or ListenerPorts()
        self.notify = notify or _to_stderr
        self.on_request = on_request
        self._steps = itertools.count(1)
        self._hinted: set[str] = set()
        self._open_websockets: dict[str, http.HTTPFlow] = {}

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if not is_passthrough(flow):
            flow.metadata[META_STEP] = next(self._steps)

    def request(self, flow: http.HTTPFlow) -> None:
        if META_STEP not in flow.metadata:
            return
        url = flow.metadata[META_URL] = flow.request.url
        headers = flow.metadata[META_HEADERS] = _headers(flow.request.headers)  # as sent
        if self.on_request is not None:
            self.on_request(url, headers)
        flow.request.headers["accept-encoding"] = "identity"
        if self.prepare is not None:  # once the request is on its way upstream
            asyncio.get_running_loop().call_soon(self._prepare, flow)

    def _prepare(self, flow: http.HTTPFlow) -> None:
        """The request-side work of storing, while the upstream answers. A failure here
        only means the work is done again when the exchange is stored (and reported then)."""
        if self.prepare is None or flow.response is not None or flow.metadata.get(META_KEPT):
            return
        try:
            flow.metadata[META_PREPARED] = self.prepare(_request_only(flow, self.ports.provider_of(flow)))
        except Exception:  # noqa: BLE001 - the storing path redoes it and reports
            flow.metadata.pop(META_PREPARED, None)

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        assert flow.response is not None
        recorded = META_STEP in flow.metadata
        if recorded and is_streamed(flow.response) and "content-length" not in flow.response.headers:
            tap = StreamTap(flow.request.timestamp_start)
            flow.metadata[META_TAP] = tap
            flow.response.stream = tap

    async def response(self, flow: http.HTTPFlow) -> None:
        if flow.websocket is not None and META_STEP in flow.metadata:
            self._open_websockets[flow.id] = flow  # kept when the conversation ends
            return
        await self._keep(flow)

    async def error(self, flow: http.HTTPFlow) -> None:
        await self._keep(flow)

    async def websocket_end(self, flow: http.HTTPFlow) -> None:
        self._open_websockets.pop(flow.id, None)
        await self._keep(flow)

    def done(self) -> None:
        """The proxy stops: conversations still open are kept as they are, saying so."""
        for flow in list(self._open_websockets.values()):
            flow.metadata[META_STILL_OPEN] = True
            self._hand_over(flow)
        self._open_websockets.clear()

    async def _keep(self, flow: http.HTTPFlow) -> None:
        """Hand a flow over once (a client can hang up after its response was recorded),
        and return once it is stored, before mitmproxy sends the response's last bytes."""
        stored = self._hand_over(flow)
        if stored is not None and not stored.done():
            await asyncio.wrap_future(stored)

    def _hand_over(self, flow: http.HTTPFlow) -> Future[Any] | None:
        if META_STEP not in flow.metadata or flow.metadata.get(META_KEPT):
            return None
        flow.metadata[META_KEPT] = True
        return self.sink(to_exchange(flow, self.ports.provider_of(flow)))

    def tls_failed_client(self, data: tls.TlsData) -> None:
        host = data.context.client.sni or "a server"
        self._hint_once(host, ca_hint(host))

    def tcp_start(self, flow: tcp.TCPFlow) -> None:
        """Traffic that is not HTTP passes through unrecorded: say so, once per server."""
        address = flow.server_conn.address
        server = f"{address[0]}:{address[1]}" if address else "a server"
        self._hint_once(f"tcp {server}", unrecorded_hint(server))

    def _hint_once(self, key: str, message: str) -> None:
        if key not in self._hinted:
            self._hinted.add(key)
            self.notify(message)


def unrecorded_hint(server: str) -> str:
    return (
        f"rewind: WARNING: a connection to {server} through the proxy is not HTTP, so it "
        "passes through UNRECORDED and replay cannot answer it (Rewind records HTTP/1, "
        "HTTP/2 and WebSockets)."
    )


def ca_hint(host: str) -> str:
    return (
        f"rewind: a client refused Rewind's certificate for {host}, so that call was not "
        "recorded. Trust the CA: `rewind record` sets SSL_CERT_FILE, REQUESTS_CA_BUNDLE, "
        "CURL_CA_BUNDLE and NODE_EXTRA_CA_CERTS to $REWIND_HOME/ca/bundle.pem; a client that "
        "pins its own roots needs that file (or ca/rewind-ca-cert.pem) passed explicitly."
    )


def is_streamed(response: http.Response) -> bool:
    content_type = response.headers.get("content-type", "").lower()
    return content_type.startswith(STREAMED_TYPES)


def to_exchange(flow: http.HTTPFlow, listener: str | None) -> Exchange:
    """The plain record of a finished (or failed) flow."""
    exchange = _request_only(flow, listener)
    exchange.prepared = flow.metadata.get(META_PREPARED)
    if flow.response is not None:
        _add_response(exchange, flow.response, flow.metadata.get(META_TAP))
    if flow.websocket is not None:
        _add_conversation(exchange, flow)
    if flow.error is not None:
        stopped = stopped_reading(flow)
        exchange.error = f"{CLIENT_STOPPED_READING}: {flow.error.msg}" if stopped else flow.error.msg
    return exchange


def _request_only(flow: http.HTTPFlow, listener: str | None) -> Exchange:
    request = flow.request
    return Exchange(
        step=int(flow.metadata[META_STEP]),
        started_at=request.timestamp_start,
        method=request.method,
        url=str(flow.metadata.get(META_URL, request.url)),
        request_headers=flow.metadata.get(META_HEADERS) or _headers(request.headers),
        request_body=request.get_content(strict=False) or b"",
        listener=listener,
        http_version=request.http_version,
    )


def stopped_reading(flow: http.HTTPFlow) -> bool:
    """The client hung up while a response streamed to it, after it was given chunks."""
    tap = flow.metadata.get(META_TAP)
    return isinstance(tap, StreamTap) and bool(tap.chunks) and client_hung_up(flow)


def client_hung_up(flow: http.HTTPFlow) -> bool:
    """The flow failed by the client's doing: it closed its side of the connection (mitmproxy
    says "Client disconnected." for HTTP/1, "peer closed connection" for HTTP/2, words it
    also uses for a server), or it reset its HTTP/2 stream."""
    closed = not flow.client_conn.state & connection.ConnectionState.CAN_READ
    return closed or (flow.error is not None and flow.error.msg.startswith(STREAM_RESET))


def _add_response(exchange: Exchange, response: http.Response, tap: Any) -> None:
    started = exchange.started_at
    exchange.status = response.status_code
    exchange.reason = response.reason
    if isinstance(tap, StreamTap):
        exchange.response_body, exchange.chunks = tap.joined()
        exchange.response_headers = _headers(response.headers)
        exchange.ttfb_ms = exchange.chunks[0].t_ms if exchange.chunks else None
    else:
        exchange.response_body, exchange.response_headers = _decoded_body(response)
        exchange.ttfb_ms = (response.timestamp_start - started) * 1000
    if response.timestamp_end is not None:
        exchange.latency_ms = (response.timestamp_end - started) * 1000
    elif exchange.chunks:  # the client stopped reading before the end: its last chunk
        exchange.latency_ms = exchange.chunks[-1].t_ms


def _add_conversation(exchange: Exchange, flow: http.HTTPFlow) -> None:
    """A WebSocket's messages and end, timed from the handshake request."""
    ws, started = flow.websocket, exchange.started_at
    assert ws is not None
    exchange.frames = tuple(
        Frame(round((m.timestamp - started) * 1000, 3), m.from_client, m.is_text, m.content)
        for m in ws.messages
    )
    if ws.timestamp_end is not None:
        t_ms = round((ws.timestamp_end - started) * 1000, 3)
        exchange.close = Close(t_ms, bool(ws.closed_by_client), ws.close_code, ws.close_reason or "")
        exchange.latency_ms = t_ms
    if flow.metadata.get(META_STILL_OPEN):
        exchange.error = STILL_OPEN


def _decoded_body(response: http.Response) -> tuple[bytes, Headers]:
    """The body without content-encoding (no copy when it has none), and headers that say so."""
    raw = response.raw_content or b""
    if "content-encoding" not in response.headers:
        return raw, _headers(response.headers)
    body = response.get_content(strict=False) or b""
    headers = response.headers.copy()
    if body is not raw:
        del headers["content-encoding"]
        if "content-length" in headers:
            headers["content-length"] = str(len(body))
    return body, _headers(headers)


def _headers(headers: http.Headers) -> Headers:
    return tuple((k, v) for k, v in headers.items(multi=True))


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
