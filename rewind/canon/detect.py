"""Finding secrets by name and by shape, in any bytes: URLs, headers, bodies, text.

Names (of headers, query or form parameters, JSON fields, command-line flags) are split
into words (``x-api-key`` -> x, api, key; ``accessToken`` -> access, token) and fall in
three classes (``name_strength``):

- ``STRONG``: the name says "secret" on its own (``password``, ``api_key``,
  ``access_token``, ``client_secret``, ``authorization``, ``cookie``, ...);
- ``WEAK``: a word is a marker (key, token, secret, auth, session, password, signature,
  credential, cookie, ...) but the name may still hold ordinary data
  (``max_tokens``, logprobs' ``token``, ``x-ratelimit-remaining-tokens``);
- ``NONE`` otherwise (``monkey``, ``keyboard``, ``tokenizer``, ``cache_control``).

Whether a value is then a secret depends on where the name is (``is_secret_value``):
a strong name's non-empty value always is; a weak header, query parameter or flag's value
is unless it is harmless (a number, boolean, duration or date); a weak field's value is
only when it looks like a credential (no whitespace, at least 8 characters, a letter and
a digit) or has a key shape. ``signature`` is not a marker for body fields: Anthropic
thinking blocks and Gemini ``thoughtSignature`` carry non-secret signatures there.

``scan`` finds, in one pass of one precompiled regex, the spans to redact in some bytes:
well-known key shapes (``KEY_SHAPES``), ``Bearer`` tokens, secret-named URL/form
parameters, JSON (or Python-repr) fields, ``Name: value`` lines, multipart form fields and
URL user-info. It also returns the secret values found, so that they can be scrubbed
everywhere else.
"""

from __future__ import annotations

import enum
import functools
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import unquote_plus

__all__ = [
    "KEY_SHAPES",
    "Found",
    "Strength",
    "Where",
    "is_harmless",
    "is_secret_value",
    "looks_like_credential",
    "name_strength",
    "name_words",
    "scan",
]

Span = tuple[int, int]


class Strength(enum.IntEnum):
    NONE = 0
    WEAK = 1
    STRONG = 2


class Where(enum.StrEnum):
    """Where a name was found; decides how its value is judged."""

    HEADER = "header"
    QUERY = "query"
    FIELD = "field"  # JSON, form or multipart field, or a ``Name: value`` line in text
    FLAG = "flag"  # a command-line option


_STRONG = frozenset(
    {
        "password", "passwd", "passphrase", "secret", "clientsecret", "apisecret", "secretkey",
        "apikey", "xapikey", "xgoogapikey", "apitoken", "accesstoken", "refreshtoken", "idtoken",
        "authtoken", "oauthtoken", "bearertoken", "sessiontoken", "securitytoken", "privatekey",
        "authorization", "proxyauthorization", "cookie", "setcookie", "xamzsecuritytoken",
        "xamzsignature", "xamzcredential", "xgoogsignature", "xgoogcredential",
        "secretaccesskey", "awssecretaccesskey", "githubtoken",
    }
)  # fmt: skip
_STRONG_IN_QUERY = frozenset({"key", "token", "sig", "signature", "auth", "pwd"})
_MARKERS = frozenset(
    {
        "key", "keys", "apikey", "token", "tokens", "secret", "secrets", "auth", "authorization",
        "authentication", "session", "password", "passwd", "pwd", "passphrase", "signature",
        "sig", "credential", "credentials", "cookie", "cookies", "bearer", "jwt",
    }
)  # fmt: skip
_NOT_IN_FIELDS = frozenset({"signature", "sig"})
_MARKER_SUBSTRINGS = ("secret", "password", "passwd", "apikey", "accesstoken", "authtoken")
_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_HARMLESS = re.compile(
    rb"(?i)true|false|null|none|yes|no|on|off|-?[0-9][0-9_,]*(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?"
    rb"|(?:[0-9]+(?:\.[0-9]+)?(?:ms|us|ns|[smhd]))+"
    rb"|[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[T ][0-9:.]+(?:Z|[+-][0-9]{2}:?[0-9]{2})?)?"
)
_WHITESPACE = re.compile(rb"\s")


def name_words(name: str) -> list[str]:
    """``name`` as lower-case words, split at punctuation and camelCase."""
    return [w.lower() for w in _WORDS.findall(name)]


@functools.lru_cache(maxsize=4096)
def name_strength(name: str, where: Where) -> Strength:
    """How strongly ``name`` says its value is a secret, at ``where``."""
    words = name_words(unquote_plus(name))
    compact = "".join(words)
    if compact in _STRONG or (where is Where.QUERY and compact in _STRONG_IN_QUERY):
        return Strength.STRONG
    markers = _MARKERS - _NOT_IN_FIELDS if where is Where.FIELD else _MARKERS
    if any(w in markers for w in words) or any(s in compact for s in _MARKER_SUBSTRINGS):
        return Strength.WEAK
    return Strength.NONE


def is_harmless(value: bytes) -> bool:
    """A number, boolean, duration (``6m0s``) or date: never a secret, whatever its name."""
    return _HARMLESS.fullmatch(value.strip()) is not None


