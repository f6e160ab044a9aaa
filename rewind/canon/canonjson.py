"""RFC 8785 canonical JSON, fast for the values requests are made of.

``rfc8785.dumps`` serialises in pure Python. For a value whose every part serialises the
same way under Python's C JSON encoder — object keys that are ASCII (so code-point order
is UTF-16 order), integers within ±(2**53 - 1), floats that are not integral and lie in
[1e-4, 1e16) (where ``repr`` and ECMAScript both give the shortest round-trip digits in
plain notation), strings that encode to UTF-8 — ``json.dumps`` with sorted keys and no
whitespace gives the same bytes, and is used instead. Any other value goes to
``rfc8785.dumps``, which also raises its own errors for what JSON cannot represent.
The test module checks the two agree on generated values.
"""

from __future__ import annotations

import json
from typing import Any

import rfc8785

__all__ = ["canonical_json", "representable"]

MAX_SAFE_INTEGER = 2**53 - 1
_ENCODER = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False)


def canonical_json(value: Any) -> bytes:
    """The RFC 8785 serialisation of ``value`` (``rfc8785`` errors for what it cannot hold)."""
    if _plain(value):
        try:
            return _ENCODER.encode(value).encode("utf-8")
        except UnicodeEncodeError:
            pass  # a lone surrogate: rfc8785 says so in its own words
    return bytes(rfc8785.dumps(value))


def representable(value: Any) -> bool:
    """Whether RFC 8785 can serialise ``value`` (no integer beyond 2**53, no NaN, no lone
    surrogate...)."""
    try:
        canonical_json(value)
    except (ValueError, TypeError, RecursionError):
        return False
    return True


def _plain(value: Any) -> bool:
    """Whether ``json.dumps`` serialises ``value`` exactly as RFC 8785 does (a string with
    a lone surrogate fails when encoded, and goes to ``rfc8785`` then)."""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is str or kind is bool or item is None:
            continue
        if kind is dict:
            if not _ascii_keys(item):
                return False
            stack.extend(item.values())
        elif kind is list:
            stack.extend(item)
        elif kind is int:
            if not -MAX_SAFE_INTEGER <= item <= MAX_SAFE_INTEGER:
                return False
        elif kind is not float or item.is_integer() or not 1e-4 <= abs(item) < 1e16:
            return False
    return True


def _ascii_keys(item: dict[Any, Any]) -> bool:
    try:
        return all(map(str.isascii, item))
    except TypeError:  # a key that is not a string
        return False
