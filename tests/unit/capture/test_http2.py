"""Tests of rewind.capture.http2: when the proxy picks HTTP/2 for a client (the addons
themselves run in tests/unit/capture/test_master.py and tests/e2e/test_http2.py)."""

from __future__ import annotations

from typing import Any

import pytest

from rewind.capture.http2 import wants_h2


@pytest.mark.parametrize(
    ("app_data", "offers", "expected"),
    [
        ({"client_alpn": None, "server_alpn": None, "http2": True}, [b"http/1.1", b"h2"], True),
        ({"client_alpn": None, "server_alpn": None, "http2": True}, [b"http/1.1"], False),
        ({"client_alpn": None, "server_alpn": None, "http2": False}, [b"http/1.1", b"h2"], False),
        ({"client_alpn": b"http/1.1", "server_alpn": None, "http2": True}, [b"h2"], False),
        ({"client_alpn": None, "server_alpn": b"http/1.1", "http2": True}, [b"h2"], False),
        ({"client_alpn": None, "server_alpn": b"", "http2": True}, [b"h2"], False),
    ],
)
def test_wants_h2_only_when_nothing_chose_a_protocol_yet(
    app_data: dict[str, Any], offers: list[bytes], expected: bool
) -> None:
    assert wants_h2(app_data, offers) is expected