def looks_like_credential(value: bytes) -> bool:
    """No whitespace, 8+ characters, a letter and a digit; or a well-known key shape."""
    if KEY_SHAPES.search(value):
        return True
    if len(value) < 8 or _WHITESPACE.search(value):
        return False
    return any(c in _DIGITS for c in value) and any(c in _LETTERS for c in value)


_DIGITS = frozenset(b"0123456789")
_LETTERS = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def is_secret_value(name: str, value: bytes, where: Where) -> bool:
    """Whether ``value``, held under ``name`` at ``where``, is to be redacted."""
    strength = name_strength(name, where) if value.strip() else Strength.NONE
    if strength is Strength.STRONG:
        return True
    if strength is Strength.NONE:
        return False
    if where is Where.FIELD:
        return looks_like_credential(value)
    return not is_harmless(value)


# --- shapes ------------------------------------------------------------------------------

# Every alternative starts with a literal byte, so that ``re`` skips, in C, the positions
# where none can start (a 100 MB body is scanned in seconds); boundaries are lookbehinds
# placed after that first byte.
_SHAPES = (
    rb"s(?<![A-Za-z0-9_-]s)k-[A-Za-z0-9_-]*?[A-Za-z0-9]{20}[A-Za-z0-9_-]*",  # OpenAI, Anthropic
    rb"A(?<![A-Za-z0-9_-]A)Iza[A-Za-z0-9_-]{35}(?![A-Za-z0-9_-])",  # Google
    rb"g(?<![A-Za-z0-9_]g)h[pousr]_[A-Za-z0-9]{36,}",  # GitHub
    rb"g(?<![A-Za-z0-9_]g)ithub_pat_[A-Za-z0-9_]{22,}",
    rb"x(?<![A-Za-z0-9_-]x)ox[abposr]-[A-Za-z0-9-]{10,}",  # Slack
    rb"A(?<![A-Za-z0-9]A)(?:KIA|SIA)[A-Z0-9]{16}(?![A-Za-z0-9])",  # AWS access key id
    rb"e(?<![A-Za-z0-9_-]e)yJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*",  # JWT
)
KEY_SHAPES = re.compile(b"|".join(_SHAPES))

_MARK = rb"(?i:key|token|secret|auth|sess|pass|pwd|cookie|credential|jwt|bearer|sig)"
_NAME = rb"[A-Za-z0-9_.$@-]{0,40}?" + _MARK + rb"[A-Za-z0-9_.$@-]{0,40}"
_TOKEN = rb"[A-Za-z0-9._~+/=-]{8,}"
_PARAM = rb"(?P<%sname>[A-Za-z0-9_.%%\[\]-]{1,64})=(?P<%sval>[^&#\s\"'<>]+)"
_PARTS = (
    *_SHAPES,
    rb"B(?<![A-Za-z0-9_]B)(?i:earer)\s+(?P<btok>" + _TOKEN + rb")",
    rb"b(?<![A-Za-z0-9_]b)earer\s+(?P<ctok>" + _TOKEN + rb")",
    rb"\?" + _PARAM % (b"p", b"p"),
    rb"&" + _PARAM % (b"a", b"a"),
    rb'\\"(?P<ename>' + _NAME + rb')\\"[ \t]*:[ \t]*\\"(?P<eval>[^"\\\r\n]{0,4096})\\"',
    rb"'(?P<sname>" + _NAME + rb")'[ \t]*:[ \t]*'(?P<sval>[^'\\\r\n]{0,4096})'",
    rb'name="(?P<mname>[^"\r\n]{0,40}?' + _MARK + rb'[^"\r\n]{0,40})"[^\r\n]*\r?\n'
    rb"(?:[^\r\n]+\r?\n){0,8}\r?\n(?P<mval>[^\r\n]{1,4096})",
    rb"\n(?P<hname>[A-Za-z0-9_-]{0,40}?" + _MARK + rb"[A-Za-z0-9_-]{0,40}):[ \t]*(?P<hval>[^\r\n]+)",
    rb"://(?P<uuser>[^/\s@:\"'<>?#]{1,256})(?::(?P<upass>[^/\s@\"'<>?#]{0,256}))?@",
)
_SCANNER = re.compile(b"|".join(_PARTS))
# What the scanner's ``\?``, ``&`` and ``\n`` alternatives cannot see at the very start.
_AT_START = re.compile(rb"(?P<pname>[A-Za-z0-9_.%\[\]-]{1,64})=(?P<pval>[^&#\s\"'<>]+)|" + _PARTS[-2][2:])


@dataclass(frozen=True)
class Found:
    """What ``scan`` found: spans to redact and the secret values they held."""

    spans: tuple[Span, ...]
    secrets: tuple[bytes, ...]


