"""``--route HOST=URL``: send a logical host's traffic to another place."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from mitmproxy import http

from rewind.capture.wiring import basic_credentials


class Router:
    """Addon, loaded after the recorder: sends routed hosts to their targets.

    A request that an earlier addon already answered is left alone.
    """

    def __init__(self, routes: Mapping[str, str]) -> None:
        self.routes = dict(routes)

    def request(self, flow: http.HTTPFlow) -> None:
        if flow.response is None and not flow.metadata.get(PLAYBACK_META):
            apply_route(flow.request, self.routes)


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
