"""Server-sent events: split a recorded ``text/event-stream`` body into its events.

Follows the WHATWG parsing rules that matter for LLM streams: ``\\n``, ``\\r\\n`` and
``\\r`` line endings, ``data:`` fields spread over several lines (joined with ``\\n``),
comment lines starting with ``:``, one optional space after the colon, and a last
event that ends the body without a blank line (a cut-off stream still yields it).
Bytes that are not UTF-8 are replaced, never raised on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["SseEvent", "parse_sse"]

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class SseEvent:
    """One dispatched event: its ``event:`` name (``None`` when unnamed) and its data."""

    event: str | None
    data: str


@dataclass
class _Builder:
    events: list[SseEvent] = field(default_factory=list)
    event: str | None = None
    data: list[str] = field(default_factory=list)

    def feed(self, line: str) -> None:
        if not line:
            self.flush()
            return
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self.data.append(value)
        elif name == "event":
            self.event = value or None

    def flush(self) -> None:
        if self.data:
            self.events.append(SseEvent(self.event, "\n".join(self.data)))
        self.event, self.data = None, []


def parse_sse(body: bytes) -> list[SseEvent]:
    """The events of an SSE body, in order; events without data are not dispatched."""
    text = body.decode("utf-8", errors="replace").removeprefix("\ufeff")
    builder = _Builder()
    for line in _LINE_BREAK.split(text):
        builder.feed(line)
    builder.flush()
    return builder.events
