"""Tests of rewind.canon.providers: detection, model and usage from real wire shapes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewind.canon import providers
from rewind.canon.providers import (
    BASE_URL_ENV,
    PUBLIC_BASE_URLS,
    Provider,
    Usage,
    detect_provider,
    extract_model,
    extract_usage,
    is_llm_call,
)

OPENAI, ANTHROPIC, GEMINI = Provider.OPENAI, Provider.ANTHROPIC, Provider.GEMINI
SSE = "text/event-stream"


def sse(*events: Any, named: bool = False) -> bytes:
    """An SSE body: each event a JSON object (or a raw string), named by its type."""
    out = []
    for event in events:
        data = event if isinstance(event, str) else json.dumps(event)
        name = f"event: {event['type']}\n" if named and isinstance(event, dict) else ""
        out.append(f"{name}data: {data}\n\n")
    return "".join(out).encode()


def test_public_api() -> None:
    assert sorted(providers.__all__) == [
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


def test_provider_is_a_string_enum() -> None:
    assert Provider("anthropic") is ANTHROPIC
    assert OPENAI == "openai" and str(GEMINI) == "gemini"
    assert PUBLIC_BASE_URLS[OPENAI] == "https://api.openai.com/v1"
    assert BASE_URL_ENV[GEMINI] == "GOOGLE_GEMINI_BASE_URL"


# --- detection ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "path", "listener", "expected"),
    [
        ("api.openai.com", "/v1/models", None, OPENAI),
        ("API.Anthropic.com:443", "/v1/messages", None, ANTHROPIC),
        ("generativelanguage.googleapis.com", "/v1beta/models", None, GEMINI),
        ("127.0.0.1:8080", "/v1/chat/completions", None, OPENAI),
        ("127.0.0.1:8080", "/openai/v1/chat/completions?x=1", None, OPENAI),
        ("localhost", "/v1/responses", None, OPENAI),
        ("localhost", "/v1/responses/resp_1/cancel", None, OPENAI),
        ("localhost", "/v1/completions", None, OPENAI),
        ("localhost", "/v1/embeddings", None, OPENAI),
        ("localhost", "/v1/messages", None, ANTHROPIC),
        ("localhost", "/v1/messages/count_tokens", None, ANTHROPIC),
        ("[::1]:9000", "/v1beta/models/gemini-2.0-flash:generateContent", None, GEMINI),
        ("localhost", "/v1beta/models/g:streamGenerateContent?alt=sse", None, GEMINI),
        ("localhost", "/v1/messages", "openai", OPENAI),
        ("api.openai.com", "/v1/chat/completions", "gemini", GEMINI),
        ("localhost", "/v1/messages", "not-a-provider", ANTHROPIC),
        ("example.com", "/search", None, None),
        ("localhost", "/v1/messagesx", None, None),
    ],
)
def test_detect_provider(host: str, path: str, listener: str | None, expected: Any) -> None:
    assert detect_provider(host, path, listener) == expected


@pytest.mark.parametrize(
    ("provider", "path", "expected"),
    [
        (OPENAI, "/v1/chat/completions", True),
        (OPENAI, "/v1/responses", True),
        (OPENAI, "/v1/completions?x=1", True),
        (OPENAI, "/v1/embeddings", True),
        (OPENAI, "/v1/models", False),
        (OPENAI, "/v1/responses/resp_1", False),
        (ANTHROPIC, "/v1/messages", True),
        (ANTHROPIC, "/v1/messages/count_tokens", False),
        (GEMINI, "/v1beta/models/g:generateContent", True),
        (GEMINI, "/v1beta/models/g:streamGenerateContent?alt=sse", True),
        (GEMINI, "/v1beta/models/g:countTokens", False),
        (None, "/v1/chat/completions", False),
    ],
)
def test_is_llm_call(provider: Provider | None, path: str, expected: bool) -> None:
    assert is_llm_call(provider, path) is expected


# --- model -------------------------------------------------------------------------


def test_model_from_request_body() -> None:
    body = json.dumps({"model": "gpt-4o-mini", "messages": []}).encode()
    assert extract_model(OPENAI, "/v1/chat/completions", body, b"") == "gpt-4o-mini"
    assert extract_model(ANTHROPIC, "/v1/messages", b'{"model":"claude-x"}', b"") == "claude-x"


def test_gemini_model_from_path() -> None:
    path = "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse"
    assert extract_model(GEMINI, path, b"{}", b"") == "gemini-2.0-flash"


def test_model_falls_back_to_response() -> None:
    assert extract_model(OPENAI, "/x", b"not json", b'{"model":"gpt-4o-2024"}') == "gpt-4o-2024"
    gemini = b'[{"modelVersion":"gemini-2.0-flash-001"}]'
    assert extract_model(GEMINI, "/v1beta/cachedContents", b"", gemini) == "gemini-2.0-flash-001"
    start = {"type": "message_start", "message": {"model": "claude-3-5-haiku"}}
    assert extract_model(ANTHROPIC, "/v1/messages", b"", sse(start)) == "claude-3-5-haiku"


def test_model_unknown() -> None:
    assert extract_model(None, "/", b"", b"") is None
    assert extract_model(OPENAI, "/", b'{"model": 3}', b"\x00garbage") is None


# --- usage: OpenAI -----------------------------------------------------------------


def test_openai_chat_json() -> None:
    body = {
        "choices": [],
        "usage": {
            "prompt_tokens": 12,
            "completion_tokens": 5,
            "prompt_tokens_details": {"cached_tokens": 4},
        },
    }
    assert extract_usage(OPENAI, json.dumps(body).encode(), "application/json") == Usage(12, 5, 4)


def test_openai_stream_include_usage_chunk() -> None:
    body = sse(
        {"choices": [{"delta": {"content": "Hi"}}], "usage": None},
        {"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 2}},
        "[DONE]",
    )
    assert extract_usage(OPENAI, body, SSE) == Usage(9, 2, None, None)


def test_openai_stream_without_usage() -> None:
    body = sse({"choices": [{"delta": {"content": "Hi"}}]}, "[DONE]")
    assert extract_usage(OPENAI, body, SSE) == Usage()


def test_openai_responses_api_json_and_stream() -> None:
    usage = {"input_tokens": 30, "output_tokens": 7, "input_tokens_details": {"cached_tokens": 0}}
    body = json.dumps({"object": "response", "usage": usage}).encode()
    assert extract_usage(OPENAI, body, "application/json") == Usage(30, 7, 0)
    stream = sse(
        {"type": "response.created", "response": {"usage": None}},
        {"type": "response.output_text.delta", "delta": "x"},
        {"type": "response.completed", "response": {"usage": usage}},
        named=True,
    )
    assert extract_usage(OPENAI, stream, SSE) == Usage(30, 7, 0)


# --- usage: Anthropic --------------------------------------------------------------


def test_anthropic_json() -> None:
    usage = {
        "input_tokens": 20,
        "output_tokens": 8,
        "cache_read_input_tokens": 100,
        "cache_creation_input_tokens": 50,
    }
    body = json.dumps({"type": "message", "usage": usage}).encode()
    assert extract_usage(ANTHROPIC, body, "application/json") == Usage(20, 8, 100, 50)


def test_anthropic_stream_message_start_then_delta() -> None:
    start_usage = {"input_tokens": 25, "output_tokens": 1, "cache_read_input_tokens": 3}
    body = sse(
        {"type": "message_start", "message": {"id": "m", "usage": start_usage}},
        {"type": "content_block_delta", "delta": {"text": "hi"}},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 15}},
        {"type": "message_stop"},
        named=True,
    )
    assert extract_usage(ANTHROPIC, body, SSE) == Usage(25, 15, 3, None)


def test_anthropic_message_delta_input_tokens_override() -> None:
    body = sse(
        {"type": "message_start", "message": {"usage": {"input_tokens": 0, "output_tokens": 1}}},
        {"type": "message_delta", "usage": {"input_tokens": 40, "output_tokens": 6}},
        named=True,
    )
    assert extract_usage(ANTHROPIC, body, SSE) == Usage(40, 6)


def test_anthropic_error_body() -> None:
    body = b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'
    assert extract_usage(ANTHROPIC, body, "application/json") == Usage()


# --- usage: Gemini -----------------------------------------------------------------


def _gemini_chunk(prompt: int, candidates: int, cached: int | None = None) -> dict[str, Any]:
    meta = {"promptTokenCount": prompt, "candidatesTokenCount": candidates}
    if cached is not None:
        meta["cachedContentTokenCount"] = cached
    return {"candidates": [{"content": {"parts": [{"text": "x"}]}}], "usageMetadata": meta}


def test_gemini_json() -> None:
    body = json.dumps(_gemini_chunk(11, 3, 2)).encode()
    assert extract_usage(GEMINI, body, "application/json") == Usage(11, 3, 2)


def test_gemini_stream_last_usage_wins() -> None:
    body = sse(_gemini_chunk(11, 1), {"candidates": []}, _gemini_chunk(11, 9))
    assert extract_usage(GEMINI, body, SSE) == Usage(11, 9)


def test_gemini_streamed_json_array() -> None:
    body = json.dumps([_gemini_chunk(5, 1), _gemini_chunk(5, 4)], indent=1).encode()
    assert extract_usage(GEMINI, body, "application/json") == Usage(5, 4)


def test_sse_without_content_type_is_still_read() -> None:
    assert extract_usage(GEMINI, sse(_gemini_chunk(2, 2)), None) == Usage(2, 2)


# --- usage: never raises -----------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\x1f\x8b\x08garbled-gzip",
        b"null",
        b"[1, 2, 3]",
        b'{"usage": "lots"}',
        b'{"usage": {"prompt_tokens": -1, "completion_tokens": true}}',
        b'{"usageMetadata": [1]}',
        b"data: {not json}\n\ndata: [DONE]",
        b"[" * 100_000,
    ],
)
@pytest.mark.parametrize("provider", [OPENAI, ANTHROPIC, GEMINI, None])
def test_garbled_bodies_give_empty_usage(body: bytes, provider: Provider | None) -> None:
    assert extract_usage(provider, body, None) == Usage()
    assert extract_usage(provider, body, SSE) == Usage()


_JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(["usage", "message", "response", "usageMetadata", "prompt_tokens"]),
            inner,
            max_size=3,
        )
    ),
    max_leaves=12,
)


@settings(max_examples=75)
@given(value=_JSONISH, provider=st.sampled_from([OPENAI, ANTHROPIC, GEMINI]))
def test_odd_json_never_raises(value: Any, provider: Provider) -> None:
    body = json.dumps(value).encode()
    assert isinstance(extract_usage(provider, body, None), Usage)
    assert isinstance(extract_usage(provider, sse(value), SSE), Usage)
    model = extract_model(provider, "/models/x", body, body)
    assert model is None or isinstance(model, str)


@settings(max_examples=75)
@given(body=st.binary(max_size=300), provider=st.sampled_from([OPENAI, ANTHROPIC, GEMINI]))
def test_random_bytes_never_raise(body: bytes, provider: Provider) -> None:
    assert isinstance(extract_usage(provider, body, SSE), Usage)
    model = extract_model(provider, "/", body, body)
    assert model is None or isinstance(model, str)


def test_gemini_thinking_tokens_count_as_output() -> None:
    body = json.dumps(
        {"usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 7, "thoughtsTokenCount": 30}}
    ).encode()
    usage = extract_usage(Provider.GEMINI, body, "application/json")
    assert (usage.input_tokens, usage.output_tokens) == (5, 37)


def test_a_big_json_body_is_read_for_usage_without_parsing_it_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(providers, "BIG_BODY", 64)
    filler = "x" * 500 + ' \\"usage\\": {\\"prompt_tokens\\": 999}'  # quoted text, not a key
    body = json.dumps({"id": "c", "model": "gpt-4o", "choices": [{"message": {"content": filler}}],
                       "usage": {"prompt_tokens": 11, "completion_tokens": 7}}).encode()
    usage = providers.extract_usage(providers.Provider.OPENAI, body, "application/json")
    assert (usage.input_tokens, usage.output_tokens) == (11, 7)
    assert providers.extract_model(providers.Provider.OPENAI, "/v1/x", b"{}", body) == "gpt-4o"


def test_a_big_json_body_without_usage_has_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(providers, "BIG_BODY", 8)
    usage = providers.extract_usage(providers.Provider.OPENAI, b'{"choices": []}', "application/json")
    assert usage == providers.Usage()


def test_provider_named_reads_stored_names_and_nothing_else() -> None:
    assert providers.provider_named("anthropic") is ANTHROPIC
    assert providers.provider_named(None) is None and providers.provider_named("") is None
    assert providers.provider_named("mistral") is None
