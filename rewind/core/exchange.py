"""The unit of capture: one HTTP request and what came back, as plain data.

An ``Exchange`` holds raw, unredacted bytes and lives only in memory: the store's
ingest step redacts it (``rewind.canon.redact``) before anything is hashed or written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

Headers = tuple[tuple[str, str], ...]
# How an exchange's error starts when the client hung up while a stream was reaching it,
# after it had been given chunks: whether that was a failure depends on whether the
# stream was complete, which only the provider's format tells (``store.ingest`` decides).
CLIENT_STOPPED_READING = "the client stopped reading the stream"
# Framing headers: whoever sends a recorded response again recomputes them for what it sends.
HOP_HEADERS = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive"})


@dataclass(frozen=True)
class Chunk:
    """One piece of a streamed response body and when it arrived."""

    t_ms: float  # milliseconds since the proxy received the request
    data: bytes | memoryview  # as captured, a view of the exchange's response_body


@dataclass(frozen=True)
class Frame:
    """One WebSocket message (all its fragments joined) and when the proxy relayed it."""

    t_ms: float  # milliseconds since the proxy received the handshake request
    from_client: bool
    text: bool  # a text message (UTF-8), else binary
    data: bytes


@dataclass(frozen=True)
class Close:
    """How a WebSocket conversation ended."""

    t_ms: float
    by_client: bool
    code: int | None
    reason: str = ""


@dataclass
class Exchange:
    """One request the agent made, through the proxy, and its outcome.

    ``url`` is the *logical* URL: the one the agent addressed (after reverse-mode
    rewriting to the provider's host) and before any ``--route`` redirection.
    ``status`` is ``None`` when no response came back (``error`` says why).
    ``chunks`` is set for streamed responses; ``response_body`` is then their join.
    ``frames`` is set when the request was a WebSocket handshake that the server accepted:
    the messages of the conversation that followed, in the order the proxy relayed them,
    and ``close`` how it ended (``None`` while still open).
    """

    step: int
    started_at: float
    method: str
    url: str
    request_headers: Headers = ()
    request_body: bytes = b""
    status: int | None = None
    reason: str = ""
    response_headers: Headers = ()
    response_body: bytes = b""
    chunks: tuple[Chunk, ...] | None = None
    ttfb_ms: float | None = None
    latency_ms: float | None = None
    error: str | None = None
    listener: str | None = None  # provider name when received on its reverse listener
    http_version: str = "HTTP/1.1"
    frames: tuple[Frame, ...] | None = None
    close: Close | None = None
    # Work done on the request while its response was awaited (``store.ingest.prepare``),
    # opaque to capture; used only if still valid when the exchange is stored.
    prepared: object | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def host(self) -> str:
        """The logical host, lower-case, with a non-default port kept."""
        return urlsplit(self.url).netloc.lower()

    @property
    def path(self) -> str:
        """The path with its query string."""
        parts = urlsplit(self.url)
        return parts.path + (f"?{parts.query}" if parts.query else "")

    @property
    def streamed(self) -> bool:
        return self.chunks is not None


def header(headers: Headers, name: str) -> str | None:
    """The first value of a header, matched case-insensitively."""
    wanted = name.lower()
    return next((v for k, v in headers if k.lower() == wanted), None)
