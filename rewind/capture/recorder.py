"""The recording addon: each mitmproxy flow becomes an ``Exchange`` handed to a sink.

Thin by design: hooks note timings and stream chunks, then plain functions build the
record. The recorded URL is the logical one, noted before any later addon (the replay
addon, the ``Router`` for ``--route``) points the request somewhere else.
"""

from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Callable
from typing import Any

from mitmproxy import http, tls

from rewind.capture.listeners import ListenerPorts
from rewind.core.exchange import Chunk, Exchange, Headers

Sink = Callable[[Exchange], None]
STREAMED_TYPES = ("text/event-stream", "application/x-ndjson", "application/jsonl")
META_STEP = "rewind_step"
META_URL = "rewind_url"
META_TAP = "rewind_tap"
META_HEADERS = "rewind_request_headers"
META_KEPT = "rewind_kept"


class StreamTap:
    """``flow.response.stream`` callable: passes chunks on at once, noting arrival times."""

    def __init__(self, started: float) -> None:
        self.started = started
        self.chunks: list[Chunk] = []

    def __call__(self, data: bytes) -> bytes:
        if data:
            self.chunks.append(Chunk((time.time() - self.started) * 1000, data))
        return data


class Recorder:
    """Records every flow, noting which provider's listener it came through."""

    def __init__(
        self,
        sink: Sink,
        ports: ListenerPorts | None = None,
        notify: Callable[[str], None] | None = None,
    ) -> None:
        self.sink = sink
        self.ports = ports or ListenerPorts()
        self.notify = notify or _to_stderr
        self._steps = itertools.count(1)
        self._hinted: set[str] = set()

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        flow.metadata[META_STEP] = next(self._steps)

    def request(self, flow: http.HTTPFlow) -> None:
        flow.metadata[META_URL] = flow.request.url
        flow.metadata[META_HEADERS] = _headers(flow.request.headers)  # as the agent sent them
        flow.request.headers["accept-encoding"] = "identity"

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        assert flow.response is not None
        if is_streamed(flow.response):
            tap = StreamTap(flow.request.timestamp_start)
            flow.metadata[META_TAP] = tap
            flow.response.stream = tap

    def response(self, flow: http.HTTPFlow) -> None:
        self._keep(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._keep(flow)

    def _keep(self, flow: http.HTTPFlow) -> None:
        """Hand a flow over once (a client can hang up after its response was recorded)."""
        if META_STEP in flow.metadata and not flow.metadata.get(META_KEPT):
            flow.metadata[META_KEPT] = True
            self.sink(to_exchange(flow, self.ports.provider_of(flow)))

    def tls_failed_client(self, data: tls.TlsData) -> None:
        host = data.context.client.sni or "a server"
        if host not in self._hinted:
            self._hinted.add(host)
            self.notify(ca_hint(host))


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
    request = flow.request
    exchange = Exchange(
        step=int(flow.metadata[META_STEP]),
        started_at=request.timestamp_start,
        method=request.method,
        url=str(flow.metadata.get(META_URL, request.url)),
        request_headers=flow.metadata.get(META_HEADERS) or _headers(request.headers),
        request_body=request.get_content(strict=False) or b"",
        listener=listener,
        http_version=request.http_version,
    )
    if flow.response is not None:
        _add_response(exchange, flow.response, flow.metadata.get(META_TAP))
    if flow.error is not None:
        exchange.error = flow.error.msg
    return exchange


def _add_response(exchange: Exchange, response: http.Response, tap: Any) -> None:
    started = exchange.started_at
    exchange.status = response.status_code
    exchange.reason = response.reason
    if isinstance(tap, StreamTap):
        exchange.chunks = tuple(tap.chunks)
        exchange.response_body = b"".join(c.data for c in tap.chunks)
        exchange.response_headers = _headers(response.headers)
        exchange.ttfb_ms = tap.chunks[0].t_ms if tap.chunks else None
    else:
        exchange.response_body, exchange.response_headers = _decoded_body(response)
        exchange.ttfb_ms = (response.timestamp_start - started) * 1000
    if response.timestamp_end is not None:
        exchange.latency_ms = (response.timestamp_end - started) * 1000


def _decoded_body(response: http.Response) -> tuple[bytes, Headers]:
    """The body without content-encoding, and headers that say so."""
    raw = response.raw_content or b""
    body = response.get_content(strict=False) or b""
    headers = response.headers.copy()
    if body != raw and "content-encoding" in headers:
        del headers["content-encoding"]
        if "content-length" in headers:
            headers["content-length"] = str(len(body))
    return body, _headers(headers)


def _headers(headers: http.Headers) -> Headers:
    return tuple((k, v) for k, v in headers.items(multi=True))


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