# JSON fields are found from their names' markers rather than by a pattern tried at every
# quote (JSON is mostly quotes): ``bytes.find`` runs in C, and only the few fields whose
# name holds a marker get a Python look.
_FIELD = re.compile(
    rb'"(?P<dname>[A-Za-z0-9_.$@-]{1,96})"[ \t]*:[ \t]*"(?P<dval>(?:[^"\\\r\n]|\\[^\r\n]){0,4096})"'
)
_MARK_WORDS = (
    b"key", b"token", b"secret", b"auth", b"sess", b"pass", b"pwd", b"cookie", b"credential",
    b"jwt", b"bearer", b"sig",
)  # fmt: skip
_NAME_RUN = re.compile(rb"[A-Za-z0-9_.$@-]*")
_WINDOW = 1 << 20  # markers are looked for in lower-cased windows, not a lower-cased copy


def scan(data: bytes) -> Found:
    """Every secret ``data`` carries by name or by shape, without copying ``data``."""
    return _scan_short(data) if len(data) <= _SHORT else _scan(data)


_SHORT = 512  # header values, URLs: they repeat from call to call, so their scans are kept


@functools.lru_cache(maxsize=4096)
def _scan_short(data: bytes) -> Found:
    return _scan(data)


def _scan(data: bytes) -> Found:
    spans: list[Span] = []
    secrets: list[bytes] = []
    first = _AT_START.match(data)
    matches = (*((first,) if first else ()), *_SCANNER.finditer(data), *_fields(data))
    for match in matches:
        for span in _judge(match):
            spans.append(span)
            secrets.extend(_values(data[span[0] : span[1]], match.lastgroup))
    return Found(tuple(spans), tuple(dict.fromkeys(secrets)))


def _fields(data: bytes) -> Iterator[re.Match[bytes]]:
    """``"name": "value"`` pairs whose name holds a marker, in order."""
    for quote in sorted(_field_quotes(data)):
        match = _FIELD.match(data, quote)
        if match is not None:
            yield match


def _field_quotes(data: bytes) -> set[int]:
    """Where a quoted name holding a marker starts (at most 40 name bytes before it)."""
    quotes: set[int] = set()
    if b'"' not in data:
        return quotes
    for lo in range(0, len(data), _WINDOW):
        window = data[lo : lo + _WINDOW + 16].lower()
        for word in _MARK_WORDS:
            at = window.find(word)
            while at >= 0:
                quote = _quote_before(data, lo + at)
                if quote is not None:
                    quotes.add(quote)
                at = window.find(word, at + 1)
    return quotes


def _quote_before(data: bytes, at: int) -> int | None:
    quote = data.rfind(b'"', max(0, at - 41), at)
    return quote if quote >= 0 and _NAME_RUN.fullmatch(data, quote + 1, at) else None


def _judge(match: re.Match[bytes]) -> Iterator[Span]:
    """The span to redact in ``match`` (its value), or else the key shapes inside it."""
    group = match.lastgroup
    if group is None:  # a key shape
        yield match.span()
    elif _JUDGES[group](match):
        yield match.span(group)
    else:
        start, text = match.start(), match.group()
        yield from ((start + m.start(), start + m.end()) for m in KEY_SHAPES.finditer(text))


def _judge_field(kind: str, where: Where) -> Callable[[re.Match[bytes]], bool]:
    return lambda m: is_secret_value(m.group(kind + "name").decode("latin-1"), m.group(kind + "val"), where)


def _judge_bearer(m: re.Match[bytes]) -> bool:
    token: bytes = m.group(m.lastgroup or 0)
    return looks_like_credential(token) or len(token) >= 20 or any(c in b"_+/=" for c in token)


def _judge_userinfo(m: re.Match[bytes]) -> bool:
    return m.group("upass") is not None or looks_like_credential(m.group("uuser"))


def _judge_password(m: re.Match[bytes]) -> bool:
    return bool(m.group("upass"))


# Keyed by ``lastgroup``: the value group of each alternative (the user-info one ends with
# the password when there is one, else with the user name).
_JUDGES: dict[str, Callable[[re.Match[bytes]], bool]] = {
    "btok": _judge_bearer,
    "ctok": _judge_bearer,
    "pval": _judge_field("p", Where.QUERY),
    "aval": _judge_field("a", Where.QUERY),
    "dval": _judge_field("d", Where.FIELD),
    "eval": _judge_field("e", Where.FIELD),
    "sval": _judge_field("s", Where.FIELD),
    "mval": _judge_field("m", Where.FIELD),
    "hval": _judge_field("h", Where.FIELD),
    "uuser": _judge_userinfo,
    "upass": _judge_password,
}


def _values(raw: bytes, group: str | None) -> Iterator[bytes]:
    """A found secret, and its decoded form (percent-decoded, JSON-unescaped)."""
    yield raw
    scheme, space, token = raw.partition(b" ")
    if space and token.strip():
        yield token.strip()  # "Bearer X", "Basic X"
    if group in ("pval", "aval"):
        yield unquote_plus(raw.decode("latin-1")).encode("latin-1", "replace")
    elif group == "dval" and b"\\" in raw:
        yield from _json_unescaped(raw)


def _json_unescaped(raw: bytes) -> Iterator[bytes]:
    try:
        yield json.loads(b'"' + raw + b'"').encode("utf-8", "surrogatepass")
    except ValueError:
        return
