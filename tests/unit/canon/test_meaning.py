"""Tests of rewind.canon.meaning: what a response says, from every provider's wire shape.

Streamed and JSON answers come from the fake provider's own formats, so these tests read
exactly what the fakes send; the shapes the fakes do not produce (the Responses API,
thinking, refusals, stream errors) are written out as the real providers send them.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewind.canon import meaning as meaning_module
from rewind.canon.meaning import Meaning, ToolCall, response_meaning
from rewind.canon.providers import Provider
from rewind.testing import fake_anthropic, fake_gemini, fake_openai
from rewind.testing.fake_common import (
    ChatFormat,
    FakeContext,
    FakeRequest,
    JsonReply,
    StreamReply,
    serve_chat,
    sse_data,
    sse_event,
)

OPENAI, ANTHROPIC, GEMINI = Provider.OPENAI, Provider.ANTHROPIC, Provider.GEMINI
SSE = "text/event-stream"
JSON = "application/json"
WEATHER = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
}
GEMINI_PATH = "/v1beta/models/gemini-2.0-flash:generateContent"
GEMINI_STREAM = "/v1beta/models/gemini-2.0-flash:streamGenerateContent"


# --- answers from the fake provider -------------------------------------------------------


def _request_body(provider: Provider, text: str, tools: bool) -> dict[str, Any]:
    if provider == GEMINI:
        body: dict[str, Any] = {"contents": [{"role": "user", "parts": [{"text": text}]}]}
        if tools:
            body["tools"] = [{"functionDeclarations": [{"name": "get_weather", "parameters": WEATHER}]}]
        return body
    body = {"model": "test-model", "messages": [{"role": "user", "content": text}], "max_tokens": 64}
    if tools and provider == OPENAI:
        body["tools"] = [{"type": "function", "function": {"name": "get_weather", "parameters": WEATHER}}]
    elif tools:
        body["tools"] = [{"name": "get_weather", "input_schema": WEATHER}]
    return body


def _fake(provider: Provider) -> tuple[ChatFormat, dict[str, str]]:
    if provider == OPENAI:
        return fake_openai.OpenAIChat(), {"authorization": "Bearer sk-test"}
    if provider == ANTHROPIC:
        return fake_anthropic.AnthropicMessages(), {"x-api-key": "sk-ant-test"}
    return fake_gemini.GeminiGenerate(), {"x-goog-api-key": "gemini-test"}


def fake_answer(
    provider: Provider,
    text: str = "Hello there",
    *,
    tools: bool = False,
    stream: bool = False,
    sse: bool = True,
) -> tuple[int, str, bytes]:
    """(status, content type, body) of the fake provider's answer to one user turn."""
    path = {OPENAI: "/v1/chat/completions", ANTHROPIC: "/v1/messages"}.get(
        provider, GEMINI_STREAM if stream else GEMINI_PATH
    )
    body = _request_body(provider, text, tools)
    if stream and provider != GEMINI:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    fmt, headers = _fake(provider)
    request = FakeRequest("POST", path, "alt=sse" if sse else "", headers, json.dumps(body).encode())
    return _wire(serve_chat(fmt, request, FakeContext()))


def _wire(reply: Any) -> tuple[int, str, bytes]:
    if isinstance(reply, StreamReply):
        return 200, reply.content_type, b"".join(reply.events)
    assert isinstance(reply, JsonReply)
    return reply.status, JSON, json.dumps(reply.payload).encode()


def read(provider: Provider | None, answer: tuple[int, str, bytes]) -> Meaning:
    status, content_type, body = answer
    return response_meaning(provider, status, content_type, body)


def sse(*events: Any, named: bool = False) -> bytes:
    """An SSE body of JSON objects (named by their ``type`` when ``named``) or raw strings."""
    out = b""
    for event in events:
        if isinstance(event, str):
            out += f"data: {event}\n\n".encode()
        elif named:
            out += sse_event(event["type"], event)
        else:
            out += sse_data(event)
    return out


def as_json(value: Any) -> bytes:
    return json.dumps(value).encode()


# --- the public API -------------------------------------------------------------------------


def test_public_api() -> None:
    assert sorted(meaning_module.__all__) == [
        "DIGEST_PREFIX", "MAX_PARSED_BYTES", "Meaning", "ToolCall", "response_meaning"]


