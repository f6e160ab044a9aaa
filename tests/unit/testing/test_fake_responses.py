"""The fake provider's OpenAI Responses API: JSON and SSE shapes, stored responses, errors.

Requests go over HTTP to a real :class:`FakeProvider`; the answers are read back with
Rewind's own readers (``parse_sse``, ``response_meaning``, ``extract_usage``), which must
find the same text, tool calls and usage in the streamed form as in the JSON one.
"""

from __future__ import annotations

import http.client
import json
import re
from typing import Any

import pytest

from rewind.canon.meaning import response_meaning
from rewind.canon.providers import Provider, extract_usage
from rewind.canon.sse import parse_sse
from rewind.testing.fake_provider import FakeProvider
from rewind.testing.fake_responses import ResponseStore, conversation_of, handles, input_items

PATH = "/v1/responses"
KEY = {"Authorization": "Bearer sk-test-fake"}
WEATHER = "What's the weather in Paris?"
TOOLS = [
    {
        "type": "function",
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
]
HEX_ID = r"[0-9a-f]{48}"
SSE = "text/event-stream"
Response = tuple[int, dict[str, str], bytes]


def call(
    fake: FakeProvider, body: Any = None, method: str = "POST", path: str = PATH, **headers: str
) -> Response:
    """One request on a fresh connection: (status, lower-cased headers, body)."""
    connection = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=10)
    payload = None if body is None else json.dumps(body).encode()
    connection.request(method, path, payload, {**KEY, **headers})
    response = connection.getresponse()
    result = (response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    connection.close()
    return result


def create(fake: FakeProvider, **body: Any) -> dict[str, Any]:
    """A non-streamed ``POST /v1/responses`` that must succeed; its JSON."""
    status, _, raw = call(fake, {"model": "gpt-4.1", **body})
    assert status == 200, raw
    reply: dict[str, Any] = json.loads(raw)
    return reply


def stream(fake: FakeProvider, **body: Any) -> bytes:
    status, headers, raw = call(fake, {"model": "gpt-4.1", "stream": True, **body})
    assert status == 200 and headers["content-type"].startswith(SSE), raw
    return raw


def events(raw: bytes) -> list[tuple[str | None, dict[str, Any]]]:
    return [(e.event, json.loads(e.data)) for e in parse_sse(raw)]


def error_of(response: Response) -> tuple[int, dict[str, Any]]:
    status, _, raw = response
    error: dict[str, Any] = json.loads(raw)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return status, error


# --- JSON ---------------------------------------------------------------------------------


def test_text_answer_is_a_completed_response_with_a_message(fake_provider: FakeProvider) -> None:
    reply = create(fake_provider, input="Hi there", instructions="Be brief.")
    assert re.fullmatch("resp_" + HEX_ID, reply["id"])
    assert (reply["object"], reply["status"], reply["model"]) == ("response", "completed", "gpt-4.1")
    assert isinstance(reply["created_at"], int) and reply["instructions"] == "Be brief."
    assert reply["previous_response_id"] is None and reply["error"] is None
    [message] = reply["output"]
    assert re.fullmatch("msg_" + HEX_ID, message.pop("id"))
    text = {
        "type": "output_text",
        "annotations": [],
        "logprobs": [],
        "text": "This is a fake answer to: Hi there",
    }
    assert message == {"type": "message", "status": "completed", "content": [text], "role": "assistant"}


def test_usage_has_the_responses_shape(fake_provider: FakeProvider) -> None:
    usage = create(fake_provider, input="one two three")["usage"]
    assert set(usage) == {
        "input_tokens",
        "input_tokens_details",
        "output_tokens",
        "output_tokens_details",
        "total_tokens",
    }
    assert usage["input_tokens_details"] == {"cached_tokens": 0}
    assert usage["output_tokens_details"] == {"reasoning_tokens": 0}
    assert (
        usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"] and usage["input_tokens"] == 3
    )


def test_ids_are_random_per_response(fake_provider: FakeProvider) -> None:
    one, two = (create(fake_provider, input="Hi") for _ in "ab")
    assert one["id"] != two["id"] and one["output"][0]["id"] != two["output"][0]["id"]
    assert one["output"] != two["output"] and one["output"][0]["content"] == two["output"][0]["content"]


def test_offered_tool_is_called_with_a_function_call_item(fake_provider: FakeProvider) -> None:
    reply = create(fake_provider, input=WEATHER, tools=TOOLS)
    [item] = reply["output"]
    assert re.fullmatch("fc_" + HEX_ID, item.pop("id")) and re.fullmatch(r"call_\w{24}", item.pop("call_id"))
    assert item == {
        "type": "function_call",
        "status": "completed",
        "arguments": '{"city":"Paris"}',
        "name": "get_weather",
    }
    assert reply["tools"][0]["name"] == "get_weather" and reply["tools"][0]["strict"] is True


def test_tool_choice_none_answers_in_text(fake_provider: FakeProvider) -> None:
    reply = create(fake_provider, input=WEATHER, tools=TOOLS, tool_choice="none")
    assert [item["type"] for item in reply["output"]] == ["message"]


def test_reasoning_adds_a_reasoning_item_and_tokens(fake_provider: FakeProvider) -> None:
    reply = create(fake_provider, input="Think", reasoning={"effort": "low"})
    reasoning, message = reply["output"]
    assert re.fullmatch("rs_" + HEX_ID, reasoning.pop("id")) and reasoning == {
        "type": "reasoning",
        "summary": [],
    }
    assert message["type"] == "message" and reply["reasoning"] == {"effort": "low", "summary": None}
    assert reply["usage"]["output_tokens_details"]["reasoning_tokens"] > 0


def test_encrypted_reasoning_only_when_included(fake_provider: FakeProvider) -> None:
    include = ["reasoning.encrypted_content"]
    reply = create(fake_provider, input="Think", reasoning={"effort": "low"}, include=include, store=False)
    assert reply["output"][0]["encrypted_content"].startswith("gAAAAA") and reply["store"] is False


def test_message_items_in_either_shape(fake_provider: FakeProvider) -> None:
    parts = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi parts"}]}
    bare = {"role": "user", "content": "Hi bare"}
    for item, text in ((parts, "Hi parts"), (bare, "Hi bare")):
        reply = create(fake_provider, input=[{"role": "developer", "content": "Be brief."}, item])
        assert reply["output"][0]["content"][0]["text"] == f"This is a fake answer to: {text}"


def test_unprefixed_path_is_served_too(fake_provider: FakeProvider) -> None:
    status, _, raw = call(fake_provider, {"model": "m", "input": "Hi"}, path="/responses")
    assert status == 200 and json.loads(raw)["object"] == "response"


# --- SSE ----------------------------------------------------------------------------------

TEXT_EVENTS = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.delta",
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.completed",
]
TOOL_EVENTS = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.function_call_arguments.delta",
    "response.function_call_arguments.done",
    "response.output_item.done",
    "response.completed",
]


