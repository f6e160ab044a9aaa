"""The ``LoopbackGate`` addon: sorts the loopback calls that reach the regular proxy when
local ports are recorded or replayed (see ``capture.local``)."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from mitmproxy import http
from mitmproxy.proxy import server_hooks

from rewind.capture.listeners import LISTENER_META, PASSTHROUGH_META, ListenerPorts
from rewind.capture.local import is_loopback, local_ports_of


class LoopbackGate:
    """Addon, first in the chain: a loopback call for one of Rewind's own listeners is
    treated as if it had arrived there (recorded once, under that listener); a call to a
    recorded local port is left to be recorded; a call to any other local port passes
    through, neither recorded nor replayed, as it would without Rewind."""

    def __init__(self, ports: ListenerPorts, upstreams: Mapping[str, str]) -> None:
        self.ports = ports
        self.upstreams = dict(upstreams)
        self.local_ports = local_ports_of(upstreams)

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        request = flow.request
        if self.ports.provider_of(flow) is not None or not is_loopback(request.host):
            return
        own = self.ports.provider_at(request.port)
        if own is not None:
            _as_if_on_listener(flow, own, self.upstreams[own])
        elif request.port not in self.local_ports:
            flow.metadata[PASSTHROUGH_META] = True


def _as_if_on_listener(flow: http.HTTPFlow, provider: str, upstream: str) -> None:
    """Point a call the regular proxy got for one of Rewind's listeners at that
    listener's upstream, as the listener would have, and note the listener."""
    parts = urlsplit(upstream)
    request = flow.request
    request.scheme = parts.scheme
    request.host = parts.hostname or request.host
    request.port = parts.port or (443 if parts.scheme == "https" else 80)
    request.headers["host"] = parts.netloc.rpartition("@")[2]
    flow.metadata[LISTENER_META] = provider


def passthrough_connection(data: server_hooks.ServerConnectionHookData, recorded: frozenset[int]) -> bool:
    """Whether a replay may open this upstream connection: to loopback, on a port that
    was not recorded (a passthrough call's own server)."""
    address = data.server.address
    return address is not None and is_loopback(str(address[0])) and int(address[1]) not in recorded
