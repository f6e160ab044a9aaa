"""The fake provider's provider-neutral decisions: markers, turns, arguments, counts."""

from __future__ import annotations

from rewind.testing.fake_common import (
    Conversation,
    Markers,
    ToolSpec,
    count_words,
    parse_markers,
    plan_turn,
    random_id,
    split_words,
    strip_markers,
)

WEATHER = ToolSpec(
    "get_weather",
    {
        "type": "object",
        "properties": {"city": {"type": "string"}, "units": {"type": "string"}},
        "required": ["city"],
    },
)


def test_markers_are_read_and_stripped() -> None:
    text = "Hi [[status:429]] there [[delay:50]] [[drop]]"
    assert parse_markers(text) == Markers(status=429, drop=True, delay_ms=50)
    assert parse_markers("plain") == Markers()
    assert strip_markers(text) == "Hi there"


def test_plain_answer_echoes_the_question_without_markers() -> None:
    turn = plan_turn(Conversation(last_user_text="Say hi [[delay:5]]"))
    assert (turn.text, turn.tool_name) == ("This is a fake answer to: Say hi", None)


def test_tools_and_a_user_turn_give_a_call_to_the_first_tool() -> None:
    other = ToolSpec("search", {"required": ["query"], "properties": {"query": {"type": "string"}}})
    turn = plan_turn(Conversation("What's the weather in Paris?", tools=(WEATHER, other)))
    assert (turn.tool_name, turn.tool_args) == ("get_weather", {"city": "Paris"})


def test_required_string_properties_get_the_user_text() -> None:
    search = ToolSpec("search", {"required": ["query"], "properties": {"query": {"type": "string"}}})
    turn = plan_turn(Conversation("find cheap flights", tools=(search,)))
    assert turn.tool_args == {"query": "find cheap flights"}


def test_tool_result_gives_a_final_answer_that_mentions_it() -> None:
    result = '{"city": "Paris", "forecast": "sunny", "temp_c": 21}'
    turn = plan_turn(Conversation("weather?", tool_result=result, tools=(WEATHER,)))
    assert turn.text == "According to the tool, city: Paris, forecast: sunny, temp_c: 21."


def test_tools_not_allowed_gives_text() -> None:
    turn = plan_turn(Conversation("weather?", tools=(WEATHER,), tools_allowed=False))
    assert not turn.is_tool_call


def test_words_counted_in_nested_json_and_split_for_streams() -> None:
    assert count_words([{"content": "one two"}, {"x": ["three"]}, 4, None]) == 3
    assert split_words("one two  three") == ["one ", "two  ", "three"]


def test_ids_are_random_with_the_prefix() -> None:
    first, second = random_id("call_"), random_id("call_")
    assert first.startswith("call_") and len(first) == 29 and first != second
