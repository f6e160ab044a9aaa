"""Tests of rewind.analysis.tags: each rule against real providers' error shapes."""

from __future__ import annotations

import pytest

from rewind.analysis import tags
from rewind.analysis.tags import StepFacts, Tag, failure_tag, session_failed


def facts(
    status: int | None = 200,
    error_type: str | None = None,
    message: str | None = None,
    finish: str | None = None,
    transport: str | None = None,
) -> StepFacts:
    return StepFacts(status, transport, error_type, message, finish)


def test_public_api() -> None:
    assert sorted(tags.__all__) == ["StepFacts", "Tag", "failure_tag", "session_failed", "step_tag"]


def test_tags_are_strings() -> None:
    assert Tag("rate_limited") is Tag.RATE_LIMITED
    assert [t.value for t in Tag] == [
        "rate_limited",
        "server_error",
        "timeout",
        "network_error",
        "context_overflow",
        "auth_error",
        "invalid_request",
        "content_filter",
    ]


# (status, error type as rewind.canon.meaning reads it, message) from the providers' docs.
CASES = {
    # --- rate_limited
    "openai 429 rate limit": (
        facts(
            429,
            "rate_limit_exceeded",
            "Rate limit reached for gpt-4o in organization org-x on tokens per min (TPM)",
        ),
        Tag.RATE_LIMITED,
    ),
    "openai 429 quota": (
        facts(
            429,
            "insufficient_quota",
            "You exceeded your current quota, please check your plan and billing details.",
        ),
        Tag.RATE_LIMITED,
    ),
    "anthropic 429": (
        facts(429, "rate_limit_error", "Number of request tokens has exceeded your rate limit"),
        Tag.RATE_LIMITED,
    ),
    "gemini 429": (
        facts(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
        Tag.RATE_LIMITED,
    ),
    "429 without a body": (facts(429), Tag.RATE_LIMITED),
    "anthropic rate limit mid-stream": (facts(200, "rate_limit_error", "Rate limited"), Tag.RATE_LIMITED),
    # --- auth_error
    "openai 401": (
        facts(401, "invalid_api_key", "Incorrect API key provided: sk-test-fake."),
        Tag.AUTH_ERROR,
    ),
    "anthropic 401": (facts(401, "authentication_error", "invalid x-api-key"), Tag.AUTH_ERROR),
    "anthropic 403": (
        facts(403, "permission_error", "Your API key does not have permission"),
        Tag.AUTH_ERROR,
    ),
    "anthropic 402": (facts(402, "billing_error", "There is an issue with your billing"), Tag.AUTH_ERROR),
    "gemini 403": (
        facts(403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers"),
        Tag.AUTH_ERROR,
    ),
    "gemini bad key is a 400": (
        facts(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key."),
        Tag.AUTH_ERROR,
    ),
    # --- context_overflow (before invalid_request)
    "openai context length": (
        facts(
            400,
            "context_length_exceeded",
            "This model's maximum context length is 128000 tokens. However, your messages resulted in "
            "130512 tokens.",
        ),
        Tag.CONTEXT_OVERFLOW,
    ),
    "openai responses context window": (
        facts(400, "invalid_request_error", "Your input exceeds the context window of this model."),
        Tag.CONTEXT_OVERFLOW,
    ),
    "anthropic prompt too long": (
        facts(400, "invalid_request_error", "prompt is too long: 215000 tokens > 200000 maximum"),
        Tag.CONTEXT_OVERFLOW,
    ),
    "anthropic context limit": (
        facts(
            400,
            "invalid_request_error",
            "input length and `max_tokens` exceed context limit: 198000 + 8192 > 200000",
        ),
        Tag.CONTEXT_OVERFLOW,
    ),
    "anthropic 413": (
        facts(413, "request_too_large", "Request exceeds the maximum allowed number of bytes."),
        Tag.CONTEXT_OVERFLOW,
    ),
    "gemini token count": (
        facts(
            400,
            "INVALID_ARGUMENT",
            "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).",
        ),
        Tag.CONTEXT_OVERFLOW,
    ),
    # --- invalid_request
    "openai bad schema": (
        facts(
            400,
            "invalid_request_error",
            "Invalid schema for function 'get_weather': 'object' is not valid under any of the given "
            "schemas.",
        ),
        Tag.INVALID_REQUEST,
    ),
    "openai unknown model": (
        facts(404, "model_not_found", "The model `gpt-9` does not exist"),
        Tag.INVALID_REQUEST,
    ),
    "anthropic bad tool input": (
        facts(
            400,
            "invalid_request_error",
            "messages.1.content.0.tool_use.input: Input should be a valid dictionary",
        ),
        Tag.INVALID_REQUEST,
    ),
    "anthropic max_tokens too big": (
        facts(
            400,
            "invalid_request_error",
            "max_tokens: 100000 > 64000, which is the maximum allowed number of output tokens",
        ),
        Tag.INVALID_REQUEST,
    ),
    "anthropic 404": (facts(404, "not_found_error", "model: claude-9"), Tag.INVALID_REQUEST),
    "gemini invalid argument": (
        facts(
            400,
            "INVALID_ARGUMENT",
            "* GenerateContentRequest.tools[0].function_declarations[0].parameters.type: must be specified",
        ),
        Tag.INVALID_REQUEST,
    ),
    "gemini failed precondition": (
        facts(400, "FAILED_PRECONDITION", "User location is not supported"),
        Tag.INVALID_REQUEST,
    ),
    "422 validation": (facts(422, None, "Unprocessable Entity"), Tag.INVALID_REQUEST),
    "other 4xx": (facts(409), Tag.INVALID_REQUEST),
    # --- timeout
    "408": (facts(408), Tag.TIMEOUT),
    "gemini 504": (
        facts(504, "DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
        Tag.TIMEOUT,
    ),
    "anthropic 504": (facts(504, "timeout_error", "Request timed out"), Tag.TIMEOUT),
    # --- server_error
    "openai 500": (
        facts(500, "server_error", "The server had an error while processing your request."),
        Tag.SERVER_ERROR,
    ),
    "openai 503": (facts(503, None, "Slow Down"), Tag.SERVER_ERROR),
    "502": (facts(502), Tag.SERVER_ERROR),
    "anthropic 500": (facts(500, "api_error", "Internal server error"), Tag.SERVER_ERROR),
    "anthropic 529": (facts(529, "overloaded_error", "Overloaded"), Tag.SERVER_ERROR),
    "anthropic overloaded mid-stream": (facts(200, "overloaded_error", "Overloaded"), Tag.SERVER_ERROR),
    "gemini 500": (facts(500, "INTERNAL", "An internal error has occurred."), Tag.SERVER_ERROR),
    "gemini 503": (
        facts(503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
        Tag.SERVER_ERROR,
    ),
    "other 5xx": (facts(507), Tag.SERVER_ERROR),
    "unknown error event on a 200": (facts(200, "stream_error", "something broke"), Tag.SERVER_ERROR),
    "openai responses failed": (
        facts(200, "server_error", "The model failed", finish="failed"),
        Tag.SERVER_ERROR,
    ),
    # --- content_filter
    "openai finish content_filter": (facts(200, finish="content_filter"), Tag.CONTENT_FILTER),
    "openai responses incomplete content_filter": (facts(200, finish="content_filter"), Tag.CONTENT_FILTER),
    "azure prompt filtered (400)": (
        facts(
            400,
            "content_filter",
            "The response was filtered due to the prompt triggering content management policy.",
        ),
        Tag.CONTENT_FILTER,
    ),
    "anthropic refusal": (facts(200, finish="refusal"), Tag.CONTENT_FILTER),
    "gemini SAFETY": (facts(200, finish="SAFETY"), Tag.CONTENT_FILTER),
    "gemini RECITATION": (facts(200, finish="RECITATION"), Tag.CONTENT_FILTER),
    "gemini blocked prompt": (facts(200, finish="PROHIBITED_CONTENT"), Tag.CONTENT_FILTER),
    # --- transport errors (no response)
    "mitmproxy killed": (facts(None, transport="Connection killed."), Tag.NETWORK_ERROR),
    "server closed": (facts(None, transport="server closed connection"), Tag.NETWORK_ERROR),
    "client hung up": (facts(None, transport="Client disconnected."), Tag.NETWORK_ERROR),
    "refused": (facts(None, transport="[Errno 111] Connect call failed ('127.0.0.1', 9)"), Tag.NETWORK_ERROR),
    "dns": (facts(None, transport="[Errno -2] Name or service not known"), Tag.NETWORK_ERROR),
    "http2 reset": (facts(None, transport="stream reset by client (CANCEL)"), Tag.NETWORK_ERROR),
    "connect timed out": (facts(None, transport="[Errno 110] Connection timed out"), Tag.TIMEOUT),
    "timed out": (facts(None, transport="timed out"), Tag.TIMEOUT),
    "watchdog timeout": (facts(None, transport="timeout"), Tag.TIMEOUT),
    "read timeout": (facts(None, transport="ReadTimeout: The read operation timed out"), Tag.TIMEOUT),
    "stream cut mid-way": (facts(200, transport="server closed connection"), Tag.NETWORK_ERROR),
    "meaning calls it transport": (
        facts(None, "transport", transport="Connection killed."),
        Tag.NETWORK_ERROR,
    ),
    "an error status outranks a broken body": (
        facts(429, "rate_limit_error", transport="Client disconnected."),
        Tag.RATE_LIMITED,
    ),
}


@pytest.mark.parametrize(("step", "expected"), list(CASES.values()), ids=list(CASES))
def test_failure_tag(step: StepFacts, expected: Tag) -> None:
    assert failure_tag(step) is expected


@pytest.mark.parametrize(
    "step",
    [
        facts(200, finish="stop"),
        facts(200, finish="tool_calls"),
        facts(200, finish="end_turn"),
        facts(200, finish="tool_use"),
        facts(200, finish="STOP"),
        facts(200, finish="completed"),
        facts(200, finish="length"),
        facts(200, finish="max_tokens"),
        facts(200, finish="MAX_TOKENS"),
        facts(200),
        facts(201),
        facts(304),
        facts(None),
        facts(200, "transport"),
    ],
    ids=str,
)
def test_success_has_no_tag(step: StepFacts) -> None:
    assert failure_tag(step) is None


def test_error_types_are_case_insensitive() -> None:
    assert failure_tag(facts(200, "resource_exhausted")) is Tag.RATE_LIMITED
    assert failure_tag(facts(200, " Overloaded_Error ")) is Tag.SERVER_ERROR
    assert failure_tag(facts(200, finish="safety")) is Tag.CONTENT_FILTER


# --- sessions ----------------------------------------------------------------------------


def test_nonzero_exit_fails_a_session_even_without_tags() -> None:
    assert session_failed(1, [None, None]) is True
    assert session_failed(-9, []) is True


def test_zero_exit_is_ok_even_after_retried_failures() -> None:
    assert session_failed(0, [Tag.RATE_LIMITED, None]) is False


def test_unknown_exit_fails_on_any_tag() -> None:
    assert session_failed(None, [None, Tag.TIMEOUT]) is True
    assert session_failed(None, [None, None]) is False
    assert session_failed(None, []) is False


def test_tags_may_be_a_one_shot_iterable() -> None:
    assert session_failed(None, iter([Tag.SERVER_ERROR])) is True


def test_step_tag_reads_the_meaning_at_record_time_and_the_index_later() -> None:
    from rewind.canon.meaning import Meaning
    from rewind.store.models import StepRecord

    step = StepRecord("s", 1, "llm", "POST", "https://x/v1/chat/completions", 0.0, "v1:0", (), "0" * 64,
                      status=400, error_type="invalid_request_error")
    overflow = Meaning(kind="llm", status=400, error_type="invalid_request_error",
                       error_message="prompt is too long: 210000 tokens > 200000 maximum")
    assert tags.step_tag(step, overflow) == "context_overflow"
    assert tags.step_tag(step) == "invalid_request"  # no message in the index
    assert tags.step_tag(StepRecord("s", 2, "http", "GET", "http://x/", 0.0, "v1:0", (), "0" * 64,
                                    error="Connection killed.")) == "network_error"
    assert tags.step_tag(StepRecord("s", 3, "llm", "POST", "http://x/", 0.0, "v1:0", (), "0" * 64,
                                    status=200, finish_reason="refusal")) == "content_filter"
