"""The embedded master's savings: large socket writes pass through without copies, and
every byte still arrives in order."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tracemalloc
from asyncio import selector_events

import pytest

from rewind.capture import lean

BODY = os.urandom(24 * 1024 * 1024)


async def _send_and_receive(body: bytes) -> tuple[bytes, int]:
    """Write ``body`` through an asyncio socket transport to a peer that reads it all;
    the bytes received and the peak memory traced while writing."""
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    loop = asyncio.get_running_loop()
    _, writer = await asyncio.open_connection(sock=ours)
    tracemalloc.start()
    writer.write(body)  # the first send() takes part of it; the rest is buffered
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    received = bytearray()

    def read_all() -> None:
        while len(received) < len(body):
            received.extend(theirs.recv(1 << 20))

    await asyncio.gather(writer.drain(), loop.run_in_executor(None, read_all))
    writer.close()
    theirs.close()
    return bytes(received), peak


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="Python 3.12 slices a memoryview itself")
def test_a_large_write_is_buffered_without_a_copy_of_what_is_left() -> None:
    lean.send_without_copies()
    received, peak = asyncio.run(_send_and_receive(BODY))
    assert received == BODY
    assert peak < 1.3 * len(BODY), f"{peak / len(BODY):.2f} x the body held while writing"


def test_it_is_installed_once() -> None:
    lean.send_without_copies()
    patched = selector_events._SelectorSocketTransport.write  # type: ignore[attr-defined]
    lean.send_without_copies()
    assert selector_events._SelectorSocketTransport.write is patched  # type: ignore[attr-defined]


def test_small_writes_arrive_as_they_are() -> None:
    lean.send_without_copies()
    received, _ = asyncio.run(_send_and_receive(b"hello" * 10))
    assert received == b"hello" * 10


# Builds a response with a mistyped field, which mitmproxy's __debug__ check refuses.
_MISTYPED = """
import sys
{setup}
from mitmproxy import http
try:
    http.Response(b"HTTP/1.1", 200, b"OK", http.Headers(), b"", None, "not a timestamp", None)
except TypeError:
    print("checked")
else:
    print("unchecked")
"""
_EMBEDDED = """
import tempfile
from pathlib import Path
from rewind.capture.master import ProxySpec, ProxyThread
proxy = ProxyThread(ProxySpec(Path(tempfile.mkdtemp()), (), ()))
proxy.start()
proxy.stop()
"""


def _mistyped_response_in(setup: str) -> str:
    code = _MISTYPED.format(setup=setup)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    return out.stdout.strip()


def test_the_embedded_master_builds_messages_without_the_debug_check() -> None:
    assert _mistyped_response_in(_EMBEDDED) == "unchecked"


def test_a_users_mitmdump_loading_our_addons_keeps_the_check() -> None:
    assert _mistyped_response_in("import rewind.cli.mitmdump") == "checked"


HEADERS = [(b"Content-Type", b"application/json"), (b"Set-Cookie", b"a=1"), (b"set-cookie", b"b=2"),
           (b"X-Bytes", b"\xff\xfe")]
LOOKUPS = ["content-type", "CONTENT-TYPE", b"content-type", "set-cookie", "x-bytes", "absent", b"absent", ""]


def test_quick_header_lookups_answer_as_mapping_does() -> None:
    from collections.abc import Mapping

    from mitmproxy import http

    before = http.Headers(HEADERS)
    expected = [(Mapping.get(before, k), Mapping.get(before, k, "dflt"), Mapping.__contains__(before, k))
                for k in LOOKUPS]
    lean.quick_header_lookups()
    after = http.Headers(HEADERS)
    assert [(after.get(k), after.get(k, "dflt"), k in after) for k in LOOKUPS] == expected
    assert after.get("set-cookie") == "a=1, b=2"  # folded, as before
    assert http.Headers.get is not Mapping.get  # installed


def test_remembered_url_parsing_answers_as_before_and_still_refuses() -> None:
    from mitmproxy.net.http import url

    targets = [b"127.0.0.1:8080", b"api.openai.com", b"[::1]:443", "localhost:4000", b"xn--bcher-kva.de"]
    expected = [url.parse_authority(t, check=True) for t in targets]
    full = [b"http://127.0.0.1:8080/v1/chat?x=1", b"https://api.openai.com/v1/responses"]
    expected_full = [url.parse(u) for u in full]
    lean.remember_url_parsing()
    lean.remember_url_parsing()  # once
    for _ in range(2):  # the second time from memory
        assert [url.parse_authority(t, check=True) for t in targets] == expected
    assert [url.parse(u) for u in full] == expected_full
    assert url.parse_authority.cache_info().hits >= len(targets)  # answered from memory
    for _ in range(2):  # a refusal is raised each time, never remembered as an answer
        with pytest.raises(ValueError):
            url.parse_authority(b"bad host:99999", check=True)
        with pytest.raises(ValueError):
            url.parse_authority(b"b\xc3\xbccher.de", check=True)
        with pytest.raises(ValueError):
            url.parse(b"http:///no-host")
    assert url.parse_authority(b"bad host:99999", check=False) == ("bad host:99999", None)


def test_the_version_check_still_refuses_an_unknown_version() -> None:
    from mitmproxy.net.http.http1 import read

    lean.quick_header_lookups()
    read.raise_if_http_version_unknown(b"HTTP/1.1")
    for _ in range(2):
        with pytest.raises(ValueError):
            read.raise_if_http_version_unknown(b"HTTP/x")