def test_digest_is_versioned_sha256() -> None:
    digest = read(OPENAI, fake_answer(OPENAI)).digest()
    assert re.fullmatch(r"m1:[0-9a-f]{64}", digest)


def test_to_json_has_every_field() -> None:
    meaning = read(OPENAI, fake_answer(OPENAI, "Weather in Paris?", tools=True))
    assert meaning.to_json() == {
        "kind": "llm",
        "status": 200,
        "text": "",
        "tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}, "arguments_valid": True}],
        "finish_reason": "tool_calls",
        "error_type": None,
        "error_message": None,
        "refusal": None,
        "reasoning": "",
        "body": None,
    }
    json.dumps(meaning.to_json())


def test_compared_fields_are_the_contract() -> None:
    meaning = Meaning("llm", 200, "hi", (ToolCall("t", {"a": 1}),), "stop", None, "msg", None, "think")
    assert meaning.compared() == {
        "kind": "llm",
        "status": 200,
        "text": "hi",
        "tool_calls": [{"name": "t", "arguments": {"a": 1}}],
        "finish_reason": "stop",
        "error_type": None,
        "refusal": None,
        "body": None,
    }


# --- the fake provider's answers, JSON and streamed -----------------------------------------

TEXT = "This is a fake answer to: Hello there"


@pytest.mark.parametrize(
    ("provider", "finish"), [(OPENAI, "stop"), (ANTHROPIC, "end_turn"), (GEMINI, "STOP")]
)
def test_text_answers_json_and_streamed_mean_the_same(provider: Provider, finish: str) -> None:
    whole = read(provider, fake_answer(provider))
    streamed = read(provider, fake_answer(provider, stream=True))
    assert whole.kind == streamed.kind == "llm"
    assert whole.text == streamed.text == TEXT
    assert whole.finish_reason == streamed.finish_reason == finish
    assert whole.tool_calls == streamed.tool_calls == ()
    assert whole.digest() == streamed.digest()


@pytest.mark.parametrize(
    ("provider", "finish"), [(OPENAI, "tool_calls"), (ANTHROPIC, "tool_use"), (GEMINI, "STOP")]
)
def test_tool_calls_json_and_streamed_mean_the_same(provider: Provider, finish: str) -> None:
    whole = read(provider, fake_answer(provider, "What's the weather in Paris?", tools=True))
    streamed = read(provider, fake_answer(provider, "What's the weather in Paris?", tools=True, stream=True))
    expected = (ToolCall("get_weather", {"city": "Paris"}, True),)
    assert whole.tool_calls == streamed.tool_calls == expected
    assert whole.finish_reason == streamed.finish_reason == finish
    assert whole.text == streamed.text == ""
    assert whole.digest() == streamed.digest()


def test_gemini_json_array_stream_reads_like_sse() -> None:
    array = fake_answer(GEMINI, stream=True, sse=False)
    assert array[1].startswith("application/json")
    assert read(GEMINI, array).digest() == read(GEMINI, fake_answer(GEMINI, stream=True)).digest()
    assert read(GEMINI, array).text == TEXT


@pytest.mark.parametrize("provider", [OPENAI, ANTHROPIC, GEMINI])
@pytest.mark.parametrize("stream", [False, True])
def test_fresh_ids_and_usage_do_not_change_the_digest(provider: Provider, stream: bool) -> None:
    first, second = (fake_answer(provider, stream=stream, tools=True) for _ in "ab")
    assert first[2] != second[2]  # the fakes' ids are random
    assert read(provider, first).digest() == read(provider, second).digest()


def test_different_text_changes_the_digest() -> None:
    for provider in (OPENAI, ANTHROPIC, GEMINI):
        one = read(provider, fake_answer(provider, "Hello there"))
        two = read(provider, fake_answer(provider, "Hello you"))
        assert one.digest() != two.digest()


def test_memoryview_bodies_read_like_bytes() -> None:
    for stream in (False, True):
        status, content_type, body = fake_answer(ANTHROPIC, stream=stream)
        view = response_meaning(ANTHROPIC, status, content_type, memoryview(body))
        assert view == response_meaning(ANTHROPIC, status, content_type, body)


def test_stream_without_content_type_is_recognised() -> None:
    _, _, body = fake_answer(OPENAI, stream=True)
    assert response_meaning(OPENAI, 200, None, body).text == TEXT


# --- OpenAI chat completions ----------------------------------------------------------------


