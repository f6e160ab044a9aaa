"""Tests of rewind.canon.conversation: the turns a model saw, from each provider's request."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewind.canon import conversation as conversation_module
from rewind.canon.conversation import Message, conversation
from rewind.canon.meaning import ToolCall
from rewind.canon.providers import Provider

OPENAI, ANTHROPIC, GEMINI = Provider.OPENAI, Provider.ANTHROPIC, Provider.GEMINI
CHAT = "/v1/chat/completions"
RESPONSES = "/v1/responses"
MESSAGES = "/v1/messages"
GENERATE = "/v1beta/models/gemini-2.0-flash:generateContent"


def read(provider: Provider | None, path: str, body: Any) -> list[Message]:
    return conversation(provider, path, json.dumps(body).encode())


def test_public_api() -> None:
    assert sorted(conversation_module.__all__) == ["Message", "conversation"]


def test_message_to_json() -> None:
    message = Message("assistant", "", (ToolCall("f", {"a": 1}),))
    assert message.to_json() == {
        "role": "assistant",
        "text": "",
        "tool_calls": [{"name": "f", "arguments": {"a": 1}, "arguments_valid": True}],
        "tool_call_id": None,
        "name": None,
    }
    assert Message("tool", "42", tool_call_id="c", name="f").to_json()["name"] == "f"


# --- OpenAI chat ------------------------------------------------------------------------------


def test_openai_chat_messages() -> None:
    body = {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Use tools."}]},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                    {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "look", "arguments": '{"a":1}'},
                    },
                    {"id": "call_2", "type": "function", "function": {"name": "bad", "arguments": "{oops"}},
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "a cat"},
            {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "error"}]},
            {"role": "assistant", "content": "A cat."},
        ],
    }
    assert read(OPENAI, CHAT, body) == [
        Message("system", "Be brief."),
        Message("system", "Use tools."),
        Message("user", "What is this?\n[image]\n[audio]"),
        Message("assistant", "", (ToolCall("look", {"a": 1}), ToolCall("bad", "{oops", False))),
        Message("tool", "a cat", tool_call_id="call_1", name="look"),
        Message("tool", "error", tool_call_id="call_2", name="bad"),
        Message("assistant", "A cat."),
    ]


def test_openai_legacy_function_messages_and_prompt() -> None:
    body = {
        "messages": [
            {"role": "assistant", "content": None, "function_call": {"name": "f", "arguments": "{}"}},
            {"role": "function", "name": "f", "content": "done"},
        ]
    }
    assert read(OPENAI, CHAT, body) == [
        Message("assistant", "", (ToolCall("f", {}),)),
        Message("tool", "done", name="f"),
    ]
    assert read(OPENAI, "/v1/completions", {"model": "x", "prompt": "Once"}) == [Message("user", "Once")]


def test_openai_unknown_roles_and_items_are_skipped() -> None:
    body = {"messages": [{"role": "narrator", "content": "x"}, 5, {"role": "user", "content": "hi"}]}
    assert read(OPENAI, CHAT, body) == [Message("user", "hi")]


# --- OpenAI Responses ---------------------------------------------------------------------------


def test_responses_input_string_and_instructions() -> None:
    body = {"model": "gpt-4.1", "instructions": "Be brief.", "input": "Hi"}
    assert read(OPENAI, RESPONSES, body) == [Message("system", "Be brief."), Message("user", "Hi")]


def test_responses_input_items() -> None:
    body = {
        "model": "gpt-4.1",
        "input": [
            {"role": "developer", "content": "Rules."},
            {
                "type": "message",
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "Weather?"},
                    {"type": "input_image", "image_url": "https://x/y.png"},
                    {"type": "input_file", "file_id": "file-1"},
                ],
            },
            {"type": "reasoning", "id": "rs_1", "summary": []},
            {
                "type": "function_call",
                "call_id": "call_1",
                "name": "weather",
                "arguments": '{"city":"Paris"}',
            },
            {"type": "function_call_output", "call_id": "call_1", "output": '{"temp": 20}'},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "20C"}]},
            {"type": "item_reference", "id": "msg_0"},
        ],
    }
    assert read(OPENAI, RESPONSES, body) == [
        Message("system", "Rules."),
        Message("user", "Weather?\n[image]\n[file]"),
        Message("assistant", "", (ToolCall("weather", {"city": "Paris"}),)),
        Message("tool", '{"temp": 20}', tool_call_id="call_1", name="weather"),
        Message("assistant", "20C"),
    ]


def test_responses_recognised_by_shape_without_the_path() -> None:
    assert read(OPENAI, "/proxy", {"input": "Hi"}) == [Message("user", "Hi")]


# --- Anthropic ------------------------------------------------------------------------------------


def test_anthropic_messages() -> None:
    body = {
        "model": "claude",
        "max_tokens": 10,
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Look:"},
                    {"type": "image", "source": {"type": "base64", "data": "AAAA"}},
                    {"type": "document", "source": {"type": "text", "data": "x"}},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "s"},
                    {"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Paris"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "20C"},
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_9",
                        "content": [{"type": "text", "text": "?"}],
                    },
                    {"type": "text", "text": "Thanks"},
                ],
            },
            {"role": "assistant", "content": "You're welcome."},
        ],
    }
    assert read(ANTHROPIC, MESSAGES, body) == [
        Message("system", "Be brief."),
        Message("user", "Look:\n[image]\n[document]"),
        Message("assistant", "Checking.", (ToolCall("weather", {"city": "Paris"}),)),
        Message("tool", "20C", tool_call_id="toolu_1", name="weather"),
        Message("tool", "?", tool_call_id="toolu_9"),
        Message("user", "Thanks"),
        Message("assistant", "You're welcome."),
    ]


def test_anthropic_text_before_a_tool_result_stays_before_it() -> None:
    body = {
        "system": "Sys",
        "messages": [
            {
                "role": "user",
                "content": [{"type": "text", "text": "a"}, {"type": "tool_result", "content": "r"}],
            }
        ],
    }
    assert read(ANTHROPIC, MESSAGES, body) == [
        Message("system", "Sys"),
        Message("user", "a"),
        Message("tool", "r"),
    ]


# --- Gemini -----------------------------------------------------------------------------------------


def test_gemini_contents() -> None:
    body = {
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "contents": [
            {
                "role": "user",
                "parts": [
                    {"text": "Weather?"},
                    {"inlineData": {"mimeType": "image/png", "data": "AAAA"}},
                    {"fileData": {"mimeType": "application/pdf", "fileUri": "gs://x"}},
                ],
            },
            {
                "role": "model",
                "parts": [
                    {"text": "thinking", "thought": True},
                    {"functionCall": {"name": "weather", "args": {"city": "Paris"}}, "thoughtSignature": "s"},
                ],
            },
            {"role": "user", "parts": [{"functionResponse": {"name": "weather", "response": {"temp": 20}}}]},
            {"role": "model", "parts": [{"text": "20C"}]},
            {"parts": [{"text": "no role means user"}]},
        ],
    }
    assert read(GEMINI, GENERATE, body) == [
        Message("system", "Be brief."),
        Message("user", "Weather?\n[image]\n[file]"),
        Message("assistant", "", (ToolCall("weather", {"city": "Paris"}),)),
        Message("tool", '{"temp": 20}', name="weather"),
        Message("assistant", "20C"),
        Message("user", "no role means user"),
    ]


def test_gemini_snake_case_and_ids() -> None:
    body = {
        "system_instruction": {"parts": [{"text": "Sys"}]},
        "contents": [
            {"role": "model", "parts": [{"function_call": {"id": "c1", "name": "f", "args": {}}}]},
            {"role": "user", "parts": [{"function_response": {"id": "c1", "response": {"ok": True}}}]},
            {"role": "user", "parts": [{"inline_data": {"mime_type": "audio/wav", "data": "AA"}}]},
        ],
    }
    assert read(GEMINI, GENERATE, body) == [
        Message("system", "Sys"),
        Message("assistant", "", (ToolCall("f", {}),)),
        Message("tool", '{"ok": true}', tool_call_id="c1", name="f"),
        Message("user", "[audio]"),
    ]


# --- what is not a conversation -------------------------------------------------------------------


def test_no_provider_and_garbage_give_nothing() -> None:
    assert read(None, "/api", {"messages": [{"role": "user", "content": "hi"}]}) == []
    assert conversation(OPENAI, CHAT, b"\xff\xfe not json") == []
    assert conversation(ANTHROPIC, MESSAGES, b'{"messages": [') == []
    assert conversation(GEMINI, GENERATE, b"[1, 2]") == []
    assert conversation(OPENAI, CHAT, b"") == []
    assert conversation(OPENAI, CHAT, b"[" * 100_000) == []


WRONG_TYPES = [
    {"messages": "x"},
    {"messages": [{"role": "user", "content": 5}, {"role": "assistant", "tool_calls": "x"}]},
    {"messages": [{"role": "assistant", "tool_calls": [{"function": "x"}, {"function": {"arguments": 3}}]}]},
    {"input": [{"type": "function_call", "arguments": 3}, {"type": "message", "role": 1}], "instructions": 4},
    {"system": 5, "messages": [{"role": "user", "content": [{"type": "tool_result", "content": 3}, 1]}]},
    {"contents": [{"role": 3, "parts": "x"}, {"parts": [{"functionCall": "x"}, {"inlineData": 3}, {}]}]},
    {"systemInstruction": 7, "contents": {"a": 1}},
]


@pytest.mark.parametrize("body", WRONG_TYPES)
@pytest.mark.parametrize("provider", [OPENAI, ANTHROPIC, GEMINI])
def test_wrong_types_never_raise(body: Any, provider: Provider) -> None:
    for message in read(provider, CHAT, body):
        json.dumps(message.to_json())


_KEYS = st.sampled_from(
    ["messages", "role", "content", "type", "text", "tool_calls", "function", "arguments", "input", "output",
     "instructions", "system", "contents", "parts", "functionCall", "functionResponse", "args", "response",
     "name", "id", "tool_use_id", "call_id", "inlineData", "mimeType", "systemInstruction", "thought"]
)  # fmt: skip
_WORDS = ["user", "assistant", "model", "tool", "text", "tool_use", "tool_result", "function_call"]
_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=4) | st.sampled_from(_WORDS),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(
    value=_VALUES,
    provider=st.sampled_from([OPENAI, ANTHROPIC, GEMINI]),
    path=st.sampled_from([CHAT, RESPONSES]),
)
def test_random_shapes_never_raise(value: Any, provider: Provider, path: str) -> None:
    for message in read(provider, path, value):
        assert message.role in {"system", "user", "assistant", "tool"}


@settings(max_examples=100, deadline=None)
@given(body=st.binary(max_size=200), provider=st.sampled_from([None, OPENAI, ANTHROPIC, GEMINI]))
def test_random_bytes_never_raise(body: bytes, provider: Provider | None) -> None:
    conversation(provider, CHAT, body)