def _collapsed(names: list[str]) -> list[str]:
    return [n for i, n in enumerate(names) if i == 0 or n != names[i - 1]]


def test_stream_events_are_named_and_numbered(fake_provider: FakeProvider) -> None:
    parsed = events(stream(fake_provider, input="Tell me a story please"))
    assert all(name == data["type"] for name, data in parsed)
    assert [data["sequence_number"] for _, data in parsed] == list(range(len(parsed)))
    assert _collapsed([data["type"] for _, data in parsed]) == TEXT_EVENTS
    assert sum(data["type"] == "response.output_text.delta" for _, data in parsed) == 11  # one per word


def test_stream_deltas_add_up_to_the_completed_response(fake_provider: FakeProvider) -> None:
    parsed = [data for _, data in events(stream(fake_provider, input="Tell me a story"))]
    created, completed = parsed[0]["response"], parsed[-1]["response"]
    assert created["id"] == completed["id"] and (created["status"], created["output"]) == ("in_progress", [])
    text = "".join(d["delta"] for d in parsed if d["type"] == "response.output_text.delta")
    assert text == completed["output"][0]["content"][0]["text"] == "This is a fake answer to: Tell me a story"
    done = next(d for d in parsed if d["type"] == "response.output_item.done")
    assert done["item"] == completed["output"][0] and completed["usage"]["output_tokens"] > 0
    assert all(d["item_id"] == done["item"]["id"] for d in parsed if "item_id" in d)