def completion(content: Any = "Hi", **extra: Any) -> dict[str, Any]:
    message = {"role": "assistant", "content": content, "refusal": None, **extra}
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-2024-08-06",
        "system_fingerprint": "fp_1",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
    }


def tool_completion(arguments: str, name: str = "f") -> dict[str, Any]:
    call = {"id": "call_1", "type": "function", "function": {"name": name, "arguments": arguments}}
    return completion(None, tool_calls=[call])


def test_openai_volatile_fields_are_ignored() -> None:
    one = completion()
    two = {
        **completion(),
        "id": "chatcmpl-2",
        "created": 99,
        "system_fingerprint": "fp_2",
        "model": "gpt-4o-2024-11-20",
        "usage": {"prompt_tokens": 50, "completion_tokens": 10, "total_tokens": 60},
    }
    digests = {response_meaning(OPENAI, 200, JSON, as_json(b)).digest() for b in (one, two)}
    assert len(digests) == 1


def test_tool_arguments_are_compared_parsed() -> None:
    def digest(arguments: str) -> str:
        return response_meaning(OPENAI, 200, JSON, as_json(tool_completion(arguments))).digest()

    assert digest('{"a":1,"b":2}') == digest('{"b": 2, "a": 1}')
    assert digest('{"a":1,"b":2}') != digest('{"a":1,"b":3}')


def test_tool_name_changes_the_digest() -> None:
    one = response_meaning(OPENAI, 200, JSON, as_json(tool_completion("{}", "f")))
    two = response_meaning(OPENAI, 200, JSON, as_json(tool_completion("{}", "g")))
    assert one.digest() != two.digest()


def test_invalid_tool_arguments_are_kept_as_text() -> None:
    meaning = response_meaning(OPENAI, 200, JSON, as_json(tool_completion('{"city": "Par')))
    assert meaning.tool_calls == (ToolCall("f", '{"city": "Par', False),)
    other = response_meaning(OPENAI, 200, JSON, as_json(tool_completion('{"city": "Rom')))
    assert meaning.digest() != other.digest()


def test_arguments_rfc8785_cannot_represent_are_kept_as_text() -> None:
    meaning = response_meaning(OPENAI, 200, JSON, as_json(tool_completion('{"n": 123456789012345678901}')))
    assert meaning.tool_calls[0].arguments_valid is False
    assert meaning.tool_calls[0].arguments == '{"n": 123456789012345678901}'
    assert meaning.digest().startswith("m1:")


def test_openai_stream_merges_parallel_tool_calls_by_index() -> None:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"id": "c", "object": "chat.completion.chunk", "choices": [
            {"index": 0, "delta": delta, "finish_reason": finish}
        ]}  # fmt: skip

    def call(index: int, arguments: str, name: str | None = None) -> dict[str, Any]:
        function = {"arguments": arguments, **({"name": name} if name else {})}
        return {"tool_calls": [{"index": index, "function": function}]}

    body = sse(
        chunk({"role": "assistant", "content": None}),
        chunk(call(0, "", "a")),
        chunk(call(1, "", "b")),
        chunk(call(0, '{"x":')),
        chunk(call(1, '{"y":2}')),
        chunk(call(0, "1}")),
        chunk({}, "tool_calls"),
        "[DONE]",
    )
    meaning = response_meaning(OPENAI, 200, SSE, body)
    assert meaning.tool_calls == (ToolCall("a", {"x": 1}), ToolCall("b", {"y": 2}))
    assert meaning.finish_reason == "tool_calls"


def test_openai_refusal_and_reasoning() -> None:
    body = completion(None, refusal="I can't help with that.", reasoning_content="Thinking...")
    meaning = response_meaning(OPENAI, 200, JSON, as_json(body))
    assert meaning.refusal == "I can't help with that."
    assert meaning.reasoning == "Thinking..."
    streamed = sse({"choices": [{"index": 0, "delta": {"refusal": "I can't"}}]}, {
        "choices": [{"index": 0, "delta": {"refusal": " help."}, "finish_reason": "stop"}]
    })  # fmt: skip
    assert response_meaning(OPENAI, 200, SSE, streamed).refusal == "I can't help."


def test_reasoning_is_not_compared() -> None:
    one = response_meaning(OPENAI, 200, JSON, as_json(completion("Hi", reasoning_content="a")))
    two = response_meaning(OPENAI, 200, JSON, as_json(completion("Hi", reasoning_content="b")))
    assert one.reasoning != two.reasoning and one.digest() == two.digest()


