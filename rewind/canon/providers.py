"""What Rewind knows about LLM providers' wire formats.

Which provider a request went to (``detect_provider``), whether it is an LLM call
(``is_llm_call``), and what it cost: the model (``extract_model``) and token usage
(``extract_usage``) read from JSON bodies and from SSE streams:

    OpenAI     usage {prompt_tokens, completion_tokens, prompt_tokens_details.cached_tokens}
               (streams: the include_usage chunk); Responses API usage {input_tokens, ...}
    Anthropic  usage {input_tokens, output_tokens, cache_read_input_tokens,
               cache_creation_input_tokens}; streams: message_start, then message_delta
    Gemini     usageMetadata {promptTokenCount, candidatesTokenCount (+ thoughtsTokenCount),
               cachedContentTokenCount}; the last one in a stream wins

Readers never raise: an unknown or garbled body gives ``Usage()`` and a ``None`` model.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from rewind.canon.jsonget import as_dict as _dict
from rewind.canon.jsonget import nonempty_str as _str
from rewind.canon.sse import SseEvent, iter_sse, parse_sse
from rewind.core.endpoints import PROVIDER_ENDPOINTS

__all__ = [
    "BASE_URL_ENV",
    "PROVIDER_HOSTS",
    "PUBLIC_BASE_URLS",
    "Provider",
    "SseEvent",
    "Usage",
    "detect_provider",
    "extract_model",
    "extract_response_model",
    "extract_usage",
    "is_llm_call",
    "parse_sse",
    "provider_named",
]


class Provider(StrEnum):
    """An LLM provider whose wire format Rewind understands (a ``str``: ``"openai"``...)."""

    OPENAI = "openai"
    ANTHROPIC = "anthropic"
    GEMINI = "gemini"


# One table of endpoints, kept with the wiring that points agents at the listeners.
PUBLIC_BASE_URLS: dict[Provider, str] = {
    Provider(name): url for name, (_, url) in PROVIDER_ENDPOINTS.items()
}
BASE_URL_ENV: dict[Provider, str] = {
    Provider(name): variable for name, (variable, _) in PROVIDER_ENDPOINTS.items()
}
PROVIDER_HOSTS: dict[str, Provider] = {
    urlsplit(url).netloc: provider for provider, url in PUBLIC_BASE_URLS.items()
}

# Path shapes that identify a provider on any host (a fake provider on 127.0.0.1, a gateway).
_PATH_SHAPES: dict[Provider, re.Pattern[str]] = {
    Provider.OPENAI: re.compile(r"/chat/completions$|/embeddings$|/v1/(responses(/|$)|completions$)"),
    Provider.ANTHROPIC: re.compile(r"/v1/messages(/|$)"),
    Provider.GEMINI: re.compile(r"/models/[^/]+:\w+$"),
}

_LLM_PATHS: dict[Provider, re.Pattern[str]] = {
    Provider.OPENAI: re.compile(r"/(chat/)?completions$|/responses$|/embeddings$"),
    Provider.ANTHROPIC: re.compile(r"/v1/messages$|/v1/complete$"),
    Provider.GEMINI: re.compile(r":(generateContent|streamGenerateContent|embedContent|batchEmbedContents)$"),
}

_GEMINI_MODEL = re.compile(r"models/([^/:]+)")


def _bare_path(path: str) -> str:
    return path.split("?", 1)[0]


def _bare_host(host: str) -> str:
    host = host.lower()
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.split(":", 1)[0]


def provider_named(name: str | None) -> Provider | None:
    """The provider a stored name (``"openai"``...) stands for; ``None`` for none or an
    unknown one."""
    try:
        return Provider(name) if name else None
    except ValueError:
        return None


_PROVIDER_NAMES = frozenset(p.value for p in Provider)


def detect_provider(host: str, path: str, listener: str | None) -> Provider | None:
    """The provider by reverse listener, else by host, else by the request path's shape."""
    if listener in _PROVIDER_NAMES:
        return Provider(listener)
    by_host = PROVIDER_HOSTS.get(_bare_host(host))
    if by_host is not None:
        return by_host
    return _provider_by_path(_bare_path(path))


@functools.lru_cache(maxsize=4096)
def _provider_by_path(bare: str) -> Provider | None:
    return next((p for p, shape in _PATH_SHAPES.items() if shape.search(bare)), None)


def is_llm_call(provider: Provider | None, path: str) -> bool:
    """Whether a request to ``provider`` at ``path`` asks a model for tokens."""
    pattern = _LLM_PATHS.get(provider) if provider is not None else None
    return pattern is not None and pattern.search(_bare_path(path)) is not None


