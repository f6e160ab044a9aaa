from __future__ import annotations

import json
from typing import Any

import pytest

from rewind.canon.fingerprint import canonical_request, fingerprint_of
from rewind.canon.providers import Provider
from rewind.replay.explain import (
    MissReport,
    describe_differences,
    explain_miss,
    explain_parts,
    safe_url,
)
from rewind.store.models import StepRecord

from .factories import make_step

URL = "https://api.openai.com/v1/chat/completions"


def parts(**changes: Any) -> dict[str, Any]:
    """Described parts of a chat request, as ``rewind.canon.describe_parts`` gives them."""
    base: dict[str, Any] = {
        "endpoint": "POST /v1/chat/completions",
        "model": "gpt-4o",
        "system": "You are a helpful assistant.",
        "messages": [
            {"role": "user", "content": "Hello"},
            {"role": "assistant", "content": "Hi! How can I help?"},
            {"role": "user", "content": "Weather?"},
            {"role": "user", "content": "London"},
        ],
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}],
        "parameters": {"temperature": 0.7, "max_tokens": 100},
    }
    return {**base, **changes}


def differences(**changes: Any) -> list[str]:
    return describe_differences(parts(**changes), parts())


def test_same_parts_have_no_differences() -> None:
    assert differences() == []


def test_model() -> None:
    assert differences(model="gpt-4o-mini") == ["model: 'gpt-4o-mini' != recorded 'gpt-4o'"]


def test_endpoint() -> None:
    assert differences(endpoint="POST /v1/messages") == [
        "endpoint differs: POST /v1/messages vs recorded POST /v1/chat/completions"
    ]


def test_system_prompt() -> None:
    assert differences(system="You are terse.") == [
        "system prompt differs: 'You are terse.' vs recorded 'You are a helpful assistant.'"
    ]


def test_system_prompt_missing() -> None:
    assert differences(system=None) == [
        "system prompt differs: (none) vs recorded 'You are a helpful assistant.'"
    ]


def test_one_message_names_its_index_and_role() -> None:
    messages = parts()["messages"][:3] + [{"role": "user", "content": "Paris"}]
    assert differences(messages=messages) == ["messages[3] differs (role user): 'Paris' vs recorded 'London'"]


def test_message_role_change_is_shown() -> None:
    messages = parts()["messages"][:3] + [{"role": "assistant", "content": "London"}]
    assert differences(messages=messages) == ["messages[3] differs (role assistant vs recorded user)"]


def test_message_differing_outside_its_text_is_previewed_as_json() -> None:
    ours = [{"role": "user", "content": "Hi", "name": "ann"}]
    recorded = [{"role": "user", "content": "Hi", "name": "bob"}]
    assert describe_differences(parts(messages=ours), parts(messages=recorded)) == [
        "messages[0] differs (role user): "
        """'{"content":"Hi","name":"ann","role":"user"}' vs recorded """
        """'{"content":"Hi","name":"bob","role":"user"}'"""
    ]


@pytest.mark.parametrize(
    ("message", "preview"),
    [
        (
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_0",
                        "type": "function",
                        "function": {"name": "lookup", "arguments": '{"q":"Paris"}'},
                    }
                ],
            },
            """'lookup({"q":"Paris"})'""",
        ),
        (
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Let me look."},
                    {"type": "tool_use", "id": "toolu_0", "name": "lookup", "input": {"q": "Paris"}},
                ],
            },
            """'Let me look. lookup({"q":"Paris"})'""",
        ),
        (
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "toolu_0", "content": "Paris"}],
            },
            "'Paris'",
        ),
        (
            {"role": "model", "parts": [{"functionCall": {"name": "lookup", "args": {"q": "Paris"}}}]},
            """'lookup({"q":"Paris"})'""",
        ),
    ],
)
def test_tool_calls_and_results_are_previewed_readably(message: dict[str, Any], preview: str) -> None:
    (line,) = describe_differences(parts(messages=[message]), parts(messages=[{"role": "x"}]))
    assert line.split(": ", 1)[1].startswith(preview + " vs recorded")


