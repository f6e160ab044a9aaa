"""Which provider's reverse listener a flow arrived on."""

from __future__ import annotations

from collections.abc import Mapping

from mitmproxy import http


class ListenerPorts:
    """Provider by listening port; bound once the proxy listens, shared by the addons."""

    def __init__(self) -> None:
        self._by_port: dict[int, str] = {}

    def bind(self, listener_ports: Mapping[str, int]) -> None:
        self._by_port = {port: provider for provider, port in listener_ports.items()}

    def provider_of(self, flow: http.HTTPFlow) -> str | None:
        return self._by_port.get(int(flow.client_conn.sockname[1]))