def test_stream_of_a_tool_call(fake_provider: FakeProvider) -> None:
    parsed = [data for _, data in events(stream(fake_provider, input=WEATHER, tools=TOOLS))]
    assert _collapsed([d["type"] for d in parsed]) == TOOL_EVENTS
    added = next(d["item"] for d in parsed if d["type"] == "response.output_item.added")
    assert (added["status"], added["arguments"], added["name"]) == ("in_progress", "", "get_weather")
    arguments = "".join(d["delta"] for d in parsed if d["type"] == "response.function_call_arguments.delta")
    done = next(d for d in parsed if d["type"] == "response.function_call_arguments.done")
    assert (
        arguments
        == done["arguments"]
        == parsed[-1]["response"]["output"][0]["arguments"]
        == '{"city":"Paris"}'
    )


def test_obfuscation_can_be_turned_off(fake_provider: FakeProvider) -> None:
    on = events(stream(fake_provider, input="Hi"))
    off = events(stream(fake_provider, input="Hi", stream_options={"include_obfuscation": False}))
    assert any("obfuscation" in data for _, data in on) and not any("obfuscation" in data for _, data in off)


def test_stream_of_reasoning_hides_encrypted_content_until_done(fake_provider: FakeProvider) -> None:
    body = {"input": "Hi", "reasoning": {"effort": "low"}, "include": ["reasoning.encrypted_content"]}
    parsed = [data for _, data in events(stream(fake_provider, **body))]
    added, done = (
        d["item"] for d in parsed if d["type"].startswith("response.output_item.") and d["output_index"] == 0
    )
    assert added["type"] == "reasoning" and "encrypted_content" not in added and "encrypted_content" in done


@pytest.mark.parametrize("body", [{"input": "Tell me a story"}, {"input": WEATHER, "tools": TOOLS}])
def test_stream_and_json_mean_the_same(fake_provider: FakeProvider, body: dict[str, Any]) -> None:
    _, _, raw_json = call(fake_provider, {"model": "m", **body})
    raw_sse = stream(fake_provider, **body)
    as_json = response_meaning(Provider.OPENAI, 200, "application/json", raw_json)
    as_sse = response_meaning(Provider.OPENAI, 200, SSE, raw_sse)
    assert as_json.kind == "llm" and as_json.finish_reason == "completed"
    assert as_sse.compared() == as_json.compared() and as_sse.digest() == as_json.digest()
    assert as_json.text or as_json.tool_calls[0].arguments == {"city": "Paris"}


def test_usage_is_read_from_json_and_stream(fake_provider: FakeProvider) -> None:
    _, _, raw_json = call(fake_provider, {"model": "m", "input": "one two three"})
    raw_sse = stream(fake_provider, input="one two three")
    from_json = extract_usage(Provider.OPENAI, raw_json, "application/json")
    from_sse = extract_usage(Provider.OPENAI, raw_sse, SSE)
    assert from_json == from_sse and from_json.input_tokens == 3 and from_json.output_tokens


# --- stored responses ---------------------------------------------------------------------