def test_message_count() -> None:
    messages = parts()["messages"] + [{"role": "user", "content": "And tomorrow?"}]
    assert differences(messages=messages) == ["messages: 5 vs recorded 4"]


def test_long_messages_are_previewed_around_the_first_difference() -> None:
    prefix = "Please summarise the following report carefully and briefly. " * 3
    ours = [{"role": "user", "content": prefix + "Revenue rose 12% in Paris."}]
    recorded = [{"role": "user", "content": prefix + "Revenue rose 12% in London."}]
    (line,) = describe_differences(parts(messages=ours), parts(messages=recorded))
    assert line.startswith("messages[0] differs (role user): '…")
    assert "Paris" in line and "London" in line
    assert len(line) < 200


def test_content_parts_are_previewed_by_their_text() -> None:
    ours = [{"role": "user", "content": [{"type": "text", "text": "Paris"}]}]
    recorded = [{"role": "user", "content": [{"type": "text", "text": "London"}]}]
    assert describe_differences(parts(messages=ours), parts(messages=recorded)) == [
        "messages[0] differs (role user): 'Paris' vs recorded 'London'"
    ]


def test_many_changed_messages_are_capped() -> None:
    ours = [{"role": "user", "content": f"q{i}"} for i in range(6)]
    recorded = [{"role": "user", "content": f"r{i}"} for i in range(6)]
    lines = describe_differences(parts(messages=ours), parts(messages=recorded))
    assert len(lines) == 4 and lines[-1] == "... and 3 more messages differ"


def test_tools_added_and_removed_openai_shape() -> None:
    tools = [{"type": "function", "function": {"name": "get_time", "parameters": {}}}]
    assert differences(tools=tools) == ["tools differ: added get_time; removed get_weather"]


def test_tools_changed_anthropic_shape() -> None:
    ours = [{"name": "get_weather", "input_schema": {"type": "object"}}]
    recorded = [{"name": "get_weather", "input_schema": {}}]
    assert describe_differences(parts(tools=ours), parts(tools=recorded)) == [
        "tools differ: changed get_weather"
    ]


def test_parameters() -> None:
    assert differences(parameters={"temperature": 0.2, "max_tokens": 100}) == [
        "parameters differ: temperature 0.2 vs recorded 0.7"
    ]


def test_parameters_unset() -> None:
    assert differences(parameters={"temperature": 0.7, "top_p": 0.9}) == [
        "parameters differ: max_tokens (unset) vs recorded 100, top_p 0.9 vs recorded (unset)"
    ]


def test_non_json_body_and_unknown_parts_never_show_values() -> None:
    ours = {"endpoint": "POST /upload", "body": {"sha256": "aa"}, "content_type": "x/secret-1"}
    recorded = {"endpoint": "POST /upload", "body": {"sha256": "bb"}, "content_type": "x/y"}
    assert describe_differences(ours, recorded) == ["body differs", "content_type differs"]


def nearest(candidates: list[tuple[StepRecord, dict[str, Any]]], **options: Any) -> list[int]:
    return [n.step.step for n in explain_parts("POST", URL, "v1:ff", parts(), candidates, **options).nearest]


def test_nearest_ranks_by_weighted_closeness() -> None:
    candidates = [
        (make_step(1), parts(endpoint="POST /v1/embeddings")),
        (make_step(2), parts(model="gpt-4", system="x")),
        (make_step(3), parts(model="gpt-4")),
        (make_step(4), parts(model="gpt-4", parameters={})),
        (make_step(5), parts(model="o1", system="y", parameters={})),
    ]
    assert nearest(candidates) == [3, 4, 2]


def with_last(text: str) -> list[dict[str, Any]]:
    return [*parts()["messages"][:3], {"role": "user", "content": text}]


def test_a_near_match_at_a_later_step_ranks_above_an_earlier_worse_one() -> None:
    near = with_last("Londres")
    worse = [
        {"role": "user", "content": "Bonjour"},
        *parts()["messages"][1:3],
        {"role": "user", "content": "Paris"},
    ]
    candidates = [
        (make_step(1), parts(system="You are a poet.", messages=worse)),
        (make_step(9), parts(messages=near)),
    ]
    assert nearest(candidates) == [9, 1]


