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
