"""Tests of rewind.canon.jsonnorm: the v1 normal form of JSON request bodies."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from rewind.canon import jsonnorm
from rewind.canon.jsonnorm import VOLATILE_KEYS, load_json, normalise_body, tool_name


def test_public_api() -> None:
    assert sorted(jsonnorm.__all__) == [
        "ITEM_ID_PREFIX",
        "TOOL_ID_PREFIX",
        "V2_VOLATILE_KEYS",
        "VOLATILE_KEYS",
        "load_json",
        "normalise_body",
    ]


def test_load_json_is_strict() -> None:
    assert load_json(b'{"a": [1, 2.5]}') == {"a": [1, 2.5]}
    for bad in (b"NaN", b'{"t": Infinity}', b"\xff", b"{", b""):
        with pytest.raises(ValueError):
            load_json(bad)


def test_volatile_top_level_keys_are_dropped() -> None:
    body = {k: "x" for k in VOLATILE_KEYS} | {"model": "m", "stream": True}
    assert normalise_body(body) == {"model": "m", "stream": True}
    assert VOLATILE_KEYS >= {"user", "metadata", "stream_options", "request_id", "idempotency_key"}


def test_nested_volatile_looking_keys_stay() -> None:
    body = {"messages": [{"role": "user", "content": "hi", "metadata": {"a": 1}}]}
    assert normalise_body(body) == body


def test_non_objects_are_returned_as_they_are() -> None:
    assert normalise_body([{"user": 1}]) == [{"user": 1}]
    assert normalise_body("x") == "x"


def test_input_is_not_modified() -> None:
    body = _openai_tool_conversation("call_a", "call_b")
    before = copy.deepcopy(body)
    normalise_body(body)
    assert body == before


def _openai_tool_conversation(first: str, second: str) -> dict[str, Any]:
    calls = [
        {"id": first, "type": "function", "function": {"name": "f", "arguments": "{}"}},
        {"id": second, "type": "function", "function": {"name": "g", "arguments": "{}"}},
    ]
    return {
        "messages": [
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": None, "tool_calls": calls},
            {"role": "tool", "tool_call_id": second, "content": "g done"},
            {"role": "tool", "tool_call_id": first, "content": "f done"},
        ]
    }


def test_openai_tool_call_ids_are_numbered_by_first_appearance() -> None:
    messages = normalise_body(_openai_tool_conversation("call_zz", "call_aa"))["messages"]
    assert [c["id"] for c in messages[1]["tool_calls"]] == ["tool_call_1", "tool_call_2"]
    assert [m["tool_call_id"] for m in messages[2:]] == ["tool_call_2", "tool_call_1"]


def test_anthropic_tool_use_ids() -> None:
    body = {
        "messages": [
            {"role": "user", "content": "go"},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "calling"},
                    {"type": "tool_use", "id": "toolu_X", "name": "f", "input": {}},
                ],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_X"}]},
        ]
    }
    messages = normalise_body(body)["messages"]
    assert messages[1]["content"][1]["id"] == "tool_call_1"
    assert messages[2]["content"][0]["tool_use_id"] == "tool_call_1"
    assert messages[1]["content"][0] == {"type": "text", "text": "calling"}


def test_responses_api_call_ids() -> None:
    body = {
        "input": [
            {"role": "user", "content": "go"},
            {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "f"},
            {"type": "function_call_output", "call_id": "call_1", "output": "ok"},
        ]
    }
    items = normalise_body(body)["input"]
    assert items[1] == {
        "type": "function_call",
        "id": "tool_call_2",
        "call_id": "tool_call_1",
        "name": "f",
    }
    assert items[2]["call_id"] == "tool_call_1"


def test_gemini_function_call_ids() -> None:
    body = {
        "contents": [
            {"role": "model", "parts": [{"functionCall": {"id": "abc", "name": "f"}}]},
            {"role": "user", "parts": [{"functionResponse": {"id": "abc", "name": "f"}}]},
        ]
    }
    contents = normalise_body(body)["contents"]
    assert contents[0]["parts"][0]["functionCall"]["id"] == "tool_call_1"
    assert contents[1]["parts"][0]["functionResponse"]["id"] == "tool_call_1"


def test_non_string_ids_are_left_alone() -> None:
    body = {"messages": [{"role": "tool", "tool_call_id": 7}, "odd", {"tool_calls": "x"}]}
    assert normalise_body(body) == body


@pytest.mark.parametrize(
    ("tool", "name"),
    [
        ({"type": "function", "function": {"name": "a"}}, "a"),
        ({"type": "function", "name": "b"}, "b"),
        ({"name": "c", "input_schema": {}}, "c"),
        ({"type": "web_search"}, ""),
        ("not a tool", ""),
    ],
)
def test_tool_name_shapes(tool: Any, name: str) -> None:
    assert tool_name(tool) == name


def test_tools_sorted_by_name_then_content() -> None:
    tools = [{"name": "b"}, {"type": "web_search"}, {"name": "a", "x": 2}, {"name": "a", "x": 1}]
    assert normalise_body({"tools": tools})["tools"] == [
        {"type": "web_search"},
        {"name": "a", "x": 1},
        {"name": "a", "x": 2},
        {"name": "b"},
    ]


def test_gemini_function_declarations_sorted() -> None:
    tools = [{"functionDeclarations": [{"name": "z"}, {"name": "a"}]}, {"googleSearch": {}}]
    assert normalise_body({"tools": tools})["tools"] == [
        {"functionDeclarations": [{"name": "a"}, {"name": "z"}]},
        {"googleSearch": {}},
    ]


def test_legacy_functions_sorted() -> None:
    body = {"functions": [{"name": "b"}, {"name": "a"}]}
    assert normalise_body(body) == {"functions": [{"name": "a"}, {"name": "b"}]}