def test_a_request_differing_only_in_its_last_message_is_closer_than_in_its_first() -> None:
    first = [{"role": "user", "content": "Hullo"}, *parts()["messages"][1:]]
    candidates = [(make_step(1), parts(messages=first)), (make_step(2), parts(messages=with_last("Londn")))]
    assert nearest(candidates) == [2, 1]


def test_one_word_changed_in_a_long_message_is_closer_than_a_shorter_rewrite() -> None:
    report = "The quarterly report says revenue rose in every region. " * 900
    ours = parts(messages=with_last(report + "Summarise it for London."))
    candidates = [
        (make_step(1), parts(messages=with_last(report[:-60] + "Summarise it briefly."))),
        (make_step(2), parts(messages=with_last(report + "Summarise it for Paris."))),
    ]
    assert [n.step.step for n in explain_parts("POST", URL, "v1:ff", ours, candidates).nearest] == [2, 1]


def test_same_endpoint_always_ranks_above_another_endpoint() -> None:
    everything_else = parts(
        model="o1",
        system="Other.",
        messages=[{"role": "assistant", "content": "?"}],
        tools=[{"name": "other"}],
        parameters={"stream": True},
    )
    candidates = [(make_step(1), parts(endpoint="POST /v1/embeddings")), (make_step(2), everything_else)]
    report = explain_parts("POST", URL, "v1:ff", parts(), candidates)
    assert [n.step.step for n in report.nearest] == [2, 1]
    same, other = (n.similarity or 0.0 for n in report.nearest)
    assert same >= 0.5 >= other


def test_equally_close_steps_keep_step_order() -> None:
    candidates = [(make_step(n), parts(model="x")) for n in (5, 2, 8, 3)]
    assert nearest(candidates, limit=4) == [2, 3, 5, 8]


def test_steps_not_yet_served_come_first_among_equally_close_ones() -> None:
    candidates = [(make_step(n), parts(model="x")) for n in (2, 5, 8)] + [(make_step(1), parts())]
    assert nearest(candidates, limit=4, unserved={5, 8}) == [1, 5, 8, 2]


def test_a_large_session_is_explained() -> None:
    prompts = [f"Variant {v}. " + "You are a careful research assistant. " * 1_300 for v in range(20)]
    document = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 900

    def step_parts(n: int, question: str) -> dict[str, Any]:
        messages = [{"role": "user", "content": document}, {"role": "user", "content": question}]
        return parts(system=prompts[n % 20], messages=messages)

    candidates = [
        (make_step(n), step_parts(n, f"Question {n}: what does part {n} say?")) for n in range(2_000)
    ]
    ours = step_parts(1_500, "Question 1500: what does part 1500 mean?")
    ours["system"] = ours["system"].replace("careful", "thorough", 1)
    report = explain_parts("POST", URL, "v1:ff", ours, candidates)
    assert report.nearest[0].step.step == 1_500


def test_report_text_names_nearest_steps_and_differences() -> None:
    candidates = [(make_step(7), parts(model="gpt-4o-mini"))]
    text = explain_parts("POST", URL, "v1:ff", parts(), candidates).text()
    assert text.splitlines()[:3] == [
        f"Rewind replay miss: no recorded response for POST {URL} (fingerprint v1:ff).",
        "Nearest recorded steps:",
        f"  step 7 (POST {URL}), 90% similar:",
    ]
    assert "    - model: 'gpt-4o' != recorded 'gpt-4o-mini'" in text
    assert "--on-miss live" in text


def test_identical_request_says_its_answers_were_used_up() -> None:
    text = explain_parts("POST", URL, "v1:ff", parts(), [(make_step(2), parts())]).text()
    assert "same request, but every recorded answer to it was already served" in text
    assert "--reuse" in text


def test_report_without_candidates() -> None:
    assert "no replayable steps" in MissReport("GET", URL, "v1:ff").text()


