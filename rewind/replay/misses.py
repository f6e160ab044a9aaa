"""The responses replay sends for a miss and for a recorded upstream failure.

A miss is answered (never sent upstream) with an error shaped like the provider's own
error body, so the SDK raises an error whose message is Rewind's explanation:

- OpenAI:    ``{"error": {"message", "type", "param", "code"}}``
- Anthropic: ``{"type": "error", "error": {"type", "message"}}``
- Gemini:    ``{"error": {"code", "message", "status": "NOT_FOUND"}}``
- other hosts: the explanation as ``text/plain``.

Every JSON body also carries the structured report under ``"rewind"``.

The status is **404** with ``x-should-retry: false``. The openai and anthropic Python
SDKs (``_base_client.py`` ``_should_retry``) first obey ``x-should-retry`` and otherwise
retry 408, 409, 429 and every status >= 500 with back-off (2 retries by default);
google-genai retries only when retry options are set, then 408, 429, 500, 502, 503, 504.
404 is in none of those sets, maps to each SDK's ``NotFoundError``, and fails at once.

A recorded failure (no response, only an ``error``) replays as mitmproxy's own answer
to an unreachable upstream: ``502 Bad Gateway`` with an HTML page naming the error. It is
deliberately left retryable: the recording holds the SDK's retries as later steps.
"""

from __future__ import annotations

import html
import json
from enum import Enum
from typing import Any

from rewind.core.exchange import Headers
from rewind.replay.explain import MissReport
from rewind.store.models import StepRecord

__all__ = [
    "FAILURE_STATUS",
    "MISS_ERROR_TYPE",
    "MISS_STATUS",
    "failure_response",
    "miss_response",
]

MISS_STATUS = 404
FAILURE_STATUS = 502
MISS_ERROR_TYPE = "rewind_replay_miss"
MISS_HEADERS: Headers = (("x-should-retry", "false"), ("x-rewind-miss", "1"))
_JSON = (("content-type", "application/json"),)
_TEXT = (("content-type", "text/plain; charset=utf-8"),)


def miss_response(provider: str | None, report: MissReport) -> tuple[int, Headers, bytes]:
    """Status, headers and body answering an unmatched request to ``provider``."""
    shape = _SHAPES.get(_provider_name(provider) or "")
    if shape is None:
        return MISS_STATUS, _TEXT + MISS_HEADERS, (report.text() + "\n").encode()
    body = {**shape(report.text()), "rewind": report.to_json()}
    return MISS_STATUS, _JSON + MISS_HEADERS, json.dumps(body, ensure_ascii=False).encode()


def _provider_name(provider: str | None) -> str | None:
    return str(provider.value) if isinstance(provider, Enum) else provider


def _openai(message: str) -> dict[str, Any]:
    error = {"message": message, "type": MISS_ERROR_TYPE, "param": None, "code": MISS_ERROR_TYPE}
    return {"error": error}


def _anthropic(message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": MISS_ERROR_TYPE, "message": message}}


def _gemini(message: str) -> dict[str, Any]:
    return {"error": {"code": MISS_STATUS, "message": message, "status": "NOT_FOUND"}}


_SHAPES = {"openai": _openai, "anthropic": _anthropic, "gemini": _gemini}


def failure_response(step: StepRecord) -> tuple[int, Headers, bytes]:
    """Status, headers and body replaying a step whose upstream never answered."""
    message = step.error or "upstream connection failed"
    headers = (("content-type", "text/html"), ("connection", "close"), ("x-rewind-failure", "1"))
    return FAILURE_STATUS, headers, _error_page(FAILURE_STATUS, "Bad Gateway", message)


def _error_page(status: int, reason: str, message: str) -> bytes:
    return (
        f"<html>\n<head>\n    <title>{status} {reason}</title>\n</head>\n<body>\n"
        f"    <h1>{status} {reason}</h1>\n    <p>{html.escape(message)}</p>\n</body>\n</html>"
    ).encode("utf-8", "replace")