def _round_trip(fake: FakeProvider, **extra: Any) -> dict[str, Any]:
    first = create(fake, input=WEATHER, tools=TOOLS, **extra)
    output = {
        "type": "function_call_output",
        "call_id": first["output"][-1]["call_id"],
        "output": '{"temp_c": 21}',
    }
    return create(fake, input=[output], tools=TOOLS, previous_response_id=first["id"], **extra)


def test_previous_response_is_the_prefix_of_the_conversation(fake_provider: FakeProvider) -> None:
    final = _round_trip(fake_provider)
    assert final["output"][0]["content"][0]["text"] == "According to the tool, temp_c: 21."
    assert final["previous_response_id"].startswith("resp_") and final["usage"]["input_tokens"] > 6


def test_stored_reasoning_items_are_part_of_the_prefix(fake_provider: FakeProvider) -> None:
    final = _round_trip(fake_provider, reasoning={"effort": "low"})
    assert final["output"][-1]["content"][0]["text"] == "According to the tool, temp_c: 21."


def test_unknown_previous_response_is_404(fake_provider: FakeProvider) -> None:
    body = {"model": "m", "input": "Hi", "previous_response_id": "resp_" + "0" * 48}
    status, error = error_of(call(fake_provider, body))
    assert (status, error["code"], error["param"]) == (
        404,
        "previous_response_not_found",
        "previous_response_id",
    )
    assert error["type"] == "invalid_request_error" and "resp_000" in error["message"]


def test_unstored_response_cannot_be_continued(fake_provider: FakeProvider) -> None:
    first = create(fake_provider, input="Hi", store=False)
    status, _ = error_of(
        call(fake_provider, {"model": "m", "input": "Again", "previous_response_id": first["id"]})
    )
    assert status == 404


def test_responses_are_remembered_per_fake_server(fake_provider: FakeProvider) -> None:
    first = create(fake_provider, input="Hi")
    with FakeProvider() as other:
        status, _ = error_of(call(other, {"model": "m", "input": "Hi", "previous_response_id": first["id"]}))
    assert status == 404


def test_tool_output_without_its_call_is_400(fake_provider: FakeProvider) -> None:
    orphan = {"type": "function_call_output", "call_id": "call_nowhere", "output": "21"}
    status, error = error_of(call(fake_provider, {"model": "m", "input": [orphan]}))
    assert status == 400 and "call_nowhere" in error["message"]


