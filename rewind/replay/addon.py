"""The replay addon: answers every request from the recording; nothing leaves the machine.

Hits that were not streamed are answered in the ``request`` hook with the recorded
bytes. Streamed hits are pointed at the in-process playback server, which writes the
recorded chunks with the chosen pacing; so are WebSocket handshakes, and the playback
server then plays the recorded conversation (``replay.wsserve``). Misses get an
explained, provider-shaped error, or, with ``--on-miss live``, go upstream (routed by
the ``Router`` that follows). In strict mode ``server_connect`` refuses any connection
except to the playback server and, when local model servers were recorded
(``--local-port``), to a loopback port that was not (a call the ``LoopbackGate`` let pass
through, as it did while recording).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from mitmproxy import http
from mitmproxy.proxy import server_hooks

from rewind.capture.gate import passthrough_connection
from rewind.capture.listeners import ListenerPorts, is_passthrough
from rewind.capture.routing import PLAYBACK_META
from rewind.capture.wiring import LOOPBACK
from rewind.core.exchange import HOP_HEADERS, Frame
from rewind.replay.engine import Answer, Incoming, ReplayEngine
from rewind.replay.modes import OnMiss
from rewind.replay.playback import PLAYBACK_HEADER, PlaybackThread


class ReplayAddon:
    """Serves one session's recorded answers to the agent; ``notify`` gets each miss's
    one-line headline (the full explanation is in the error body and ``engine.misses``)."""

    def __init__(
        self,
        engine: ReplayEngine,
        playback: PlaybackThread,
        on_miss: OnMiss = OnMiss.ERROR,
        notify: Callable[[str], None] | None = None,
        ports: ListenerPorts | None = None,
        local_ports: frozenset[int] = frozenset(),
    ) -> None:
        self.engine = engine
        self.playback = playback
        self.on_miss = on_miss
        self.notify = notify or (lambda _message: None)
        self.ports = ports or ListenerPorts()
        self.local_ports = local_ports  # recorded local model servers: never reached
        self.live = 0
        self._lock = threading.Lock()

    def request(self, flow: http.HTTPFlow) -> None:
        if is_passthrough(flow):
            return
        answer = self.engine.decide(self._incoming(flow))
        if answer.miss is not None and self.on_miss is OnMiss.LIVE:
            self.went_live()
            return
        self.answer(flow, answer)

    def went_live(self) -> None:
        """Count a request let through to its upstream."""
        with self._lock:
            self.live += 1

    def answer(self, flow: http.HTTPFlow, answer: Answer) -> None:
        """Send ``answer`` to the agent (a miss's explanation included, announced)."""
        if answer.miss is not None:
            self.notify(answer.miss.headline())
        if answer.websocket is not None:
            self._play_websocket(flow, answer)
        elif answer.streamed:
            truncated = answer.step is not None and answer.step.error is not None
            self.play_stream(flow, answer, truncated=truncated)
        else:
            flow.response = make_response(answer)

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        response = flow.response
        if flow.metadata.get(PLAYBACK_META) and response is not None and response.status_code != 101:
            response.stream = response.stream or True

    def server_connect(self, data: server_hooks.ServerConnectionHookData) -> None:
        if self.on_miss is OnMiss.LIVE or data.server.address == (LOOPBACK, self.playback.port):
            return
        if self.local_ports and passthrough_connection(data, self.local_ports):
            return
        data.server.error = "rewind replay is offline: no upstream connection is allowed"

    def _incoming(self, flow: http.HTTPFlow) -> Incoming:
        request = flow.request
        return Incoming(
            method=request.method,
            url=request.url,
            headers=tuple(request.headers.items(multi=True)),
            body=request.get_content(strict=False) or b"",
            listener=self.ports.provider_of(flow),
        )

    def _play_websocket(self, flow: http.HTTPFlow, answer: Answer) -> None:
        assert answer.websocket is not None
        url = flow.request.url

        def on_miss(message: Frame) -> None:
            self.notify(self.engine.websocket_miss(url, message).headline())

        token = self.playback.register_websocket(answer.reason, answer.headers, answer.websocket, on_miss)
        self.to_playback(flow, token)

    def play_stream(self, flow: http.HTTPFlow, answer: Answer, *, truncated: bool = False) -> None:
        """Have the playback server send ``answer``'s chunks, paced; ``truncated``: then
        close the connection without the stream's end."""
        assert answer.chunks is not None
        token = self.playback.register(
            answer.status, answer.reason, answer.headers, answer.chunks, truncated=truncated
        )
        self.to_playback(flow, token)

    def to_playback(self, flow: http.HTTPFlow, token: str) -> None:
        request = flow.request
        request.scheme, request.host, request.port = "http", LOOPBACK, self.playback.port
        request.headers[PLAYBACK_HEADER] = token
        flow.metadata[PLAYBACK_META] = True


def make_response(answer: Answer) -> http.Response:
    """The recorded response, with framing headers recomputed for the body sent."""
    headers = http.Headers(
        [(_raw(k), _raw(v)) for k, v in answer.headers if k.lower() not in HOP_HEADERS]
    )
    response = http.Response.make(answer.status, answer.body, headers)
    response.reason = answer.reason or response.reason
    return response


def _raw(text: str) -> bytes:
    """A recorded header's bytes, exactly as they came (undecodable ones included)."""
    return text.encode("utf-8", "surrogateescape")