@dataclass(frozen=True)
class Usage:
    """Token counts of one call; ``None`` where the provider did not say."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None


# --- reading bodies without raising -------------------------------------------------


def _loads(data: bytes | str) -> Any:
    """Parsed JSON, or ``None`` when ``data`` is not JSON."""
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return None


def _int(value: Any) -> int | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
    return value if ok else None


def _objects(value: Any) -> list[dict[str, Any]]:
    items = value if isinstance(value, list) else [value]
    return [item for item in items if isinstance(item, dict)]


BIG_BODY = 4 * 1024 * 1024  # larger JSON bodies are not parsed whole
ISLAND = 256 * 1024  # how much of a big body one looked-up value may span


def _payloads(body: bytes, content_type: str | None, keys: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """The JSON objects of a response: the body, a streamed JSON array, or SSE data.

    With ``keys``, only what can hold them is parsed: SSE events that mention one, and,
    of a JSON body over ``BIG_BODY``, just the last value of each key (usage comes last),
    so a 100 MB body is never turned into objects whole."""
    if "event-stream" not in (content_type or "").lower():
        if keys and len(body) > BIG_BODY:
            return _islands(body, keys)
        value = _loads(body)
        if value is not None:
            return _objects(value)
    return [obj for data in _event_data(body, keys) for obj in _objects(_loads(data))]


def _event_data(body: bytes, keys: tuple[str, ...]) -> Iterator[str]:
    for event in iter_sse(body):
        if not keys or any(key in event.data for key in keys):
            yield event.data


def _islands(body: bytes, keys: tuple[str, ...]) -> list[dict[str, Any]]:
    """``{key: value}`` for the last occurrence of each key in a big JSON body."""
    found: dict[str, Any] = {}
    for key in keys:
        at = body.rfind(b'"' + key.encode() + b'"')
        if at >= 0:
            value = _value_after(body, at + len(key) + 2)
            if value is not None:
                found[key] = value
    return [found] if found else []


def _value_after(body: bytes, at: int) -> Any:
    text = bytes(memoryview(body)[at : at + ISLAND]).decode("utf-8", "replace").lstrip()
    if not text.startswith(":"):
        return None
    try:
        return json.JSONDecoder().raw_decode(text[1:].lstrip())[0]
    except ValueError:
        return None


# --- model ----------------------------------------------------------------------------


def extract_model(
    provider: Provider | None, path: str, request_body: bytes, response_body: bytes
) -> str | None:
    """The model asked for: Gemini's path segment, the request's ``model``, or the response's."""
    if provider == Provider.GEMINI:
        found = _GEMINI_MODEL.search(_bare_path(path))
        if found:
            return found.group(1)
    requested = _str(_dict(_loads(request_body)).get("model"))
    return requested or _response_model(response_body)


def extract_response_model(provider: Provider | None, response_body: bytes) -> str | None:
    """The model the provider says answered (it may name a dated version of the one asked for)."""
    return None if provider is None else _response_model(response_body)


def _response_model(body: bytes) -> str | None:
    for obj in _payloads(body, None, ("model", "modelVersion")):
        for holder in (obj, _dict(obj.get("message")), _dict(obj.get("response"))):
            model = _str(holder.get("model")) or _str(holder.get("modelVersion"))
            if model:
                return model
    return None


# --- usage ----------------------------------------------------------------------------


def extract_usage(provider: Provider | None, response_body: bytes, content_type: str | None) -> Usage:
    """Token usage from a JSON or SSE response body; ``Usage()`` when there is none."""
    reader = _USAGE_READERS.get(provider) if provider is not None else None
    return reader(_payloads(response_body, content_type, USAGE_KEYS)) if reader else Usage()


def _openai_usage(payloads: list[dict[str, Any]]) -> Usage:
    usage = Usage()
    for obj in payloads:
        raw = obj.get("usage") or _dict(obj.get("response")).get("usage")
        if isinstance(raw, dict):
            usage = _openai_counts(raw)
    return usage


def _openai_counts(raw: dict[str, Any]) -> Usage:
    details = _dict(raw.get("prompt_tokens_details")) or _dict(raw.get("input_tokens_details"))
    return Usage(
        input_tokens=_first_int(raw, "prompt_tokens", "input_tokens"),
        output_tokens=_first_int(raw, "completion_tokens", "output_tokens"),
        cache_read_tokens=_int(details.get("cached_tokens")),
    )


def _first_int(raw: dict[str, Any], *names: str) -> int | None:
    return next((v for v in (_int(raw.get(n)) for n in names) if v is not None), None)


def _anthropic_usage(payloads: list[dict[str, Any]]) -> Usage:
    counts: dict[str, int] = {}
    for obj in payloads:
        raw = obj["usage"] if "usage" in obj else _dict(obj.get("message")).get("usage")
        counts.update({k: v for k, v in _dict(raw).items() if _int(v) is not None})
    return Usage(
        input_tokens=counts.get("input_tokens"),
        output_tokens=counts.get("output_tokens"),
        cache_read_tokens=counts.get("cache_read_input_tokens"),
        cache_write_tokens=counts.get("cache_creation_input_tokens"),
    )


def _gemini_usage(payloads: list[dict[str, Any]]) -> Usage:
    metas = [obj["usageMetadata"] for obj in payloads if isinstance(obj.get("usageMetadata"), dict)]
    if not metas:
        return Usage()
    last = metas[-1]
    return Usage(
        input_tokens=_int(last.get("promptTokenCount")),
        output_tokens=_gemini_output(last),
        cache_read_tokens=_int(last.get("cachedContentTokenCount")),
    )


def _gemini_output(meta: dict[str, Any]) -> int | None:
    """Candidates plus thinking tokens: Gemini bills ``thoughtsTokenCount`` as output."""
    candidates, thoughts = _int(meta.get("candidatesTokenCount")), _int(meta.get("thoughtsTokenCount"))
    if candidates is None and thoughts is None:
        return None
    return (candidates or 0) + (thoughts or 0)


USAGE_KEYS = ("usage", "usageMetadata")  # where every provider's token counts live
_USAGE_READERS: dict[Provider, Callable[[list[dict[str, Any]]], Usage]] = {
    Provider.OPENAI: _openai_usage,
    Provider.ANTHROPIC: _anthropic_usage,
    Provider.GEMINI: _gemini_usage,
}
