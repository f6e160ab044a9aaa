"""Fingerprints (v2; v1 still computable): a pure, versioned function of a redacted request.

The contract, with every normalisation and a worked example, is ``docs/fingerprint.md``;
changing what goes into the canonical form is a format change and needs a new version.
A session stores the version it was recorded under; replay re-fingerprints an older
session's requests from their stored bodies under the current version.

    canonical_request(method, url, headers, body, provider, version=2)
        {"v": 2, "method", "host", "path", "query": [[k, v], ...] sorted, secrets dropped,
         "content_type", "body": normalised JSON value | {"sha256": hex} | null}
    fingerprint_of(canonical)  ->  "v2:" + sha256(RFC 8785 bytes of canonical)
    describe_parts(canonical)  ->  named parts (endpoint, model, system, messages, tools,
                                   parameters, body) for explaining a replay miss

Nothing here reads global state or does I/O.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import SplitResult, parse_qsl, urlsplit

from rewind.canon.canonjson import canonical_json, representable
from rewind.canon.jsonnorm import load_json, normalise_body
from rewind.canon.providers import Provider
from rewind.core.exchange import Headers, header

__all__ = [
    "FINGERPRINT_VERSION",
    "canonical_body",
    "canonical_request",
    "describe_parts",
    "fingerprint",
    "fingerprint_of",
    "parse_version",
]

FINGERPRINT_VERSION = 2
_DEFAULT_PORTS = {"http": 80, "https": 443}
_FINGERPRINT = re.compile(r"v([1-9][0-9]*):[0-9a-f]+")
# Part of the v1 contract (docs/fingerprint.md): the parameters v1 drops, whatever else
# redaction scrubs. Redaction's own, wider set must not change what v1 drops.
V1_DROPPED_QUERY_PARAMS = frozenset({"key", "api_key", "access_token"})


def canonical_request(
    method: str, url: str, headers: Headers, body: bytes, provider: Provider | None,
    version: int = FINGERPRINT_VERSION,
) -> dict[str, Any]:
    """The canonical form of a request under fingerprint ``version`` (``provider`` is
    accepted but the forms are shape-based)."""
    parts = urlsplit(url)
    return {
        "v": version,
        "method": method.upper(),
        "host": _host(parts),
        "path": parts.path or "/",
        "query": _query(parts.query),
        "content_type": _media_type(header(headers, "content-type")),
        "body": canonical_body(body, version),
    }


def _host(parts: SplitResult) -> str:
    """Lower-case host and port, without user info and without the scheme's default port."""
    host = (parts.hostname or "").lower()
    host = f"[{host}]" if ":" in host else host
    port = _port(parts)
    if port is None or _DEFAULT_PORTS.get(parts.scheme.lower()) == port:
        return host
    return f"{host}:{port}"


def _port(parts: SplitResult) -> int | None:
    try:
        return parts.port
    except ValueError:
        return None


def _query(query: str) -> list[list[str]]:
    pairs = parse_qsl(query, keep_blank_values=True)
    return sorted([k, v] for k, v in pairs if k.lower() not in V1_DROPPED_QUERY_PARAMS)


def _media_type(content_type: str | None) -> str | None:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media or None


def canonical_body(body: bytes, version: int = FINGERPRINT_VERSION) -> Any:
    """The normalised JSON value, ``None`` when empty, else ``{"sha256": hex}`` of the bytes.

    JSON that RFC 8785 cannot represent (integers beyond 2**53, lone surrogates) and JSON
    too deep to walk are hashed as bytes too.
    """
    if not body:
        return None
    try:
        value = normalise_body(load_json(body), version)
        if representable(value):
            return value
    except (ValueError, RecursionError):
        pass
    return {"sha256": hashlib.sha256(body).hexdigest()}


def fingerprint_of(canonical: dict[str, Any]) -> str:
    """``v<version>:`` and the sha256 of the RFC 8785 serialisation of a canonical request
    (its version is its ``"v"``)."""
    digest = hashlib.sha256(canonical_json(canonical)).hexdigest()
    return f"v{canonical.get('v', FINGERPRINT_VERSION)}:{digest}"


