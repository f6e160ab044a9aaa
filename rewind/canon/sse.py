"""Server-sent events: split a recorded ``text/event-stream`` body into its events.

Follows the WHATWG parsing rules that matter for LLM streams: ``\\n``, ``\\r\\n`` and
``\\r`` line endings, ``data:`` fields spread over several lines (joined with ``\\n``),
comment lines starting with ``:``, one optional space after the colon, and a last
event that ends the body without a blank line (a cut-off stream still yields it).
Bytes that are not UTF-8 are replaced, never raised on. ``iter_sse`` reads the body a
line at a time, so a 100 MB stream is never copied whole.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

__all__ = ["SseEvent", "iter_sse", "parse_sse"]

_LINE_BREAK = re.compile(rb"\r\n|\r|\n")


@dataclass(frozen=True)
class SseEvent:
    """One dispatched event: its ``event:`` name (``None`` when unnamed) and its data."""

    event: str | None
    data: str


@dataclass
class _Builder:
    event: str | None = None
    data: list[str] = field(default_factory=list)

    def feed(self, line: str) -> SseEvent | None:
        """Take one line; the event it completes, if any."""
        if not line:
            return self.flush()
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self.data.append(value)
        elif name == "event":
            self.event = value or None
        return None

    def flush(self) -> SseEvent | None:
        done = SseEvent(self.event, "\n".join(self.data)) if self.data else None
        self.event, self.data = None, []
        return done


def iter_sse(body: bytes | memoryview) -> Iterator[SseEvent]:
    """The events of an SSE body, in order, one at a time; events without data are not
    dispatched."""
    builder = _Builder()
    for line in _lines(body):
        if (event := builder.feed(line)) is not None:
            yield event
    if (event := builder.flush()) is not None:
        yield event


def _lines(body: bytes | memoryview) -> Iterator[str]:
    data = memoryview(body)
    start = 3 if bytes(data[:3]) == b"\xef\xbb\xbf" else 0  # a byte-order mark
    for found in _LINE_BREAK.finditer(data):
        yield bytes(data[start : found.start()]).decode("utf-8", errors="replace")
        start = found.end()
    yield bytes(data[start:]).decode("utf-8", errors="replace")


def parse_sse(body: bytes) -> list[SseEvent]:
    """The events of an SSE body, in order; events without data are not dispatched."""
    return list(iter_sse(body))
