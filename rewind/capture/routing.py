"""``--route HOST=URL``: send a logical host's traffic to another place; and the
credentials of a provider's upstream URL, which a reverse listener cannot carry."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from mitmproxy import http

from rewind.capture.listeners import ListenerPorts
from rewind.capture.wiring import basic_credentials


class Router:
    """Addon, loaded after the recorder: sends routed hosts to their targets, and gives a
    request that came through a provider's listener the ``Authorization: Basic`` of that
    provider's upstream URL user-info (``OPENAI_BASE_URL=https://u:p@gw/v1``), unless the
    request has its own ``Authorization``. The recorder has noted the request as the
    agent sent it, so neither reaches the store.

    A request that an earlier addon already answered is left alone.
    """

    def __init__(
        self, routes: Mapping[str, str], ports: ListenerPorts | None = None,
        upstream_auth: Mapping[str, str] | None = None,
    ) -> None:
        self.routes = dict(routes)
        self.ports = ports or ListenerPorts()
        self.upstream_auth = dict(upstream_auth or {})  # provider -> "Basic ..."

    def request(self, flow: http.HTTPFlow) -> None:
        if flow.response is None and not flow.metadata.get(PLAYBACK_META):
            self._authorize(flow)
            apply_route(flow.request, self.routes)

    def _authorize(self, flow: http.HTTPFlow) -> None:
        provider = self.ports.provider_of(flow) if self.upstream_auth else None
        credentials = None if provider is None else self.upstream_auth.get(provider)
        if credentials and "authorization" not in flow.request.headers:
            flow.request.headers["authorization"] = credentials


PLAYBACK_META = "rewind_playback"


def route_for(request: http.Request, routes: Mapping[str, str]) -> str | None:
    """The route target for this request's host (``host:port`` first, then ``host``)."""
    host = request.host.lower()
    return routes.get(f"{host}:{request.port}") or routes.get(host)


def apply_route(request: http.Request, routes: Mapping[str, str]) -> bool:
    """Point the request at its route target, keeping path and query; True if routed.

    The target's user-info never travels in the Host header: it becomes an
    ``Authorization: Basic`` header, unless the request already has one."""
    target = route_for(request, routes)
    if target is None:
        return False
    parts = urlsplit(target)
    prefix = parts.path.rstrip("/")
    request.scheme = parts.scheme
    request.host = parts.hostname or request.host
    request.port = parts.port or (443 if parts.scheme == "https" else 80)
    request.path = prefix + request.path
    request.headers["host"] = parts.netloc.rpartition("@")[2]
    credentials = basic_credentials(parts)
    if credentials and "authorization" not in request.headers:
        request.headers["authorization"] = credentials
    return True
