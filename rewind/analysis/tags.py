"""Failure tags: why a recorded step failed, as one word that views can group and count by.

``failure_tag(StepFacts)`` reads a step's HTTP status, the recorder's transport error
(mitmproxy's ``flow.error.msg``), the provider's error type and message (as
``rewind.canon.meaning`` reads them: OpenAI's ``code`` else ``type``, Anthropic's
``error.type``, Gemini's ``status``) and the finish reason. Types and finish reasons are
compared case-insensitively. A rule ``statuses | types | "messages"`` matches on a status,
or on an error type or message whatever the status (an error event inside a 200 stream
counts). The first rule that matches wins:

    transport error and no response (or one below 400, cut off mid-stream):
        mentions a timeout ("timed out", "timeout", ETIMEDOUT, deadline) ... timeout
        anything else ("Connection killed.", "server closed connection",
        "Client disconnected.", "[Errno 111] Connect call failed", ...) .... network_error
    no status and no transport error (unfinished) ........................... (no tag)
    401 402 403 | authentication_error permission_error billing_error
        invalid_api_key UNAUTHENTICATED PERMISSION_DENIED | "API key not valid"  auth_error
    429 | rate_limit_exceeded rate_limit_error insufficient_quota
        RESOURCE_EXHAUSTED ................................................. rate_limited
    413 | context_length_exceeded request_too_large | "prompt is too long",
        "maximum context length", "context window" / "limit", "exceeds the
        maximum number of tokens", "input token count" ..................... context_overflow
    content_filter content_policy_violation (an error, e.g. Azure's 400) .... content_filter
    408 504 | timeout_error DEADLINE_EXCEEDED ............................... timeout
    500 502 503 529 | server_error api_error overloaded_error INTERNAL
        UNAVAILABLE ........................................................ server_error
    400 404 422 | invalid_request_error not_found_error model_not_found
        INVALID_ARGUMENT NOT_FOUND FAILED_PRECONDITION ..................... invalid_request
    any other 5xx, then any other 4xx ............................ server_error, invalid_request
    any other error type or message on a 2xx (a mid-stream error event) .... server_error
    finish reason content_filter SAFETY RECITATION PROHIBITED_CONTENT
        BLOCKLIST SPII IMAGE_SAFETY refusal ................................ content_filter
    anything else: a success, also one cut short by "length" / "max_tokens"  (no tag)

Context overflow is checked before invalid_request because providers send it as a plain
400 (OpenAI ``context_length_exceeded``, Anthropic ``invalid_request_error`` "prompt is
too long", Gemini ``INVALID_ARGUMENT`` "exceeds the maximum number of tokens"). Quota
exhaustion (OpenAI ``insufficient_quota``, Gemini's daily ``RESOURCE_EXHAUSTED``) is
rate_limited: it arrives as a 429 like a rate limit, and Gemini does not tell them apart
by type; the message says which. Billing (402) is auth_error: the account may not make
the call. A client that hangs up (often its own timeout) is a network_error: the proxy
cannot tell why it left.

``session_failed``: a session failed iff its agent exited non-zero; when the exit code is
unknown (``None``: still running, or not recorded), iff any step has a tag. A session that
exits 0 after retrying a 429 is ok: the agent recovered. Its tags are shown anyway.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from rewind.canon.meaning import Meaning
from rewind.store.models import StepRecord

__all__ = ["StepFacts", "Tag", "failure_tag", "session_failed", "step_tag"]


class Tag(StrEnum):
    """Why a step failed (a ``str``: ``"rate_limited"``...)."""

    RATE_LIMITED = "rate_limited"
    SERVER_ERROR = "server_error"
    TIMEOUT = "timeout"
    NETWORK_ERROR = "network_error"
    CONTEXT_OVERFLOW = "context_overflow"
    AUTH_ERROR = "auth_error"
    INVALID_REQUEST = "invalid_request"
    CONTENT_FILTER = "content_filter"


@dataclass(frozen=True)
class StepFacts:
    """What a recorded step says about its outcome."""

    status: int | None  # HTTP status; None when no response arrived
    transport_error: str | None  # the recorder's error when the exchange broke (flow.error.msg)
    error_type: str | None  # provider error type/code from the body
    error_message: str | None
    finish_reason: str | None  # provider finish reason ("content_filter", "SAFETY", "length"...)


@dataclass(frozen=True)
class _Rule:
    """A tag for these statuses, error types, or error messages matching ``message``."""

    tag: Tag
    statuses: frozenset[int] = frozenset()
    types: frozenset[str] = frozenset()
    message: re.Pattern[str] | None = None

    def matches(self, facts: StepFacts, kind: str | None) -> bool:
        by_message = self.message is not None and bool(self.message.search(facts.error_message or ""))
        return facts.status in self.statuses or kind in self.types or by_message


def _rule(tag: Tag, statuses: Iterable[int], types: str, message: str | None = None) -> _Rule:
    pattern = re.compile(message, re.IGNORECASE) if message else None
    return _Rule(tag, frozenset(statuses), frozenset(types.lower().split()), pattern)


_RULES = (
    _rule(
        Tag.AUTH_ERROR,
        (401, 402, 403),
        "authentication_error permission_error billing_error invalid_api_key unauthenticated "
        "permission_denied",
        r"api key not valid|invalid api key|incorrect api key|invalid x-api-key",
    ),
    _rule(
        Tag.RATE_LIMITED,
        (429,),
        "rate_limit_exceeded rate_limit_error insufficient_quota resource_exhausted",
    ),
    _rule(
        Tag.CONTEXT_OVERFLOW,
        (413,),
        "context_length_exceeded request_too_large",
        r"prompt is too long|input is too long|maximum context length|context (length|window|limit)|"
        r"exceeds the max(imum)? (number of )?tokens|input token count",
    ),
    _rule(Tag.CONTENT_FILTER, (), "content_filter content_policy_violation"),
    _rule(Tag.TIMEOUT, (408, 504), "timeout_error deadline_exceeded"),
    _rule(
        Tag.SERVER_ERROR,
        (500, 502, 503, 529),
        "server_error api_error overloaded_error internal unavailable",
    ),
    _rule(
        Tag.INVALID_REQUEST,
        (400, 404, 422),
        "invalid_request_error not_found_error model_not_found invalid_argument not_found "
        "failed_precondition",
    ),
)

_TIMEOUT = re.compile(r"time[d]?[ _-]?out|deadline[ _]exceeded|etimedout|errno 110\b", re.IGNORECASE)
_FILTERED = frozenset(
    "content_filter safety recitation prohibited_content blocklist spii image_safety refusal".split()
)
_NOT_A_TYPE = "transport"  # what rewind.canon.meaning calls a broken exchange


def failure_tag(facts: StepFacts) -> Tag | None:
    """Why the step failed, by the rules of the module docstring; ``None`` if it did not."""
    if facts.transport_error and (facts.status is None or facts.status < 400):
        return Tag.TIMEOUT if _TIMEOUT.search(facts.transport_error) else Tag.NETWORK_ERROR
    if facts.status is None:
        return None
    kind = _kind(facts.error_type)
    rule = next((rule for rule in _RULES if rule.matches(facts, kind)), None)
    return rule.tag if rule is not None else _by_status_class(facts, kind)


def _kind(error_type: str | None) -> str | None:
    kind = (error_type or "").strip().lower()
    return kind if kind and kind != _NOT_A_TYPE else None


def _by_status_class(facts: StepFacts, kind: str | None) -> Tag | None:
    status = facts.status or 0
    if status >= 500:
        return Tag.SERVER_ERROR
    if status >= 400:
        return Tag.INVALID_REQUEST
    if kind is not None or facts.error_message:
        return Tag.SERVER_ERROR
    filtered = (facts.finish_reason or "").strip().lower() in _FILTERED
    return Tag.CONTENT_FILTER if filtered else None


def session_failed(exit_code: int | None, tags: Iterable[Tag | None]) -> bool:
    """Non-zero exit; or, with no exit code, any tagged step (module docstring)."""
    if exit_code is not None:
        return exit_code != 0
    return any(tag is not None for tag in tags)


def step_tag(step: StepRecord, meaning: Meaning | None = None) -> str | None:
    """The tag of a recorded step: from its response's ``meaning`` when given (at record
    time), else from what the index keeps (its status, transport error, error type and
    finish reason)."""
    facts = StepFacts(
        status=step.status,
        transport_error=step.error,
        error_type=meaning.error_type if meaning is not None else step.error_type,
        error_message=meaning.error_message if meaning is not None else None,
        finish_reason=step.finish_reason,
    )
    tag = failure_tag(facts)
    return None if tag is None else tag.value