def fingerprint(
    method: str, url: str, headers: Headers, body: bytes, provider: Provider | None,
    version: int = FINGERPRINT_VERSION,
) -> str:
    """The fingerprint of a (redacted) request, by default under the current version."""
    return fingerprint_of(canonical_request(method, url, headers, body, provider, version))


def parse_version(fp: str) -> int:
    """The version of a fingerprint such as ``v1:ab12…``; ``ValueError`` if it is not one."""
    found = _FINGERPRINT.fullmatch(fp) if isinstance(fp, str) else None
    if found is None:
        raise ValueError(f"not a Rewind fingerprint: {fp!r}")
    return int(found.group(1))


# --- parts, for explaining misses ---------------------------------------------------

_SYSTEM_KEYS = ("system", "systemInstruction", "system_instruction", "instructions")
_MESSAGE_KEYS = ("messages", "contents", "input")
_PART_KEYS = frozenset({"model", "tools", *_SYSTEM_KEYS, *_MESSAGE_KEYS})
_GEMINI_MODEL = re.compile(r"/models/([^/:]+)")


def describe_parts(canonical: Mapping[str, Any]) -> dict[str, Any]:
    """A canonical request split into named parts that a miss report compares one by one.

    ``endpoint`` (method, host, path, query, content type), ``model``, ``system`` (one
    value, a list when several, or ``None``), ``messages`` (the non-system messages,
    Gemini contents or Responses input), ``tools``, ``parameters`` (every other body key)
    and ``body`` (the body itself when it is not a JSON object, else ``None``).
    """
    body = canonical.get("body")
    parts = _empty_parts(canonical)
    if isinstance(body, dict) and set(body) != {"sha256"}:
        parts.update(_body_parts(body))
    else:
        parts["body"] = body
    if parts["model"] is None:
        parts["model"] = _path_model(canonical.get("path"))
    return parts


def _empty_parts(canonical: Mapping[str, Any]) -> dict[str, Any]:
    endpoint = {k: canonical.get(k) for k in ("method", "host", "path", "query", "content_type")}
    return {
        "endpoint": endpoint,
        "model": None,
        "system": None,
        "messages": [],
        "tools": None,
        "parameters": {},
        "body": None,
    }


def _body_parts(body: dict[str, Any]) -> dict[str, Any]:
    system, messages = _split_system(body)
    return {
        "model": body.get("model"),
        "system": system,
        "messages": messages,
        "tools": _flat_tools(body.get("tools")),
        "parameters": {k: v for k, v in body.items() if k not in _PART_KEYS},
    }


def _split_system(body: dict[str, Any]) -> tuple[Any, list[Any]]:
    system = [body[k] for k in _SYSTEM_KEYS if k in body]
    messages: list[Any] = []
    for key in _MESSAGE_KEYS:
        for item in _as_list(body.get(key)):
            (system if _is_system(item) else messages).append(item)
    return _one_or_many(system), messages


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [] if value is None else [value]


def _is_system(item: Any) -> bool:
    return isinstance(item, dict) and item.get("role") in ("system", "developer")


def _one_or_many(items: list[Any]) -> Any:
    return None if not items else items[0] if len(items) == 1 else items


def _flat_tools(tools: Any) -> Any:
    """Tools as one list, Gemini's ``functionDeclarations`` lifted out of their wrappers."""
    if not isinstance(tools, list):
        return tools
    return [item for tool in tools for item in _unwrapped(tool)]


def _unwrapped(tool: Any) -> list[Any]:
    declarations = tool.get("functionDeclarations") if isinstance(tool, dict) else None
    if not isinstance(declarations, list):
        return [tool]
    rest = {k: v for k, v in tool.items() if k != "functionDeclarations"}
    return [*declarations, *([rest] if rest else [])]


def _path_model(path: Any) -> str | None:
    found = _GEMINI_MODEL.search(path) if isinstance(path, str) else None
    return found.group(1) if found else None
