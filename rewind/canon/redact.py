"""Redaction of secrets and user-chosen patterns, applied before hashing and writing.

What is redacted, and where:

- secret headers (``SECRET_HEADERS``, any case): the value becomes ``[REDACTED]``;
- secret query parameters (``SECRET_QUERY_PARAMS``) and a password in the URL's user
  info: the value becomes ``[REDACTED]``, the name and the other parameters stay;
- literal secrets scrubbed anywhere (URL, every header value, bodies, chunks, text):
  the values of environment variables whose name holds KEY, TOKEN, SECRET or PASSWORD,
  and, per exchange, the values found in its secret headers and parameters
  (``exchange_secrets``), also in their percent-encoded forms;
- user patterns (regular expressions over bytes) scrubbed from bodies, chunks and text.

Literals shorter than ``MIN_LITERAL_LENGTH`` are not scrubbed from free text (they would
eat ordinary words); they are still redacted where they are named. A streamed body is
redacted as one byte string, so a secret split across two chunks is caught; every chunk
keeps its time, and ``response_body`` stays the join of the chunks.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import SplitResult, quote, quote_plus, unquote_plus, urlsplit, urlunsplit

from rewind.core.exchange import Chunk, Exchange, Headers
from rewind.errors import ConfigError

__all__ = [
    "MIN_LITERAL_LENGTH",
    "REDACTED",
    "SECRET_ENV_MARKERS",
    "SECRET_HEADERS",
    "SECRET_QUERY_PARAMS",
    "RedactionPolicy",
    "exchange_secrets",
    "redact_bytes",
    "redact_exchange",
    "redact_headers",
    "redact_text",
    "redact_url",
]

REDACTED = "[REDACTED]"
SECRET_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "x-api-key",
        "api-key",
        "x-goog-api-key",
        "cookie",
        "set-cookie",
    }
)
SECRET_QUERY_PARAMS = frozenset({"key", "api_key", "access_token"})
SECRET_ENV_MARKERS = ("KEY", "TOKEN", "SECRET", "PASSWORD")
MIN_LITERAL_LENGTH = 8

_REDACTED_BYTES = REDACTED.encode()
_SECRET_NAMES = "|".join(sorted(SECRET_QUERY_PARAMS))
# Only in free text (logs, stdout, error messages): URL parameters and bearer tokens.
_TEXT_SECRETS = (
    re.compile(rb"(?i)([?&](?:" + _SECRET_NAMES.encode() + rb")=)[^&#\s\"'<>]+"),
    re.compile(rb"(?i)(\bBearer\s+)[\w.~+/=-]{8,}"),
)


@dataclass(frozen=True)
class RedactionPolicy:
    """What to scrub besides the built-in secret headers and parameters."""

    body_patterns: tuple[re.Pattern[bytes], ...] = ()  # user regexes over bodies
    literals: tuple[bytes, ...] = ()  # exact secret values to scrub anywhere

    @classmethod
    def build(cls, patterns: Iterable[str] = (), environ: Mapping[str, str] | None = None) -> RedactionPolicy:
        """User ``patterns`` compiled (``ConfigError`` on a bad one) and secrets of ``environ``."""
        compiled = tuple(_compile(p) for p in patterns)
        return cls(compiled, _env_secrets(environ or {}))

    def with_literals(self, extra: Iterable[bytes]) -> RedactionPolicy:
        """This policy, also scrubbing ``extra`` (e.g. secrets seen earlier in a session)."""
        return replace(self, literals=tuple(dict.fromkeys([*self.literals, *extra])))


def _compile(pattern: str) -> re.Pattern[bytes]:
    try:
        return re.compile(pattern.encode("utf-8"))
    except re.error as exc:
        raise ConfigError(f"invalid redaction pattern {pattern!r}: {exc}") from None


def _env_secrets(environ: Mapping[str, str]) -> tuple[bytes, ...]:
    found = (
        _encode(value)
        for name, value in sorted(environ.items())
        if any(marker in name.upper() for marker in SECRET_ENV_MARKERS) and len(value) >= MIN_LITERAL_LENGTH
    )
    return tuple(dict.fromkeys(found))


# --- headers and URLs ----------------------------------------------------------------


def redact_headers(headers: Headers) -> Headers:
    """Secret headers (by name, any case) with their value replaced by ``[REDACTED]``."""
    return tuple((k, REDACTED if k.lower() in SECRET_HEADERS else v) for k, v in headers)


def redact_url(url: str) -> str:
    """``url`` with secret query parameter values and a user-info password redacted."""
    try:
        parts = urlsplit(url)
        netloc = _redact_userinfo(parts)
    except ValueError:
        return _on_text(url, _sub_text_secrets)
    query = "&".join(_redact_param(p) for p in parts.query.split("&"))
    if (netloc, query) == (parts.netloc, parts.query):
        return url
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def _redact_param(param: str) -> str:
    name, _, value = param.partition("=")
    secret = value and unquote_plus(name).lower() in SECRET_QUERY_PARAMS
    return f"{name}={REDACTED}" if secret else param


def _redact_userinfo(parts: SplitResult) -> str:
    if not parts.password:
        return parts.netloc
    userinfo, _, hostport = parts.netloc.rpartition("@")
    return f"{userinfo.partition(':')[0]}:{REDACTED}@{hostport}"


# --- the secrets of one exchange --------------------------------------------------------


def exchange_secrets(ex: Exchange) -> tuple[bytes, ...]:
    """Secret values an exchange carries by name: header values, query values, URL password."""
    found = [
        *_header_secrets(ex.request_headers),
        *_header_secrets(ex.response_headers),
        *_url_secrets(ex.url),
    ]
    usable = (_encode(s) for s in found if len(s) >= MIN_LITERAL_LENGTH)
    return tuple(dict.fromkeys(usable))


def _header_secrets(headers: Headers) -> Iterator[str]:
    for name, value in headers:
        if name.lower() in SECRET_HEADERS:
            yield from _secret_values(name.lower(), value.strip())


def _secret_values(name: str, value: str) -> Iterator[str]:
    """The value, its token after an auth scheme, a Basic password, cookie values."""
    if name == "cookie":
        yield from (pair.partition("=")[2].strip() for pair in value.split(";"))
    elif name == "set-cookie":
        yield value.split(";", 1)[0].partition("=")[2].strip()
    else:
        scheme, _, token = value.partition(" ")
        yield from (value, token.strip())
        if scheme.lower() == "basic":
            yield _basic_password(token.strip())


def _basic_password(token: str) -> str:
    try:
        decoded = base64.b64decode(token, validate=True)
    except (binascii.Error, ValueError):
        return ""
    return decoded.decode("utf-8", "replace").partition(":")[2]


def _url_secrets(url: str) -> Iterator[str]:
    try:
        parts = urlsplit(url)
        yield parts.password or ""
    except ValueError:
        return
    for param in parts.query.split("&"):
        name, _, value = param.partition("=")
        if unquote_plus(name).lower() in SECRET_QUERY_PARAMS:
            yield from (value, unquote_plus(value))


# --- scrubbing bytes ---------------------------------------------------------------------

Span = tuple[int, int]


def _literal_variants(literals: Iterable[bytes]) -> tuple[bytes, ...]:
    """Every literal with its URL-encoded forms."""
    return tuple(dict.fromkeys(v for lit in literals if lit for v in _variants(lit)))


def _variants(literal: bytes) -> tuple[bytes, ...]:
    return (literal, quote(literal, safe="").encode(), quote_plus(literal).encode())


def _occurrences(data: bytes, literal: bytes) -> Iterator[Span]:
    """Every occurrence of ``literal`` in ``data``, overlapping ones included."""
    start = data.find(literal)
    while start >= 0:
        yield start, start + len(literal)
        start = data.find(literal, start + 1)


def _spans(data: bytes, literals: Iterable[bytes], patterns: Iterable[re.Pattern[bytes]]) -> list[Span]:
    """Where any literal or pattern matches, overlapping spans merged."""
    found = [span for literal in literals for span in _occurrences(data, literal)]
    found += [m.span() for rx in patterns for m in rx.finditer(data)]
    return _merge(sorted(found))


def _merge(found: list[Span]) -> list[Span]:
    """Sorted spans with the empty ones dropped and the overlapping ones joined."""
    merged: list[Span] = []
    for start, end in found:
        if end <= start:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _cut(data: bytes, spans: list[Span], lo: int, hi: int) -> bytes:
    """``data[lo:hi]`` with each span replaced by ``[REDACTED]`` where the span starts."""
    out, pos = bytearray(), lo
    for start, end in spans:
        if end <= lo or start >= hi:
            continue
        out += data[pos:start] if start > pos else b""
        out += _REDACTED_BYTES if start >= lo else b""
        pos = max(pos, min(end, hi))
    out += data[pos:hi]
    return bytes(out)


def _on_text(text: str, change: Callable[[bytes], bytes]) -> str:
    """Apply a bytes transformation to text, keeping undecodable bytes as escapes."""
    return change(_encode(text)).decode("utf-8", "surrogateescape")


def _encode(text: str) -> bytes:
    """UTF-8, with lone surrogates (from undecodable input) kept rather than raised on."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def _sub_text_secrets(data: bytes) -> bytes:
    for rx in _TEXT_SECRETS:
        data = rx.sub(lambda m: m.group(1) + _REDACTED_BYTES, data)
    return data