def test_to_json_is_structured() -> None:
    report = explain_parts("POST", URL, "v1:ff", parts(), [(make_step(7), parts(model="x"))])
    assert report.to_json() == {
        "method": "POST",
        "url": URL,
        "fingerprint": "v1:ff",
        "nearest": [
            {
                "step": 7,
                "method": "POST",
                "url": URL,
                "fingerprint": "v1:aa",
                "differences": ["model: 'gpt-4o' != recorded 'x'"],
                "similarity": 0.9,
            }
        ],
    }


def test_reports_never_carry_header_values_or_query_secrets() -> None:
    step = make_step(
        1,
        request_headers=(("authorization", "Bearer sk-live-123"),),
        url="https://g.example/v1/models/x:generateContent?key=AIzaSECRET&alt=sse",
    )
    report = explain_parts("POST", "https://g.example/v1?key=AIzaOTHER", "v1:ff", parts(), [(step, parts())])
    dumped = report.text() + repr(report.to_json())
    for secret in ("sk-live-123", "AIzaSECRET", "AIzaOTHER"):
        assert secret not in dumped
    assert "alt=sse" in dumped


@pytest.mark.parametrize(
    ("url", "safe"),
    [
        ("https://h/p", "https://h/p"),
        ("https://h/p?alt=sse&key=s3cr3t", "https://h/p?alt=sse&key=[REDACTED]"),
        ("https://h/p?access_token=t", "https://h/p?access_token=[REDACTED]"),
    ],
)
def test_safe_url(url: str, safe: str) -> None:
    assert safe_url(url) == safe


def endpoint(**changes: Any) -> dict[str, Any]:
    """A structured endpoint part, as ``rewind.canon.describe_parts`` gives it."""
    base = {
        "method": "POST",
        "host": "api.openai.com",
        "path": "/v1/chat/completions",
        "query": [],
        "content_type": "application/json",
    }
    return {**base, **changes}


@pytest.mark.parametrize(
    ("changes", "line"),
    [
        (
            {"path": "/v1/messages", "host": "api.anthropic.com"},
            "endpoint differs: POST api.anthropic.com/v1/messages"
            " vs recorded POST api.openai.com/v1/chat/completions",
        ),
        (
            {"query": [["alt", "sse"]]},
            "endpoint differs: POST /v1/chat/completions?alt=sse vs recorded POST /v1/chat/completions",
        ),
        (
            {"method": "GET", "content_type": None},
            "endpoint differs: GET /v1/chat/completions (no content type)"
            " vs recorded POST /v1/chat/completions (application/json)",
        ),
    ],
)
def test_structured_endpoint(changes: dict[str, Any], line: str) -> None:
    ours, recorded = parts(endpoint=endpoint(**changes)), parts(endpoint=endpoint())
    assert describe_differences(ours, recorded) == [line]


def chat_canonical(model: str, question: str) -> dict[str, Any]:
    body = {
        "model": model,
        "messages": [
            {"role": "system", "content": "You are helpful."},
            {"role": "user", "content": question},
        ],
    }
    headers = (("content-type", "application/json"), ("authorization", "Bearer sk-live-SECRET"))
    return canonical_request("POST", URL, headers, json.dumps(body).encode(), Provider.OPENAI)


def test_explain_miss_compares_canonical_requests_through_canon() -> None:
    recorded = [
        (make_step(1), chat_canonical("gpt-4o", "Capital of England?")),
        (make_step(2), chat_canonical("gpt-4o", "Capital of France!")),
    ]
    ours = chat_canonical("gpt-4o-mini", "Capital of France?")
    report = explain_miss("POST", URL, fingerprint_of(ours), ours, recorded)
    assert [n.step.step for n in report.nearest] == [2, 1]
    assert report.nearest[1].differences == [
        "model: 'gpt-4o-mini' != recorded 'gpt-4o'",
        "messages[0] differs (role user): 'Capital of France?' vs recorded 'Capital of England?'",
    ]
    assert "sk-live-SECRET" not in report.text() + json.dumps(report.to_json())