def test_tool_output_with_its_call_in_the_input(fake_provider: FakeProvider) -> None:
    user = {"role": "user", "content": WEATHER}
    fc = {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{}"}
    out = {"type": "function_call_output", "call_id": "call_1", "output": "sunny"}
    reply = create(fake_provider, input=[user, fc, out], tools=TOOLS)
    assert reply["output"][0]["content"][0]["text"] == "According to the tool, sunny."


def test_item_reference_resolves_to_a_stored_item(fake_provider: FakeProvider) -> None:
    first = create(fake_provider, input=WEATHER, tools=TOOLS)
    call_item = first["output"][0]
    out = {"type": "function_call_output", "call_id": call_item["call_id"], "output": "sunny"}
    reply = create(fake_provider, input=[{"type": "item_reference", "id": call_item["id"]}, out])
    assert reply["output"][0]["content"][0]["text"] == "According to the tool, sunny."


def test_get_and_delete_a_stored_response(fake_provider: FakeProvider) -> None:
    first = create(fake_provider, input="Hi")
    status, _, raw = call(fake_provider, method="GET", path=f"{PATH}/{first['id']}")
    assert status == 200 and json.loads(raw) == first
    status, _, raw = call(fake_provider, method="DELETE", path=f"{PATH}/{first['id']}")
    assert status == 200 and json.loads(raw) == {
        "id": first["id"],
        "object": "response.deleted",
        "deleted": True,
    }
    assert error_of(call(fake_provider, method="GET", path=f"{PATH}/{first['id']}"))[0] == 404


def test_streamed_responses_are_stored_too(fake_provider: FakeProvider) -> None:
    completed = events(stream(fake_provider, input="Hi"))[-1][1]["response"]
    status, _, raw = call(fake_provider, method="GET", path=f"{PATH}/{completed['id']}")
    assert status == 200 and json.loads(raw) == completed


# --- errors and markers -------------------------------------------------------------------


def test_missing_key_is_401(fake_provider: FakeProvider) -> None:
    status, error = error_of(call(fake_provider, {"model": "m", "input": "Hi"}, Authorization=""))
    assert status == 401 and "API key" in error["message"]


@pytest.mark.parametrize(
    ("body", "message"),
    [({"input": "Hi"}, "'model'"), ({"model": "m"}, "'input'"), ({"model": "m", "input": 3}, "'input'")],
)
def test_invalid_requests_are_400(fake_provider: FakeProvider, body: dict[str, Any], message: str) -> None:
    status, error = error_of(call(fake_provider, body))
    assert status == 400 and message in error["message"]


def test_status_marker_answers_an_openai_error(fake_provider: FakeProvider) -> None:
    status, error = error_of(call(fake_provider, {"model": "m", "input": "Hi [[status:429]]"}))
    assert (status, error["type"], error["code"]) == (429, "requests", "rate_limit_exceeded")


def test_status_marker_in_a_streamed_request(fake_provider: FakeProvider) -> None:
    status, _ = error_of(call(fake_provider, {"model": "m", "input": "Hi [[status:500]]", "stream": True}))
    assert status == 500


def test_vary_marker_names_the_instructions_and_tools(fake_provider: FakeProvider) -> None:
    reply = create(
        fake_provider, input="Hi [[vary]]", instructions="Be brief.", tools=TOOLS, tool_choice="none"
    )
    text = reply["output"][0]["content"][0]["text"]
    assert "system 'Be brief.'" in text and "tools get_weather" in text


def test_random_marker_changes_the_answer(fake_provider: FakeProvider) -> None:
    texts = {create(fake_provider, input="Hi [[random]]")["output"][0]["content"][0]["text"] for _ in "ab"}
    assert len(texts) == 2


def test_get_on_create_path_is_405(fake_provider: FakeProvider) -> None:
    assert error_of(call(fake_provider, method="GET"))[0] == 405


# --- pure functions -----------------------------------------------------------------------


def test_handles_create_and_one_response_paths() -> None:
    assert handles("/v1/responses") and handles("/responses") and handles("/v1/responses/resp_1")
    assert not handles("/v1/chat/completions") and not handles("/v1/responses/a/input_items")


def test_string_input_is_one_user_message() -> None:
    [item] = input_items({"input": "Hi"})
    assert item == {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]}


def test_conversation_of_trailing_tool_outputs() -> None:
    items = input_items({"input": WEATHER}) + [
        {"type": "function_call", "call_id": "a", "name": "get_weather", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "a", "output": "one"},
        {"type": "function_call_output", "call_id": "a", "output": [{"type": "input_text", "text": "two"}]},
    ]
    conversation = conversation_of({"tools": TOOLS}, items)
    assert conversation.tool_result == "one\ntwo" and conversation.last_user_text == WEATHER
    assert not conversation.tools_allowed and conversation.tools[0].name == "get_weather"


def test_store_forgets_what_it_deletes() -> None:
    store = ResponseStore()
    store.remember({"id": "resp_1"}, [{"id": "msg_1", "type": "message"}])
    assert store.has("resp_1") and store.item("msg_1") and store.history("resp_1")
    assert store.forget("resp_1") and not store.has("resp_1") and not store.forget("resp_1")


def test_reset_forgets_stored_responses() -> None:
    from rewind.testing.fake_provider import FakeProvider
    from rewind.testing.fake_responses import store_of

    with FakeProvider() as fake:
        store = store_of(fake.context)
        store.histories["resp_x"] = []
        fake.reset()
        assert not store.has("resp_x")
