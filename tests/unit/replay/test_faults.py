"""Tests of rewind.replay.faults: what `rewind mutate` serves for each fault, read back the
way an agent's SDK (and ``canon.meaning``) reads it.

Recorded responses come from the fake provider's own wire formats, so every fault is tried
on exactly the JSON and SSE the fakes send for OpenAI chat, the Responses API, Anthropic
and Gemini (SSE and its JSON-array stream).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rewind.canon.meaning import Meaning, response_meaning
from rewind.canon.providers import provider_named
from rewind.canon.sse import parse_sse
from rewind.errors import ConfigError
from rewind.replay import faults
from rewind.replay.faults import (
    FAULT_NAMES,
    Hang,
    Reset,
    Serve,
    fault_action,
    not_applicable,
    parse_faults,
)
from rewind.store.models import StepRecord

from .factories import make_step
from .fake_recordings import JSON_KINDS, STREAMED_KINDS, recorded


def meaning_of(step: StepRecord, served: Serve) -> Meaning:
    content_type = dict(served.headers).get("content-type")
    return response_meaning(provider_named(step.provider), served.status, content_type, served.body)


def serve(fault: str, step: StepRecord, body: bytes, chunks: Any, **kwargs: Any) -> Serve:
    action = fault_action(fault, step, body, chunks, **kwargs)
    assert isinstance(action, Serve)
    return action


def events(body: bytes) -> list[Any]:
    return parse_sse(body)


# --- choosing faults --------------------------------------------------------------------------


def test_public_api() -> None:
    assert sorted(faults.__all__) == [
        "FAULT_HEADER", "FAULT_NAMES", "FaultAction", "Hang", "Reset", "Serve", "compact_json",
        "event_chunks", "fault_action", "not_applicable", "parse_faults", "reason_phrase", "served_headers",
    ]  # fmt: skip


@pytest.mark.parametrize("text", [None, "", "all", " ALL ", "all,429"])
def test_no_list_or_all_means_every_fault(text: str | None) -> None:
    assert parse_faults(text) == FAULT_NAMES


def test_a_list_keeps_its_order_once_each() -> None:
    assert parse_faults("timeout, 500,Timeout,,bad_tool_args") == ("timeout", "500", "bad_tool_args")


@pytest.mark.parametrize("text", ["502", "429,slow", "time out"])
def test_an_unknown_fault_names_the_valid_ones(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_faults(text)
    for name in FAULT_NAMES:
        assert name in str(caught.value)


def test_an_unknown_fault_is_refused_everywhere() -> None:
    step, body, chunks = recorded("openai", stream=False)
    with pytest.raises(ConfigError, match="unknown fault"):
        not_applicable("slow", step, body)
    with pytest.raises(ConfigError, match="unknown fault"):
        fault_action("slow", step, body, chunks)


@pytest.mark.parametrize("fault", ["429", "500", "503", "timeout", "reset"])
def test_errors_and_dropped_connections_apply_to_any_step(fault: str) -> None:
    assert not_applicable(fault, make_step(1, provider=None), b"") is None


@pytest.mark.parametrize("fault", ["truncate", "empty"])
def test_an_empty_body_cannot_be_cut_or_emptied(fault: str) -> None:
    step = make_step(1)
    assert not_applicable(fault, step, b"") == "the response body is empty"
    with pytest.raises(ConfigError, match="the response body is empty"):
        fault_action(fault, step, b"", None)


@pytest.mark.parametrize("kind", JSON_KINDS)
def test_a_text_answer_has_no_tool_arguments_to_break(kind: str) -> None:
    step, body, chunks = recorded(kind, stream=False)
    assert not_applicable("bad_tool_args", step, body) == "the response has no tool call"
    with pytest.raises(ConfigError, match="step 3: the response has no tool call"):
        fault_action("bad_tool_args", step, body, chunks)


def test_plain_http_has_no_tool_call() -> None:
    step = make_step(1, provider=None, kind="http")
    assert not_applicable("bad_tool_args", step, b'{"tool_calls": []}') == "the response has no tool call"


# --- 429, 500, 503 ----------------------------------------------------------------------------

ERRORS = [
    ("openai", "429", "Too Many Requests", "rate_limit_exceeded"),
    ("openai", "500", "Internal Server Error", "server_error"),
    ("openai", "503", "Service Unavailable", "server_error"),
    ("anthropic", "429", "Too Many Requests", "rate_limit_error"),
    ("anthropic", "500", "Internal Server Error", "api_error"),
    ("anthropic", "503", "Service Unavailable", "overloaded_error"),
    ("gemini", "429", "Too Many Requests", "RESOURCE_EXHAUSTED"),
    ("gemini", "500", "Internal Server Error", "INTERNAL"),
    ("gemini", "503", "Service Unavailable", "UNAVAILABLE"),
]


@pytest.mark.parametrize(("kind", "fault", "reason", "error_type"), ERRORS)
@pytest.mark.parametrize("stream", [False, True])
def test_errors_come_in_the_providers_own_shape(
    kind: str, fault: str, reason: str, error_type: str, stream: bool
) -> None:
    step, body, chunks = recorded(kind, stream=stream)
    served = serve(fault, step, body, chunks)
    meaning = meaning_of(step, served)
    assert (served.status, served.reason) == (int(fault), reason)
    assert served.chunks is None and not served.truncated  # refused before any stream
    assert meaning.kind == "llm" and meaning.error_type == error_type
    assert "rewind mutate" in (meaning.error_message or "")
    assert dict(served.headers)["x-rewind-fault"] == fault
    assert dict(served.headers)["content-type"].startswith("application/json")


def test_openai_errors_match_what_openai_sends() -> None:
    step, body, chunks = recorded("openai", stream=False)
    limited = json.loads(serve("429", step, body, chunks).body)["error"]
    broken = json.loads(serve("500", step, body, chunks).body)["error"]
    assert (limited["type"], limited["code"], limited["param"]) == ("requests", "rate_limit_exceeded", None)
    assert (broken["type"], broken["code"], broken["param"]) == ("server_error", None, None)


def test_anthropic_errors_match_what_anthropic_sends() -> None:
    step, body, chunks = recorded("anthropic", stream=True)
    data = json.loads(serve("503", step, body, chunks).body)
    assert data["type"] == "error"
    assert data["error"]["type"] == "overloaded_error"


def test_gemini_errors_match_what_gemini_sends() -> None:
    step, body, chunks = recorded("gemini", stream=False)
    error = json.loads(serve("429", step, body, chunks).body)["error"]
    assert (error["code"], error["status"]) == (429, "RESOURCE_EXHAUSTED")


@pytest.mark.parametrize("fault", ["429", "500", "503"])
def test_other_hosts_get_text(fault: str) -> None:
    served = serve(fault, make_step(1, provider=None, kind="http"), b"<html/>", None)
    assert dict(served.headers)["content-type"].startswith("text/plain")
    assert served.body.decode().startswith(f"{fault} {served.reason}")
    assert "rewind mutate" in served.body.decode()


@pytest.mark.parametrize("kind", ["openai", "anthropic", "gemini"])
def test_only_429_says_when_to_retry(kind: str) -> None:
    step, body, chunks = recorded(kind, stream=False)
    assert dict(serve("429", step, body, chunks, retry_after_s=7).headers)["retry-after"] == "7"
    assert "retry-after" not in dict(serve("500", step, body, chunks).headers)
    assert "retry-after" not in dict(serve("503", step, body, chunks).headers)


def test_openai_rate_limit_says_the_wait() -> None:
    step, body, chunks = recorded("openai", stream=False)
    message = json.loads(serve("429", step, body, chunks, retry_after_s=3).body)["error"]["message"]
    assert "try again in 3s" in message


# --- timeout and reset ------------------------------------------------------------------------


def test_timeout_hangs_and_reset_drops() -> None:
    step, body, chunks = recorded("anthropic", stream=True)
    assert fault_action("timeout", step, body, chunks) == Hang()
    assert fault_action("reset", step, body, chunks) == Reset()


# --- truncate ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["openai", "responses", "anthropic", "gemini"])
@pytest.mark.parametrize("tools", [False, True])
def test_a_truncated_stream_is_its_first_half_of_events(kind: str, tools: bool) -> None:
    step, body, chunks = recorded(kind, stream=True, tools=tools)
    served = serve("truncate", step, body, chunks)
    whole, cut = events(body), events(served.body)
    assert len(cut) == len(whole) // 2 and cut == whole[: len(cut)]
    assert served.truncated and served.status == 200
    assert chunks is not None and served.chunks == chunks[: len(cut)]  # the fakes send an event a chunk


def test_a_truncated_stream_keeps_the_framing_and_never_its_end() -> None:
    step, body, chunks = recorded("openai", stream=True, text="one two three four five six")
    served = serve("truncate", step, body, chunks)
    assert served.body.endswith(b"\n\n") and body.startswith(served.body)
    assert b"[DONE]" not in served.body and b'"finish_reason":"stop"' not in served.body


def test_recorded_headers_are_kept_but_framing_and_encoding() -> None:
    step, body, chunks = recorded("anthropic", stream=True)
    headers = dict(serve("truncate", step, body, chunks).headers)
    assert headers == {
        "content-type": "text/event-stream; charset=utf-8",
        "x-request-id": "req_1",
        "x-rewind-fault": "truncate",
    }


def test_each_kept_event_keeps_the_time_of_the_chunk_it_started_in() -> None:
    body = b"data: 1\n\ndata: 2\n\ndata: 3\n\ndata: 4\n\n"
    chunks = ((5.0, body[:4]), (7.0, body[4:13]), (9.0, body[13:]))  # events 1 and 2 start in chunk 1
    step = make_step(1, streamed=True, response_headers=(("content-type", "text/event-stream"),))
    served = serve("truncate", step, body, chunks)
    assert served.chunks == ((5.0, b"data: 1\n\n"), (7.0, b"data: 2\n\n"))


@pytest.mark.parametrize(("count", "kept"), [(1, 0), (2, 1), (3, 1), (4, 2), (5, 2)])
def test_at_least_one_event_is_kept_of_two_or_more(count: int, kept: int) -> None:
    body = b"".join(b"data: %d\n\n" % i for i in range(count))
    step = make_step(1, streamed=True, response_headers=(("content-type", "text/event-stream"),))
    served = serve("truncate", step, body, ((0.0, body),))
    assert len(events(served.body)) == kept


def test_comments_travel_with_the_event_after_them() -> None:
    body = b": keep-alive\n\ndata: 1\r\n\r\n: ping\n\ndata: 2\r\n\r\n"
    step = make_step(1, streamed=True, response_headers=(("content-type", "text/event-stream"),))
    served = serve("truncate", step, body, ((0.0, body),))
    assert served.body == b": keep-alive\n\ndata: 1\r\n\r\n"


def test_a_truncated_json_body_is_its_first_half_sent_as_a_cut_stream() -> None:
    step, body, chunks = recorded("openai", stream=False)
    served = serve("truncate", step, body, chunks)
    assert served.body == body[: len(body) // 2]
    assert served.chunks == ((0.0, served.body),) and served.truncated
    assert dict(served.headers)["content-type"] == "application/json"


def test_a_truncated_gemini_json_array_stream_keeps_half_its_chunks() -> None:
    step, body, chunks = recorded("gemini-array", stream=True, text=" ".join(["word"] * 12))
    assert chunks is not None and len(chunks) > 2
    served = serve("truncate", step, body, chunks)
    assert served.chunks == chunks[: len(chunks) // 2] and served.truncated


_EVENT = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=12)


@given(
    st.lists(_EVENT, min_size=1, max_size=12),
    st.sampled_from(["\n", "\r\n", "\r"]),
    st.lists(st.integers(min_value=1, max_value=40), max_size=6),
)
def test_a_truncated_stream_is_a_strict_prefix_of_events(data: list[str], eol: str, cuts: list[int]) -> None:
    body = b"".join(f"data: {d}{eol}{eol}".encode() for d in data)
    chunks, at = [], 0
    for number, size in enumerate(cuts):
        chunks.append((float(number), body[at : at + size]))
        at += size
    chunks.append((99.0, body[at:]))
    step = make_step(1, streamed=True, response_headers=(("content-type", "text/event-stream"),))
    served = serve("truncate", step, body, tuple(chunks))
    whole, cut = events(body), events(served.body)
    assert cut == whole[: len(cut)] and len(cut) < len(whole)
    assert len(cut) >= 1 or len(whole) == 1
    assert b"".join(data for _, data in served.chunks or ()) == served.body
    assert {t for t, _ in served.chunks or ()} <= {t for t, _ in chunks}


# --- empty ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", STREAMED_KINDS)
def test_an_empty_stream_ends_without_an_event(kind: str) -> None:
    step, body, chunks = recorded(kind, stream=True)
    served = serve("empty", step, body, chunks)
    assert (served.status, served.body, served.chunks, served.truncated) == (200, b"", (), False)
    assert dict(served.headers)["content-type"] == dict(step.response_headers)["content-type"]


@pytest.mark.parametrize("kind", JSON_KINDS)
def test_an_empty_json_answer_is_a_200_with_no_body(kind: str) -> None:
    step, body, chunks = recorded(kind, stream=False)
    served = serve("empty", step, body, chunks)
    assert (served.status, served.reason, served.body, served.chunks) == (200, "OK", b"", None)
    assert dict(served.headers)["content-type"] == "application/json"
    assert dict(served.headers)["x-rewind-fault"] == "empty"


def test_an_empty_stream_keeps_the_recorded_status() -> None:
    step = make_step(1, status=201, streamed=True)
    served = serve("empty", step, b"data: 1\n\n", ((0.0, b"data: 1\n\n"),))
    assert (served.status, served.reason) == (201, "Created")


# --- bad_tool_args ----------------------------------------------------------------------------

# Anthropic's tool_use.input and Gemini's functionCall.args are objects on the wire, so
# their cut text goes in a string, which canon.meaning reads as invalid arguments.
TOOL_CASES = [
    pytest.param("openai", False, id="openai-json"),
    pytest.param("openai", True, id="openai-sse"),
    pytest.param("responses", False, id="responses-json"),
    pytest.param("responses", True, id="responses-sse"),
    pytest.param("anthropic", True, id="anthropic-sse"),
    pytest.param("anthropic", False, id="anthropic-json"),
    pytest.param("gemini", False, id="gemini-json"),
    pytest.param("gemini", True, id="gemini-sse"),
    pytest.param("gemini-array", True, id="gemini-array"),
]
ALL_TOOL_CASES = [(p.values[0], p.values[1]) for p in TOOL_CASES]


@pytest.mark.parametrize(("kind", "stream"), TOOL_CASES)
def test_bad_tool_args_are_read_as_invalid_arguments(kind: str, stream: bool) -> None:
    step, body, chunks = recorded(kind, stream=stream, tools=True)
    served = serve("bad_tool_args", step, body, chunks)
    (call,) = meaning_of(step, served).tool_calls
    assert call.name == "get_weather"
    assert call.arguments_valid is False


@pytest.mark.parametrize(("kind", "stream"), ALL_TOOL_CASES)
def test_bad_tool_args_are_a_cut_of_the_recorded_arguments(kind: str, stream: bool) -> None:
    step, body, chunks = recorded(kind, stream=stream, tools=True)
    assert not_applicable("bad_tool_args", step, body) is None
    served = serve("bad_tool_args", step, body, chunks)
    (call,) = meaning_of(step, served).tool_calls
    assert isinstance(call.arguments, str) and call.arguments
    with pytest.raises(ValueError):
        json.loads(call.arguments)
    original = meaning_of(step, Serve(200, "OK", step.response_headers, body)).tool_calls[0]
    assert original.arguments == {"city": "Paris"} and original.arguments_valid
    assert any(text.startswith(call.arguments) for text in ('{"city": "Paris"}', '{"city":"Paris"}'))


@pytest.mark.parametrize(("kind", "stream"), ALL_TOOL_CASES)
def test_bad_tool_args_keep_status_headers_and_form(kind: str, stream: bool) -> None:
    step, body, chunks = recorded(kind, stream=stream, tools=True)
    served = serve("bad_tool_args", step, body, chunks)
    assert (served.status, served.reason, served.truncated) == (200, "OK", False)
    assert dict(served.headers)["x-rewind-fault"] == "bad_tool_args"
    assert dict(served.headers)["content-type"] == dict(step.response_headers)["content-type"]
    assert "content-length" not in dict(served.headers)
    assert (served.chunks is not None) == stream
    if served.chunks is not None:
        assert b"".join(data for _, data in served.chunks) == served.body


@pytest.mark.parametrize("kind", ["openai", "responses", "anthropic", "gemini"])
def test_a_broken_stream_is_rewritten_event_by_event(kind: str) -> None:
    step, body, chunks = recorded(kind, stream=True, tools=True)
    assert chunks is not None
    served = serve("bad_tool_args", step, body, chunks)
    assert served.chunks is not None and len(served.chunks) == len(chunks)
    before, after = events(body), events(served.body)
    assert [e.event for e in after] == [e.event for e in before]  # event: lines kept
    assert [t for t, _ in served.chunks] == [t for t, _ in chunks]
    changed = [new for (_, old), (_, new) in zip(chunks, served.chunks, strict=True) if new != old]
    assert changed and all(b"Paris" not in new for new in changed)
    assert all(new.endswith(b"\r\n\r\n" if kind == "gemini" else b"\n\n") for new in changed)


def test_openai_chat_stream_keeps_done_and_empties_later_fragments() -> None:
    step, body, chunks = recorded("openai", stream=True, tools=True)
    served = serve("bad_tool_args", step, body, chunks)
    assert served.body.endswith(b"data: [DONE]\n\n")
    fragments = [
        call["function"]["arguments"]
        for event in events(served.body)
        if event.data != "[DONE]"
        for choice in json.loads(event.data)["choices"]
        for call in choice["delta"].get("tool_calls", [])
        if "arguments" in call.get("function", {})
    ]
    assert fragments[0] and set(fragments[1:]) == {""}


def test_responses_stream_repeats_the_same_cut_everywhere() -> None:
    step, body, chunks = recorded("responses", stream=True, tools=True)
    served = serve("bad_tool_args", step, body, chunks)
    by_type = {json.loads(e.data)["type"]: json.loads(e.data) for e in events(served.body)}
    cut = by_type["response.function_call_arguments.done"]["arguments"]
    assert by_type["response.output_item.done"]["item"]["arguments"] == cut
    assert by_type["response.completed"]["response"]["output"][0]["arguments"] == cut
    deltas = [json.loads(e.data) for e in events(served.body) if (e.event or "").endswith("arguments.delta")]
    assert "".join(delta["delta"] for delta in deltas) == cut


def test_anthropic_and_gemini_arguments_become_text() -> None:
    step, body, chunks = recorded("anthropic", stream=False, tools=True)
    block = json.loads(serve("bad_tool_args", step, body, chunks).body)["content"][0]
    assert block["type"] == "tool_use" and isinstance(block["input"], str)
    step, body, chunks = recorded("gemini", stream=False, tools=True)
    data = json.loads(serve("bad_tool_args", step, body, chunks).body)
    assert isinstance(data["candidates"][0]["content"]["parts"][0]["functionCall"]["args"], str)


@pytest.mark.parametrize(
    ("arguments", "cut"), [("{}", "{"), ('{"a": 1}', '{"a"'), ("[1, 2]", "[1,"), ("1", "{"), ("", "{")]
)
def test_the_cut_is_never_json(arguments: str, cut: str) -> None:
    completion = {"choices": [{"index": 0, "message": {"role": "assistant", "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": arguments}}]}}]}  # fmt: skip
    step = make_step(1, response_headers=(("content-type", "application/json"),))
    served = serve("bad_tool_args", step, json.dumps(completion).encode(), None)
    assert json.loads(served.body)["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] == cut


def test_only_the_first_tool_call_is_broken() -> None:
    calls = [{"id": f"c{i}", "type": "function", "function": {"name": f"f{i}", "arguments": '{"x": 1}'}}
             for i in range(2)]  # fmt: skip
    completion = {"choices": [{"index": 0, "message": {"role": "assistant", "tool_calls": calls}}]}
    step = make_step(1, response_headers=(("content-type", "application/json"),))
    served = serve("bad_tool_args", step, json.dumps(completion).encode(), None)
    first, second = meaning_of(step, served).tool_calls
    assert not first.arguments_valid and second.arguments_valid


def test_a_custom_tool_call_cannot_be_broken() -> None:
    response = {"object": "response", "status": "completed",
                "output": [{"type": "custom_tool_call", "name": "sh", "input": "ls"}]}  # fmt: skip
    step = make_step(1, response_headers=(("content-type", "application/json"),))
    reason = not_applicable("bad_tool_args", step, json.dumps(response).encode())
    assert reason is not None and "cannot be rewritten" in reason