def test_openai_content_parts_and_other_choices() -> None:
    body = completion([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}])
    body["choices"].append({"index": 1, "message": {"content": "other"}, "finish_reason": "length"})
    meaning = response_meaning(OPENAI, 200, JSON, as_json(body))
    assert (meaning.text, meaning.finish_reason) == ("ab", "stop")


def test_openai_legacy_function_call_and_completions() -> None:
    body = completion(None, function_call={"name": "f", "arguments": '{"a": 1}'})
    assert response_meaning(OPENAI, 200, JSON, as_json(body)).tool_calls == (ToolCall("f", {"a": 1}),)
    legacy = {"object": "text_completion", "choices": [{"index": 0, "text": "done", "finish_reason": "stop"}]}
    assert response_meaning(OPENAI, 200, JSON, as_json(legacy)).text == "done"


def test_openai_finish_reasons() -> None:
    for reason in ("length", "content_filter"):
        body = {
            **completion(),
            "choices": [{"index": 0, "message": {"content": "x"}, "finish_reason": reason}],
        }
        assert response_meaning(OPENAI, 200, JSON, as_json(body)).finish_reason == reason


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "status", "error_type"),
    [
        (OPENAI, 429, "rate_limit_exceeded"),
        (OPENAI, 400, "invalid_request_error"),
        (OPENAI, 500, "server_error"),
        (ANTHROPIC, 429, "rate_limit_error"),
        (ANTHROPIC, 529, "overloaded_error"),
        (GEMINI, 429, "RESOURCE_EXHAUSTED"),
        (GEMINI, 400, "INVALID_ARGUMENT"),
    ],
)
def test_error_bodies_from_the_fakes(provider: Provider, status: int, error_type: str) -> None:
    module: Any = {OPENAI: fake_openai, ANTHROPIC: fake_anthropic, GEMINI: fake_gemini}[provider]
    meaning = read(provider, _wire(module.error_reply(status, "Slow down")))
    assert (meaning.kind, meaning.status, meaning.error_type) == ("llm", status, error_type)
    assert meaning.error_message == "Slow down"


def test_fake_error_markers_read_as_errors() -> None:
    meaning = read(OPENAI, fake_answer(OPENAI, "Hi [[status:429]]"))
    assert (meaning.status, meaning.error_type) == (429, "rate_limit_exceeded")


def test_openai_context_length_error() -> None:
    error = {"message": "too long", "type": "invalid_request_error", "param": "messages", "code": None}
    body = {"error": {**error, "code": "context_length_exceeded"}}
    assert response_meaning(OPENAI, 400, JSON, as_json(body)).error_type == "context_length_exceeded"
    assert (
        response_meaning(OPENAI, 400, JSON, as_json({"error": error})).error_type == "invalid_request_error"
    )


def test_error_message_is_not_compared() -> None:
    def meaning(message: str) -> Meaning:
        return read(ANTHROPIC, _wire(fake_anthropic.error_reply(429, message)))

    assert meaning("a").digest() == meaning("b").digest()
    assert meaning("a").digest() != read(ANTHROPIC, _wire(fake_anthropic.error_reply(529, "a"))).digest()