@dataclass(frozen=True)
class _Scrubber:
    """The compiled literals and patterns for one exchange (or one piece of text)."""

    literals: tuple[bytes, ...]
    patterns: tuple[re.Pattern[bytes], ...]

    @classmethod
    def of(cls, policy: RedactionPolicy, extra: Iterable[bytes] = ()) -> _Scrubber:
        return cls(_literal_variants([*policy.literals, *extra]), policy.body_patterns)

    def spans(self, data: bytes) -> list[Span]:
        return _spans(data, self.literals, self.patterns)

    def body(self, data: bytes) -> bytes:
        return _cut(data, self.spans(data), 0, len(data))

    def value(self, text: str) -> str:
        """Literals only: for header values and URLs."""
        return _on_text(text, lambda d: _cut(d, _spans(d, self.literals, ()), 0, len(d)))

    def text(self, text: str) -> str:
        """Literals, patterns and the free-text secret shapes: for logs and messages."""
        return _on_text(text, lambda d: _sub_text_secrets(self.body(d)))


def redact_bytes(data: bytes, policy: RedactionPolicy, extra_literals: Iterable[bytes] = ()) -> bytes:
    """``data`` with every literal secret and user pattern match replaced by ``[REDACTED]``."""
    return _Scrubber.of(policy, extra_literals).body(data)


