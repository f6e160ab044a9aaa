"""Redaction of secrets and user-chosen patterns, applied before hashing and writing.

What is redacted, and where (the rules are in ``rewind.canon.detect`` and docs/security.md):

- headers by name: a strong name (``Authorization``, ``x-api-key``, ``Cookie``, ...) always,
  any other name with a marker word (key, token, secret, auth, session, password,
  signature, ...) unless its value is harmless (a number, boolean, duration or date);
- URL query parameters, form fields, JSON fields (at any depth, request and response),
  multipart fields and ``Name: value`` lines named like secrets, and URL user-info;
- well-known key shapes (OpenAI, Anthropic, Google, GitHub, Slack, AWS, JWT, ``Bearer``)
  anywhere: URL, path, header values, bodies, chunks, text;
- literal secrets anywhere, also percent- and base64-encoded: the values of environment
  variables whose name holds KEY, TOKEN, SECRET or PASSWORD, credentials inside URLs in the
  environment (``OPENAI_BASE_URL=https://user:pass@…``), and every secret found above in
  the same exchange (``exchange_secrets``) — a session's ``Redactor`` carries them on to
  every later exchange and to the agent's output;
- user patterns (regular expressions over bytes) from bodies, chunks and text.

Literals shorter than ``MIN_LITERAL_LENGTH`` are not scrubbed from free text (they would
eat ordinary words); they are still redacted where they are named. A streamed body is
redacted as one byte string, so a secret split across two chunks is caught; every chunk
keeps its time, and ``response_body`` stays the join of the chunks. When nothing is to be
redacted, the very same bytes object comes back: bodies are never copied for nothing.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote, quote_plus

from rewind.canon.detect import Found, Where, is_secret_value, scan
from rewind.core.exchange import Chunk, Exchange, Headers
from rewind.errors import ConfigError

__all__ = [
    "MIN_LITERAL_LENGTH",
    "REDACTED",
    "SECRET_ENV_MARKERS",
    "SECRET_HEADERS",
    "SECRET_QUERY_PARAMS",
    "PreparedRequest",
    "RedactionPolicy",
    "Scanned",
    "Scrubber",
    "exchange_secrets",
    "prepare_request",
    "redact_bytes",
    "redact_exchange",
    "redact_headers",
    "redact_prepared",
    "redact_scanned",
    "redact_text",
    "redact_url",
    "request_secrets",
    "response_secrets",
]

REDACTED = "[REDACTED]"
# Always redacted, whatever their value; any header named like a secret is too (see detect).
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
# Always redacted in a URL or form; any parameter named like a secret is too (see detect).
SECRET_QUERY_PARAMS = frozenset(
    {
        "key", "api_key", "apikey", "api-key", "token", "access_token", "refresh_token",
        "id_token", "auth", "auth_token", "sig", "signature", "password", "passwd", "pwd",
        "secret", "client_secret", "x-amz-signature", "x-amz-credential",
        "x-amz-security-token", "x-goog-signature", "x-goog-credential",
    }
)  # fmt: skip
SECRET_ENV_MARKERS = ("KEY", "TOKEN", "SECRET", "PASSWORD")
MIN_LITERAL_LENGTH = 8

_REDACTED_BYTES = REDACTED.encode()


@dataclass(frozen=True)
class RedactionPolicy:
    """What to scrub besides the built-in rules: user patterns and literal secrets."""

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
    """Values of variables named like secrets, and credentials inside any variable's URL."""
    named = (
        _encode(value)
        for name, value in sorted(environ.items())
        if any(marker in name.upper() for marker in SECRET_ENV_MARKERS)
    )
    urls = (_encode(value) for _, value in sorted(environ.items()) if "://" in value)
    in_urls = (secret for url in urls for secret in scan(url).secrets)
    return _usable([*named, *in_urls])


def _usable(found: Iterable[bytes]) -> tuple[bytes, ...]:
    """Secrets long enough to scrub from free text, without duplicates or placeholders."""
    return tuple(dict.fromkeys(s for s in found if len(s) >= MIN_LITERAL_LENGTH and _REDACTED_BYTES not in s))


# --- the secrets an exchange carries by name ----------------------------------------------


def request_secrets(url: str, headers: Headers) -> tuple[bytes, ...]:
    """Secrets in a request's URL and headers (what a recorder can learn on arrival)."""
    return _usable([*scan(_encode(url)).secrets, *_header_secrets(headers)])


def exchange_secrets(ex: Exchange) -> tuple[bytes, ...]:
    """Secret values an exchange's URL and headers carry, by name or by shape."""
    return _usable([*request_secrets(ex.url, ex.request_headers), *_header_secrets(ex.response_headers)])


def _header_secrets(headers: Headers) -> Iterator[bytes]:
    for name, value in headers:
        if is_secret_value(name, _encode(value), Where.HEADER):
            yield from (_encode(s) for s in _secret_values(name.lower(), value.strip()))
        else:
            yield from scan(_encode(value)).secrets


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