def test_anthropic_stream_error_event() -> None:
    body = sse(
        {"type": "message_start", "message": {"type": "message", "content": [], "stop_reason": None}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hel"}},
        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
        named=True,
    )
    meaning = response_meaning(ANTHROPIC, 200, SSE, body)
    assert (meaning.text, meaning.error_type, meaning.error_message) == (
        "Hel",
        "overloaded_error",
        "Overloaded",
    )


def test_openai_and_gemini_stream_errors() -> None:
    openai = sse({"error": {"message": "boom", "type": "server_error", "code": None}})
    assert response_meaning(OPENAI, 200, SSE, openai).error_type == "server_error"
    gemini = sse({"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}})
    assert response_meaning(GEMINI, 200, SSE, gemini).error_type == "UNAVAILABLE"
    numeric = as_json({"error": {"code": 503, "message": "overloaded"}})
    assert response_meaning(GEMINI, 503, JSON, numeric).error_type == "503"


def test_gemini_array_form_error() -> None:
    body = as_json([{"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}}])
    assert response_meaning(GEMINI, 429, JSON, body).error_type == "RESOURCE_EXHAUSTED"


def test_transport_error_without_a_response() -> None:
    meaning = response_meaning(OPENAI, None, None, b"", error="timed out")
    assert (meaning.status, meaning.error_type, meaning.error_message) == (None, "transport", "timed out")
    other = response_meaning(OPENAI, None, None, b"", error="connection reset")
    assert meaning.digest() == other.digest()


def test_transport_error_after_part_of_a_stream() -> None:
    _, _, body = fake_answer(ANTHROPIC, stream=True)
    meaning = response_meaning(ANTHROPIC, 200, SSE, body[: len(body) // 2], error="connection reset")
    assert (meaning.kind, meaning.error_type, meaning.error_message) == (
        "llm",
        "transport",
        "connection reset",
    )
    assert TEXT.startswith(meaning.text)


# --- OpenAI Responses API -------------------------------------------------------------------


def response_object(status: str = "completed", **extra: Any) -> dict[str, Any]:
    return {
        "id": "resp_1",
        "object": "response",
        "created_at": 1,
        "status": status,
        "error": None,
        "incomplete_details": None,
        "model": "gpt-4.1",
        "output": [
            {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "Plan."}]},
            {
                "type": "message",
                "id": "msg_1",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": "Hello", "annotations": []}],
            },
            {
                "type": "function_call",
                "id": "fc_1",
                "call_id": "call_1",
                "name": "get_weather",
                "arguments": '{"city":"Paris"}',
                "status": "completed",
            },
        ],
        "usage": {"input_tokens": 5, "output_tokens": 3, "total_tokens": 8},
        **extra,
    }


def test_responses_json() -> None:
    meaning = response_meaning(OPENAI, 200, JSON, as_json(response_object()))
    assert (meaning.kind, meaning.text, meaning.finish_reason) == ("llm", "Hello", "completed")
    assert meaning.tool_calls == (ToolCall("get_weather", {"city": "Paris"}),)
    assert meaning.reasoning == "Plan."


def test_responses_incomplete_and_refusal() -> None:
    body = response_object("incomplete", incomplete_details={"reason": "max_output_tokens"})
    assert response_meaning(OPENAI, 200, JSON, as_json(body)).finish_reason == "max_output_tokens"
    refusal = response_object()
    refusal["output"] = [{"type": "message", "content": [{"type": "refusal", "refusal": "No."}]}]
    meaning = response_meaning(OPENAI, 200, JSON, as_json(refusal))
    assert (meaning.text, meaning.refusal) == ("", "No.")


def responses_stream(final: dict[str, Any] | None) -> bytes:
    """A Responses API stream: the text and a function call, as upstream sends them."""
    call = {
        "type": "function_call",
        "id": "fc_1",
        "call_id": "call_1",
        "name": "get_weather",
        "arguments": "",
    }
    message = {"type": "message", "id": "msg_1", "role": "assistant", "content": []}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": {**response_object("in_progress"), "output": []}},
        {"type": "response.output_item.added", "output_index": 0, "item": message},
        {"type": "response.output_text.delta", "output_index": 0, "content_index": 0, "delta": "Hel"},
        {"type": "response.output_text.delta", "output_index": 0, "content_index": 0, "delta": "lo"},
        {"type": "response.output_item.added", "output_index": 1, "item": call},
        {"type": "response.function_call_arguments.delta", "output_index": 1, "delta": '{"city":'},
        {"type": "response.function_call_arguments.delta", "output_index": 1, "delta": '"Paris"}'},
    ]
    if final is not None:
        events.append({"type": "response.completed", "response": final})
    return sse(*events, named=True)


def test_responses_stream_prefers_the_final_response() -> None:
    final = response_object()
    final["output"][1]["content"][0]["text"] = "Final text"
    meaning = response_meaning(OPENAI, 200, SSE, responses_stream(final))
    assert (meaning.text, meaning.finish_reason) == ("Final text", "completed")


def test_responses_stream_without_a_final_response_is_assembled() -> None:
    meaning = response_meaning(OPENAI, 200, SSE, responses_stream(None))
    assert meaning.text == "Hello"
    assert meaning.tool_calls == (ToolCall("get_weather", {"city": "Paris"}),)
    assert meaning.finish_reason is None


def test_responses_assembled_stream_matches_the_json_answer() -> None:
    body = response_object()
    streamed = response_meaning(OPENAI, 200, SSE, responses_stream(body))
    assembled = response_meaning(OPENAI, 200, SSE, responses_stream(None))
    whole = response_meaning(OPENAI, 200, JSON, as_json(body))
    assert streamed.digest() == whole.digest()
    assert (assembled.text, assembled.tool_calls) == (whole.text, whole.tool_calls)


def test_responses_stream_item_done_and_arguments_done() -> None:
    done = {"type": "function_call", "name": "f", "arguments": '{"b": 2, "a": 1}'}
    body = sse(
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": {"type": "function_call", "name": "f"},
        },
        {"type": "response.function_call_arguments.delta", "output_index": 0, "delta": '{"a"'},
        {"type": "response.function_call_arguments.done", "output_index": 0, "arguments": '{"a":1,"b":2}'},
        {
            "type": "response.output_item.added",
            "output_index": 1,
            "item": {"type": "function_call", "name": "g"},
        },
        {"type": "response.output_item.done", "output_index": 1, "item": {**done, "name": "g"}},
        {"type": "response.reasoning_summary_text.delta", "output_index": 2, "delta": "hmm"},
    )
    meaning = response_meaning(OPENAI, 200, SSE, body)
    assert meaning.tool_calls == (ToolCall("f", {"a": 1, "b": 2}), ToolCall("g", {"a": 1, "b": 2}))
    assert meaning.reasoning == "hmm"


def test_responses_failed_and_error_events() -> None:
    failed = response_object("failed", error={"code": "server_error", "message": "boom"}, output=[])
    body = sse({"type": "response.failed", "response": failed}, named=True)
    meaning = response_meaning(OPENAI, 200, SSE, body)
    assert (meaning.finish_reason, meaning.error_type, meaning.error_message) == (
        "failed",
        "server_error",
        "boom",
    )
    error = {
        "type": "error",
        "code": "rate_limit_exceeded",
        "message": "slow",
        "param": None,
        "sequence_number": 3,
    }
    meaning = response_meaning(OPENAI, 200, SSE, responses_stream(None) + sse(error, named=True))
    assert (meaning.text, meaning.error_type) == ("Hello", "rate_limit_exceeded")


# --- Anthropic ------------------------------------------------------------------------------


def anthropic_message(content: list[dict[str, Any]], stop: str = "end_turn", **extra: Any) -> bytes:
    return as_json({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude", "content": content,
        "stop_reason": stop, "stop_sequence": None, "usage": {"input_tokens": 1, "output_tokens": 1}, **extra,
    })  # fmt: skip


def test_anthropic_json_blocks() -> None:
    body = anthropic_message(
        [
            {"type": "thinking", "thinking": "Let me see.", "signature": "sig"},
            {"type": "text", "text": "Checking. "},
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
            {"type": "text", "text": "Done."},
        ],
        "tool_use",
    )
    meaning = response_meaning(ANTHROPIC, 200, JSON, body)
    assert (meaning.text, meaning.reasoning, meaning.finish_reason) == (
        "Checking. Done.",
        "Let me see.",
        "tool_use",
    )
    assert meaning.tool_calls == (ToolCall("get_weather", {"city": "Paris"}),)


def test_anthropic_ids_and_usage_do_not_count() -> None:
    one = anthropic_message([{"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": 1, "b": 2}}])
    two = anthropic_message(
        [{"type": "tool_use", "id": "toolu_2", "name": "f", "input": {"b": 2, "a": 1}}],
        id="msg_2",
        usage={"input_tokens": 9, "output_tokens": 9},
    )
    assert (
        response_meaning(ANTHROPIC, 200, JSON, one).digest()
        == response_meaning(ANTHROPIC, 200, JSON, two).digest()
    )


def test_anthropic_thinking_stream() -> None:
    body = sse(
        {"type": "message_start", "message": {"type": "message", "content": [], "stop_reason": None}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Hmm"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "x"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Hi"}},
        {"type": "content_block_stop", "index": 1},
        {"type": "message_delta", "delta": {"stop_reason": "max_tokens"}, "usage": {"output_tokens": 3}},
        {"type": "message_stop"},
        named=True,
    )
    meaning = response_meaning(ANTHROPIC, 200, SSE, body)
    assert (meaning.reasoning, meaning.text, meaning.finish_reason) == ("Hmm", "Hi", "max_tokens")


def test_anthropic_streamed_tool_without_argument_fragments_keeps_its_input() -> None:
    body = sse(
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "tool_use", "name": "f", "input": {}},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "input_json_delta", "partial_json": ""},
        },
        {"type": "message_delta", "delta": {"stop_reason": "tool_use"}},
    )
    assert response_meaning(ANTHROPIC, 200, SSE, body).tool_calls == (ToolCall("f", {}),)


