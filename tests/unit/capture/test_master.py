"""The embedded master: HTTP/2 negotiation with TLS clients, and HTTP/2 it cannot speak."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from rewind.capture.master import ProxySpec, ProxyThread
from rewind.capture.recorder import Recorder
from rewind.capture.wiring import LOOPBACK, Listener, Wiring
from rewind.core.exchange import Exchange
from rewind.testing.fake_provider import FakeProvider

# mitmproxy 11's own TlsConfig still hands pyOpenSSL objects over.
pytestmark = pytest.mark.filterwarnings("ignore:Passing pyOpenSSL:DeprecationWarning")
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


@pytest.fixture
def recorded() -> list[Exchange]:
    return []


@pytest.fixture
def proxy(
    tmp_path: Path, recorded: list[Exchange], fake_provider: FakeProvider
) -> Iterator[Wiring]:
    """A running master with the recorder and an openai listener in front of the fake."""
    listener = Listener("openai", fake_provider.url + "/v1")
    thread = ProxyThread(ProxySpec(tmp_path / "ca", (listener,), [Recorder(recorded.append)]))
    try:
        yield thread.start()
    finally:
        thread.stop()


def tunnel_alpn(port: int, offers: list[str]) -> str | None:
    """CONNECT through the proxy, then TLS offering ``offers``; the protocol chosen."""
    raw = socket.create_connection((LOOPBACK, port), timeout=10)
    raw.sendall(b"CONNECT api.openai.com:443 HTTP/1.1\r\nHost: api.openai.com:443\r\n\r\n")
    assert raw.recv(4096).startswith(b"HTTP/1.1 200")
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    context.set_alpn_protocols(offers)
    with context.wrap_socket(raw, server_hostname="api.openai.com") as tls:
        return tls.selected_alpn_protocol()


def test_a_client_offering_http1_first_and_h2_gets_h2(proxy: Wiring) -> None:
    """httpx with ``http1=False`` offers both, in that order, then speaks HTTP/2 anyway."""
    assert tunnel_alpn(proxy.proxy_port, ["http/1.1", "h2"]) == "h2"


def test_a_client_offering_only_http1_keeps_it(proxy: Wiring) -> None:
    assert tunnel_alpn(proxy.proxy_port, ["http/1.1"]) == "http/1.1"


def test_unnegotiated_http2_is_refused_loudly_and_never_recorded(
    proxy: Wiring, recorded: list[Exchange], fake_provider: FakeProvider,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """h2c with prior knowledge reaches the HTTP/1 parser as ``PRI``: closed, not a step."""
    for _ in range(2):
        with socket.create_connection((LOOPBACK, proxy.listener_ports["openai"]), timeout=10) as conn:
            conn.sendall(H2_PREFACE + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
            assert conn.recv(4096) == b""  # closed, with no HTTP/1 answer
    assert recorded == [] and fake_provider.request_count == 0
    err = capsys.readouterr().err
    assert err.count("spoke HTTP/2 without negotiating it") == 1, err


def test_a_callback_cancelled_at_shutdown_is_not_logged_but_other_errors_are(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import asyncio

    from rewind.capture.master import _quiet_on_cancel

    loop = asyncio.new_event_loop()
    try:
        _quiet_on_cancel(loop, {"message": "cb", "exception": asyncio.CancelledError()})
        assert caplog.records == []
        _quiet_on_cancel(loop, {"message": "boom", "exception": RuntimeError("x")})
    finally:
        loop.close()
    assert [r.getMessage() for r in caplog.records] == ["boom"]