def redact_text(text: str, policy: RedactionPolicy, extra_literals: Iterable[bytes] = ()) -> str:
    """Redact stdout, stderr, a log line or an error message.

    Besides literals and user patterns, scrubs URL parameters named like secrets
    (``?key=…``) and ``Bearer`` tokens wherever they appear in the text.
    """
    return _Scrubber.of(policy, extra_literals).text(text)


# --- a whole exchange --------------------------------------------------------------------


def redact_exchange(ex: Exchange, policy: RedactionPolicy) -> Exchange:
    """A new Exchange with URL, headers, bodies, chunks and messages redacted.

    The secret values found in this exchange's headers and query (``exchange_secrets``)
    are scrubbed from everything else too.
    """
    scrub = _Scrubber.of(policy, exchange_secrets(ex))
    return replace(ex, **_request_fields(ex, scrub), **_response_fields(ex, scrub))


def _request_fields(ex: Exchange, scrub: _Scrubber) -> dict[str, Any]:
    return {
        "url": scrub.value(redact_url(ex.url)),
        "request_headers": _scrub_headers(ex.request_headers, scrub),
        "request_body": scrub.body(ex.request_body),
        "extra": {k: scrub.text(v) for k, v in ex.extra.items()},
    }


def _response_fields(ex: Exchange, scrub: _Scrubber) -> dict[str, Any]:
    chunks = _scrub_chunks(ex.chunks, scrub)
    body = scrub.body(ex.response_body) if chunks is None else b"".join(c.data for c in chunks)
    return {
        "reason": scrub.text(ex.reason),
        "response_headers": _scrub_headers(ex.response_headers, scrub),
        "response_body": body,
        "chunks": chunks,
        "error": None if ex.error is None else scrub.text(ex.error),
    }


def _scrub_headers(headers: Headers, scrub: _Scrubber) -> Headers:
    return tuple((k, scrub.value(v)) for k, v in redact_headers(headers))


def _scrub_chunks(chunks: tuple[Chunk, ...] | None, scrub: _Scrubber) -> tuple[Chunk, ...] | None:
    """Each chunk redacted as part of the whole stream, so split secrets are caught too."""
    if chunks is None:
        return None
    joined = b"".join(c.data for c in chunks)
    spans = scrub.spans(joined)
    out, start = [], 0
    for chunk in chunks:
        end = start + len(chunk.data)
        out.append(Chunk(chunk.t_ms, _cut(joined, spans, start, end)))
        start = end
    return tuple(out)
