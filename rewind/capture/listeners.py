"""Which provider's reverse listener a flow arrived on."""

from __future__ import annotations

from collections.abc import Mapping

from mitmproxy import http

# Set by ``capture.gate`` on a loopback call the regular proxy got: for one of the
# listeners (its provider), or for a local port nobody records (neither recorded nor replayed).
LISTENER_META = "rewind_listener"
PASSTHROUGH_META = "rewind_passthrough"


def is_passthrough(flow: http.HTTPFlow) -> bool:
    """A loopback call to a port nobody asked to record: neither recorded nor replayed."""
    return bool(flow.metadata.get(PASSTHROUGH_META))


class ListenerPorts:
    """Provider by listening port; bound once the proxy listens, shared by the addons."""

    def __init__(self) -> None:
        self._by_port: dict[int, str] = {}

    def bind(self, listener_ports: Mapping[str, int]) -> None:
        self._by_port = {port: provider for provider, port in listener_ports.items()}

    def provider_of(self, flow: http.HTTPFlow) -> str | None:
        noted = flow.metadata.get(LISTENER_META)
        return str(noted) if noted else self._by_port.get(int(flow.client_conn.sockname[1]))

    def provider_at(self, port: int) -> str | None:
        """The provider whose listener is on ``port``, if any."""
        return self._by_port.get(port)
