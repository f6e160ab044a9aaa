"""HTTP/2 at the proxy's edge: clients that offer it get it; h2c that was never
negotiated is refused loudly. Used by the embedded master and the mitmdump addons."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from mitmproxy import ctx, exceptions, http, tls

H2 = b"h2"
H2_REFUSED = (
    "rewind: a client spoke HTTP/2 without negotiating it (cleartext h2c with prior "
    "knowledge), which Rewind cannot record; that connection was closed and nothing was "
    "recorded. Use https:// (HTTP/2 over TLS works) or let the client speak HTTP/1.1."
)


class PreferHttp2:
    """Addon: a TLS client that offers HTTP/2 gets it, as from the providers' own servers,
    unless an upstream connection already chose a protocol.

    mitmproxy picks the client's first offer, and httpx with ``http1=False`` offers
    ``http/1.1, h2`` yet speaks HTTP/2 whatever is chosen: its connection preface then
    reached the HTTP/1 parser as a ``PRI`` request. The upstream side still offers the
    client's list, so it speaks whatever the server supports.

    After ``TlsConfig`` (the embedded master) the choice goes into the connection's ALPN
    data; before it (a ``mitmdump -s`` script runs ahead of ``TlsConfig``) it goes into the
    client connection's ``alpn``, which ``TlsConfig`` then takes as the protocol to pick.
    """

    def tls_start_client(self, data: tls.TlsData) -> None:
        client, offers = data.context.client, data.context.client.alpn_offers
        if data.ssl_conn is None:
            chosen = {"client_alpn": client.alpn, "server_alpn": data.context.server.alpn,
                      "http2": ctx.options.http2}
            if wants_h2(chosen, offers):
                client.alpn = H2
            return
        app_data = data.ssl_conn.get_app_data()
        if isinstance(app_data, dict) and wants_h2(app_data, offers):
            app_data["client_alpn"] = H2


def wants_h2(app_data: dict[str, Any], offers: Sequence[bytes]) -> bool:
    """True when nothing fixed the protocol yet, HTTP/2 is enabled and the client offers it."""
    undecided = app_data.get("client_alpn") is None and app_data.get("server_alpn") is None
    return undecided and bool(app_data.get("http2")) and H2 in offers


class RefuseUnnegotiatedHttp2:
    """Addon before ours: HTTP/2 spoken over a connection that negotiated HTTP/1 (h2c with
    prior knowledge) arrives as a ``PRI * HTTP/2.0`` request. It is closed, said once on
    stderr, and never reaches the recorder or the replay addon."""

    def __init__(self) -> None:
        self._said = False

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if not is_h2_preface(flow.request):
            return
        if not self._said:
            self._said = True
            print(H2_REFUSED, file=sys.stderr, flush=True)
        flow.kill()
        raise exceptions.AddonHalt


def is_h2_preface(request: http.Request) -> bool:
    return request.method == "PRI" and request.http_version == "HTTP/2.0"