# --- scrubbing bytes ---------------------------------------------------------------------

Span = tuple[int, int]


def _literal_variants(literals: Iterable[bytes]) -> tuple[bytes, ...]:
    """Every literal with its URL-encoded and base64 forms, longest first."""
    found = {v for lit in literals if lit for v in _variants(lit)}
    return tuple(sorted(found, key=lambda v: (-len(v), v)))


def _variants(literal: bytes) -> tuple[bytes, ...]:
    b64 = base64.b64encode(literal).rstrip(b"=")
    return (literal, quote(literal, safe="").encode(), quote_plus(literal).encode(), b64)


def _occurrences(data: bytes, literal: bytes) -> Iterator[Span]:
    """Every occurrence of ``literal`` in ``data``, overlapping ones included."""
    start = data.find(literal)
    while start >= 0:
        yield start, start + len(literal)
        start = data.find(literal, start + 1)


def _merge(found: Iterable[Span]) -> list[Span]:
    """Spans sorted, with the empty ones dropped and the overlapping ones joined."""
    merged: list[Span] = []
    for start, end in sorted(found):
        if end <= start:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _cut(data: bytes, spans: list[Span], lo: int, hi: int) -> bytes:
    """``data[lo:hi]`` with each span replaced by ``[REDACTED]`` where the span starts."""
    view, out, pos = memoryview(data), [], lo
    for start, end in spans:
        if end <= lo or start >= hi:
            continue
        out.append(view[pos:start] if start > pos else b"")
        out.append(_REDACTED_BYTES if start >= lo else b"")
        pos = max(pos, min(end, hi))
    out.append(view[pos:hi])
    return b"".join(out)


def _encode(text: str) -> bytes:
    """UTF-8, with lone surrogates (from undecodable input) kept rather than raised on."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


@dataclass(frozen=True)
class Scrubber:
    """The literals and patterns to scrub, besides the built-in rules of ``detect.scan``."""

    literals: tuple[bytes, ...]
    patterns: tuple[re.Pattern[bytes], ...]
    # Header values repeat from call to call; a scrubber never changes, so its answers hold.
    _seen: dict[tuple[str, str], str] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(cls, policy: RedactionPolicy, extra: Iterable[bytes] = ()) -> Scrubber:
        return cls(_literal_variants([*policy.literals, *extra]), policy.body_patterns)

    def spans(self, data: bytes, found: Found | None = None) -> list[Span]:
        """Where a built-in rule, a literal or a user pattern matches, merged."""
        spans = list((found or scan(data)).spans)
        spans += [span for literal in self.literals for span in _occurrences(data, literal)]
        spans += [m.span() for rx in self.patterns for m in rx.finditer(data)]
        return _merge(spans)

    def bytes(self, data: bytes, found: Found | None = None) -> bytes:
        """``data`` redacted; ``data`` itself when there is nothing to redact."""
        spans = self.spans(data, found)
        return _cut(data, spans, 0, len(data)) if spans else data

    def text(self, text: str) -> str:
        data = _encode(text)
        out = self.bytes(data)
        return text if out is data else _decode(out)

    def header(self, name: str, value: str) -> str:
        key = (name, value)
        if key not in self._seen:
            if len(self._seen) >= _SEEN_HEADERS:
                self._seen.clear()
            secret = is_secret_value(name, _encode(value), Where.HEADER)
            self._seen[key] = REDACTED if secret else self.text(value)
        return self._seen[key]

    def headers(self, headers: Headers) -> Headers:
        return tuple((k, self.header(k, v)) for k, v in headers)


_SEEN_HEADERS = 4096
_BUILT_IN = Scrubber((), ())


def redact_headers(headers: Headers) -> Headers:
    """Headers named like secrets redacted whole; key shapes redacted in the others."""
    return _BUILT_IN.headers(headers)


def redact_url(url: str) -> str:
    """``url`` with secret parameters, user-info credentials and key shapes redacted."""
    return _BUILT_IN.text(url)


def redact_bytes(data: bytes, policy: RedactionPolicy, extra_literals: Iterable[bytes] = ()) -> bytes:
    """``data`` with every secret, literal and user pattern match replaced by ``[REDACTED]``."""
    return Scrubber.of(policy, extra_literals).bytes(data)


def redact_text(text: str, policy: RedactionPolicy, extra_literals: Iterable[bytes] = ()) -> str:
    """Redact stdout, stderr, a log line, an argument or an error message."""
    return Scrubber.of(policy, extra_literals).text(text)


# --- a whole exchange --------------------------------------------------------------------


@dataclass(frozen=True)
class Scanned:
    """An exchange with its bodies scanned once, and every secret it carries."""

    request: Found
    response: Found
    secrets: tuple[bytes, ...]

    @classmethod
    def of(cls, ex: Exchange) -> Scanned:
        request, response = scan(ex.request_body), scan(_stream(ex))
        found = [*exchange_secrets(ex), *request.secrets, *response.secrets]
        return cls(request, response, _usable(found))


def _stream(ex: Exchange) -> bytes:
    """The response as one byte string: the body, which a recorder keeps as the chunks' join."""
    if ex.chunks is None or sum(len(c.data) for c in ex.chunks) == len(ex.response_body):
        return ex.response_body
    return b"".join(c.data for c in ex.chunks)