# --- Gemini ---------------------------------------------------------------------------------


def gemini_chunk(parts: list[dict[str, Any]], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    return {"candidates": [candidate], "usageMetadata": {"promptTokenCount": 1}, "responseId": "r", **extra}


def test_gemini_thoughts_and_several_function_calls() -> None:
    body = sse(
        gemini_chunk([{"text": "Planning", "thought": True}]),
        gemini_chunk([{"text": "Sure. "}, {"functionCall": {"name": "a", "args": {"x": 1}}}]),
        gemini_chunk([{"functionCall": {"name": "b"}}], "STOP"),
    )
    meaning = response_meaning(GEMINI, 200, SSE, body)
    assert (meaning.text, meaning.reasoning, meaning.finish_reason) == ("Sure. ", "Planning", "STOP")
    assert meaning.tool_calls == (ToolCall("a", {"x": 1}), ToolCall("b", {}))


def test_gemini_last_finish_reason_and_block_reason() -> None:
    body = as_json(gemini_chunk([{"text": "x"}], "SAFETY"))
    assert response_meaning(GEMINI, 200, JSON, body).finish_reason == "SAFETY"
    blocked = as_json({"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {}})
    meaning = response_meaning(GEMINI, 200, JSON, blocked)
    assert (meaning.kind, meaning.finish_reason) == ("llm", "SAFETY")
    chunks = sse(gemini_chunk([{"text": "a"}]), gemini_chunk([{"text": "b"}], "MAX_TOKENS"))
    assert response_meaning(GEMINI, 200, SSE, chunks).finish_reason == "MAX_TOKENS"


def test_gemini_model_version_and_response_id_do_not_count() -> None:
    one = as_json(gemini_chunk([{"text": "x"}], "STOP", modelVersion="a", responseId="1"))
    two = as_json(gemini_chunk([{"text": "x"}], "STOP", modelVersion="b", responseId="2"))
    assert (
        response_meaning(GEMINI, 200, JSON, one).digest() == response_meaning(GEMINI, 200, JSON, two).digest()
    )


# --- plain HTTP and what is not understood ----------------------------------------------------


def test_plain_http_json_body_is_compared_whole() -> None:
    meaning = response_meaning(None, 200, JSON, b'{"b": 2, "a": [1, 2]}')
    assert (meaning.kind, meaning.status, meaning.body) == ("http", 200, {"b": 2, "a": [1, 2]})
    same = response_meaning(None, 200, JSON, b'{"a":[1,2],"b":2}')
    assert meaning.digest() == same.digest()
    assert meaning.digest() != response_meaning(None, 201, JSON, b'{"a":[1,2],"b":2}').digest()


def test_plain_http_non_json_and_empty_bodies() -> None:
    body = b"<html>hi</html>"
    meaning = response_meaning(None, 200, "text/html", body)
    assert meaning.body == {"sha256": hashlib.sha256(body).hexdigest()}
    assert response_meaning(None, 204, None, b"").body is None
    stream = response_meaning(None, 200, SSE, b"data: {}\n\n")
    assert stream.kind == "http" and set(stream.body) == {"sha256"}


def test_provider_response_of_an_unknown_shape_is_http() -> None:
    embeddings = {"object": "list", "data": [{"embedding": [0.1]}]}
    meaning = response_meaning(OPENAI, 200, JSON, as_json(embeddings))
    assert (meaning.kind, meaning.body) == ("http", embeddings)
    page = response_meaning(ANTHROPIC, 502, "text/html", b"<html>Bad gateway</html>")
    assert page.kind == "http" and page.status == 502 and "sha256" in page.body


def test_json_error_with_a_stream_content_type() -> None:
    body = as_json({"type": "error", "error": {"type": "overloaded_error", "message": "x"}})
    assert response_meaning(ANTHROPIC, 529, SSE, body).error_type == "overloaded_error"


def test_big_integers_in_a_plain_body_are_hashed() -> None:
    body = b'{"n": 123456789012345678901234}'
    assert response_meaning(None, 200, JSON, body).body == {"sha256": hashlib.sha256(body).hexdigest()}


def test_lone_surrogates_still_digest() -> None:
    body = as_json(completion("\ud800 broken"))
    meaning = response_meaning(OPENAI, 200, JSON, body)
    assert meaning.text == "\ud800 broken"
    assert meaning.digest() == response_meaning(OPENAI, 200, JSON, body).digest()


# --- garbage never raises -----------------------------------------------------------------------


GARBAGE = [
    b"",
    b"\xff\xfe\x00garbage",
    b'{"choices": [{"message": {"content": "trunc',
    b'data: {"choices": [{"delta": {"content": "a"}}]}\n\ndata: {"cho',
    b"data: \xff\xff\n\n",
    b'{"choices": "x", "candidates": 5, "content": {"a": 1}, "output": "no", "error": [1]}',
    b'{"choices": [{"message": {"content": 5, "tool_calls": {"x": 1}}, "delta": 3}]}',
    b'{"type": "message", "content": [{"type": "tool_use", "input": [1]}, 7], "stop_reason": 3}',
    b'{"candidates": [{"content": {"parts": [{"functionCall": "x"}, {"text": 4}]}}]}',
    b'data: {"type": "content_block_delta", "index": [1], "delta": {"type": "input_json_delta"}}\n\n',
    b'data: {"type": "response.output_text.delta", "output_index": [], "delta": 5}\n\n',
    b'data: {"type": "response.completed", "response": {"output": [{"type": "message", "content": 3}]}}\n\n',
    b"[" * 100_000,
    b"NaN",
]


@pytest.mark.parametrize("body", GARBAGE)
@pytest.mark.parametrize("provider", [None, OPENAI, ANTHROPIC, GEMINI])
@pytest.mark.parametrize("content_type", [None, JSON, SSE])
def test_garbage_never_raises(body: bytes, provider: Provider | None, content_type: str | None) -> None:
    meaning = response_meaning(provider, 200, content_type, body)
    assert meaning.digest().startswith("m1:")
    json.dumps(meaning.to_json())


def test_truncated_json_is_http_and_truncated_stream_is_partial() -> None:
    _, _, whole = fake_answer(OPENAI)
    cut = response_meaning(OPENAI, 200, JSON, whole[:-5])
    assert cut.kind == "http" and set(cut.body) == {"sha256"}
    _, _, stream = fake_answer(OPENAI, stream=True)
    partial = response_meaning(OPENAI, 200, SSE, stream[: len(stream) // 2])
    assert partial.kind == "llm" and TEXT.startswith(partial.text) and partial.finish_reason is None


@settings(max_examples=150, deadline=None)
@given(
    body=st.binary(max_size=300),
    provider=st.sampled_from([None, OPENAI, ANTHROPIC, GEMINI]),
    content_type=st.sampled_from([None, JSON, SSE]),
)
def test_random_bytes_never_raise(body: bytes, provider: Provider | None, content_type: str | None) -> None:
    response_meaning(provider, 200, content_type, body).digest()


_JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=5)
    | st.sampled_from(
        ["message", "text", "tool_use", "function_call", "response.completed", "content_block_delta"]
    ),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "choices",
                    "message",
                    "delta",
                    "content",
                    "tool_calls",
                    "function",
                    "arguments",
                    "type",
                    "index",
                    "candidates",
                    "parts",
                    "functionCall",
                    "args",
                    "output",
                    "response",
                    "error",
                    "text",
                    "input",
                    "item",
                    "output_index",
                    "name",
                    "stop_reason",
                    "finishReason",
                    "status",
                ]
            ),  # fmt: skip
            inner,
            max_size=4,
        )
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(value=_JSON_VALUES, provider=st.sampled_from([OPENAI, ANTHROPIC, GEMINI]), stream=st.booleans())
def test_random_json_shapes_never_raise(value: Any, provider: Provider, stream: bool) -> None:
    body = sse(value) if stream else as_json(value)
    meaning = response_meaning(provider, 200, SSE if stream else JSON, body)
    assert meaning.digest().startswith("m1:")


def test_a_json_body_too_big_to_parse_means_its_status_and_hash() -> None:
    import hashlib

    from rewind.canon.meaning import MAX_PARSED_BYTES

    body = b'{"pad": "' + b"x" * MAX_PARSED_BYTES + b'"}'
    meaning = response_meaning(None, 200, "application/json", body)
    assert meaning.body == {"sha256": hashlib.sha256(body).hexdigest()} and meaning.status == 200
