"""What the embedded master does without: addons it does not run, copies it need not make.

``import_lean_addons``: ``mitmproxy/addons/__init__.py`` imports every default addon
(about 0.45 s here, a third of ``rewind record -- true``). When nothing has imported that
package yet, register it as a bare namespace over the same directory so ``from
mitmproxy.addons import proxyserver`` loads just that module. When mitmdump has loaded
the real package first (``mitmdump -s addons/record.py``), nothing changes.

``send_without_copies``: on Python 3.11, asyncio's socket transport copies what a first
``send()`` left over (``data[n:]`` of bytes) before buffering it: a 100 MB response passed
on to the agent briefly held three copies. Python 3.12 slices a memoryview instead; this
backports that for large writes on older Pythons.

``skip_debug_checks``: unless Python runs with ``-O``, mitmproxy type-checks every field of
every request and response it builds (``MessageData.__post_init__``, under ``if __debug__``),
through ``typing`` introspection: about 85 us a call here, half the cost of building the
pair. Those fields come from mitmproxy's own parsers; ``python -O`` runs mitmproxy
without the check, and so does the embedded master (only it: a user's ``mitmdump``
loading Rewind's addons keeps its checks).
"""

from __future__ import annotations

import functools
import importlib.util
import os
import sys
import types
from asyncio import selector_events
from typing import Any

ADDONS = "mitmproxy.addons"
LARGE_WRITE = 1 << 20


def import_lean_addons() -> None:
    if ADDONS in sys.modules:
        return
    spec = importlib.util.find_spec("mitmproxy")
    if spec is None or spec.origin is None:
        return
    package = types.ModuleType(ADDONS)
    package.__path__ = [os.path.join(os.path.dirname(spec.origin), "addons")]
    package.__package__ = ADDONS
    sys.modules[ADDONS] = package


def send_without_copies() -> None:
    """Large writes on socket transports go in as memoryviews (Python < 3.12; once)."""
    transport: Any = getattr(selector_events, "_SelectorSocketTransport")  # noqa: B009 - private, untyped
    if sys.version_info >= (3, 12) or getattr(transport.write, "_rewind_zero_copy", False):
        return
    original = transport.write

    @functools.wraps(original)
    def write(self: Any, data: Any) -> None:
        if isinstance(data, bytes) and len(data) >= LARGE_WRITE:
            data = memoryview(data)
        original(self, data)

    write._rewind_zero_copy = True  # type: ignore[attr-defined]
    transport.write = write


def skip_debug_checks() -> None:
    """mitmproxy's requests and responses are built without the ``__debug__`` field check."""
    from mitmproxy import http

    http.MessageData.__post_init__ = _no_check  # type: ignore[method-assign]


def _no_check(self: object) -> None:
    """``MessageData.__post_init__`` without its ``__debug__`` check: nothing to do."""