def redact_exchange(ex: Exchange, policy: RedactionPolicy, extra_literals: Iterable[bytes] = ()) -> Exchange:
    """A new Exchange with URL, headers, bodies, chunks and messages redacted.

    The secrets found anywhere in this exchange (``Scanned``) are scrubbed from
    everything else too.
    """
    scanned = Scanned.of(ex)
    return redact_scanned(ex, scanned, Scrubber.of(policy, [*extra_literals, *scanned.secrets]))


@dataclass(frozen=True)
class PreparedRequest:
    """A request scanned and redacted while its response was awaited (``prepare_request``),
    with the scrubber that did it: still valid when the session's scrubber is the same
    object (no secret learned since) and the request is the same."""

    scrub: Scrubber
    request: Found
    raw: tuple[str, Headers, bytes]  # url, headers, body as scanned
    url: str
    request_headers: Headers
    request_body: bytes


def prepare_request(ex: Exchange, scrub_after: Callable[[Iterable[bytes]], Scrubber]) -> PreparedRequest:
    """Scan ``ex``'s request, learn its secrets (``scrub_after`` learns them and gives the
    scrubber to use) and redact the request."""
    request = scan(ex.request_body)
    scrub = scrub_after(_usable([*request_secrets(ex.url, ex.request_headers), *request.secrets]))
    raw = (ex.url, ex.request_headers, ex.request_body)
    return PreparedRequest(scrub, request, raw, scrub.text(ex.url), scrub.headers(ex.request_headers),
                           scrub.bytes(ex.request_body, request))


def response_secrets(ex: Exchange) -> tuple[Found, tuple[bytes, ...]]:
    """The scan of ``ex``'s response and the secrets its headers and body carry."""
    response = scan(_stream(ex))
    return response, _usable([*_header_secrets(ex.response_headers), *response.secrets])


def redact_prepared(
    ex: Exchange, prepared: PreparedRequest, response: Found, scrub: Scrubber
) -> Exchange | None:
    """``ex`` redacted reusing its prepared request; ``None`` when that is stale."""
    if scrub is not prepared.scrub or (ex.url, ex.request_headers, ex.request_body) != prepared.raw:
        return None
    scanned = Scanned(prepared.request, response, ())
    return replace(
        ex, url=prepared.url, request_headers=prepared.request_headers, request_body=prepared.request_body,
        extra={k: scrub.text(v) for k, v in ex.extra.items()}, **_response_fields(ex, scanned, scrub),
    )


def redact_scanned(ex: Exchange, scanned: Scanned, scrub: Scrubber) -> Exchange:
    """``ex`` redacted with ``scrub``, reusing the scan of its bodies."""
    return replace(ex, **_request_fields(ex, scanned, scrub), **_response_fields(ex, scanned, scrub))


def _request_fields(ex: Exchange, scanned: Scanned, scrub: Scrubber) -> dict[str, Any]:
    return {
        "url": scrub.text(ex.url),
        "request_headers": scrub.headers(ex.request_headers),
        "request_body": scrub.bytes(ex.request_body, scanned.request),
        "extra": {k: scrub.text(v) for k, v in ex.extra.items()},
    }


def _response_fields(ex: Exchange, scanned: Scanned, scrub: Scrubber) -> dict[str, Any]:
    stream = _stream(ex)
    spans = scrub.spans(stream, scanned.response)
    chunks = _scrub_chunks(ex.chunks, stream, spans)
    body = _cut(stream, spans, 0, len(stream)) if spans else stream
    return {
        "reason": scrub.text(ex.reason),
        "response_headers": scrub.headers(ex.response_headers),
        "response_body": body,
        "chunks": chunks,
        "error": None if ex.error is None else scrub.text(ex.error),
    }


def _scrub_chunks(
    chunks: tuple[Chunk, ...] | None, joined: bytes, spans: list[Span]
) -> tuple[Chunk, ...] | None:
    """Each chunk redacted as part of the whole stream, so split secrets are caught too."""
    if chunks is None or not spans:
        return chunks
    out, start = [], 0
    for chunk in chunks:
        end = start + len(chunk.data)
        out.append(Chunk(chunk.t_ms, _cut(joined, spans, start, end)))
        start = end
    return tuple(out)
