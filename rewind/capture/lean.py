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

``remember_url_parsing``: mitmproxy reads each proxied request's target twice, with
``url.parse_authority`` and then ``url.parse`` (a check whose result it drops), each
going through Python's idna codec two or three times: about a tenth of the master's time
per call. Both are pure functions of their arguments, and an agent calls a few hosts and
endpoints, so the embedded master remembers their last 256 answers (``ValueError``s are
raised anew each time).

``quick_header_lookups``: ``Headers.get`` and ``in`` come from ``collections.abc.Mapping``,
which looks a header up by raising and catching ``KeyError`` when it is absent, as most
looked-up headers are (``transfer-encoding``, ``expect``, ``upgrade``...). The embedded
master's ``Headers`` answer both from ``get_all`` directly: the same answers, without the
exception. The HTTP version check of every request and response line (a regular
expression) remembers its answers too.

``lighten_mitmproxy`` applies all of these, once, when the embedded master starts.
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
URLS_REMEMBERED = 256


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


def remember_url_parsing() -> None:
    """``url.parse`` and ``url.parse_authority`` remember their last answers (once)."""
    from mitmproxy.net.http import url

    if hasattr(url.parse, "cache_info"):
        return
    url.parse = functools.lru_cache(maxsize=URLS_REMEMBERED)(url.parse)
    url.parse_authority = functools.lru_cache(maxsize=URLS_REMEMBERED)(url.parse_authority)


def quick_header_lookups() -> None:
    """``Headers.get`` and ``in`` without an exception for an absent header; the HTTP
    version check remembers its answers (once)."""
    from mitmproxy import http
    from mitmproxy.net.http.http1 import read

    http.Headers.get = _header_get  # type: ignore[method-assign]
    http.Headers.__contains__ = _header_in  # type: ignore[method-assign]
    check = read.raise_if_http_version_unknown
    if not hasattr(check, "cache_info"):
        read.raise_if_http_version_unknown = functools.lru_cache(maxsize=8)(check)


def _header_get(self: Any, key: Any, default: Any = None) -> Any:
    """``Mapping.get``: the folded value, or ``default`` when there is none."""
    values = self.get_all(key)
    return self._reduce_values(values) if values else default


def _header_in(self: Any, key: Any) -> bool:
    """``Mapping.__contains__``: whether the header has any value."""
    return bool(self.get_all(key))


def lighten_mitmproxy() -> None:
    """What the embedded master leaves out of mitmproxy's per-call work (see module)."""
    skip_debug_checks()
    remember_url_parsing()
    quick_header_lookups()
