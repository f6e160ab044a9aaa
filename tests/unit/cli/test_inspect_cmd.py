"""``rewind inspect`` through the CLI, on sessions written by the store: steps with cost
and tags, one step as the agent received it, the conversation at the last call."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from typing import Any

from rewind.store.home import Home
from rewind.store.ids import new_session_id
from rewind.store.models import SessionStart
from rewind.store.writer import SessionWriter

from .conftest import Invoke, make_step, write_session

HOSTILE = "\x1b[2J\x1b[31m[bold]x"
SSE = (("content-type", "text/event-stream"),)
JSON = (("content-type", "application/json"),)


def sse(*chunks: Any) -> bytes:
    return b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"


def delta(**fields: Any) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": fields}]}


STREAM = sse(
    delta(content="Hello "),
    delta(content="world"),
    {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
)
TOOL_STREAM = sse(
    delta(tool_calls=[{"index": 0, "id": "c1", "function": {"name": "get_weather", "arguments": '{"ci'}}]),
    delta(tool_calls=[{"index": 0, "function": {"arguments": 'ty": "Paris"}'}}]),
    {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
)
BAD_ARGS = sse(delta(tool_calls=[{"index": 0, "function": {"name": "f", "arguments": "{not json"}}]))
CITY = '{"city":"Paris"}'
TOOL_RUN = {
    "model": "gpt-4o",
    "messages": [
        {"role": "system", "content": "You are a weather bot."},
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": CITY}}
        ]},
        {"role": "tool", "tool_call_id": "c1", "content": '{"temp": 21}'},
    ],
}  # fmt: skip
ANSWER = {
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "It is 21 C."}, "finish_reason": "stop"}
    ]
}


def record(home: Home, *steps: dict[str, Any], name: str = "run") -> str:
    """A finished session of one step per ``steps`` entry: fields of a ``StepRecord``,
    plus ``request`` and ``response`` bodies (bytes or JSON)."""
    start = SessionStart(
        id=new_session_id(), name=name, mode="record", started_at=time.time(), cwd="/w", command=("agent",)
    )
    writer = SessionWriter(home, start)
    for number, spec in enumerate(steps, 1):
        fields = dict(spec)
        request, response = (_bytes(fields.pop(k, {})) for k in ("request", "response"))
        base = replace(make_step(writer, "https://api.openai.com/v1/chat/completions", b"{}"), step=number)
        writer.add_step(
            replace(
                base, request_sha=writer.put_blob(request), response_sha=writer.put_blob(response), **fields
            )
        )
    writer.finish(0, b"", b"", ended_at=time.time())
    return writer.session_id


def _bytes(body: Any) -> bytes:
    return body if isinstance(body, bytes) else json.dumps(body).encode()


STREAMED: dict[str, Any] = {
    "response": STREAM,
    "response_headers": SSE,
    "streamed": True,
    "chunks": ((12.0, 40), (20.0, 40), (25.0, 30)),
    "ttft_ms": 12.0,
    "input_tokens": None,
    "output_tokens": None,
}


# --- the session view ---------------------------------------------------------------


def test_list_and_inspect_show_mode_and_parent(home: Home, rewind: Invoke) -> None:
    parent = write_session(home, "base")
    child = write_session(home, "base-live", mode="replay-live", parent_id=parent)
    assert f"mode replay-live  parent {parent}" in rewind("inspect", child).stdout
    doc = json.loads(rewind("inspect", child, "--json").stdout)
    assert (doc["mode"], doc["parent_id"]) == ("replay-live", parent)


def test_recorded_escapes_and_markup_are_shown_not_run(home: Home, rewind: Invoke) -> None:
    sid = write_session(home, HOSTILE, command=("echo", HOSTILE), body=HOSTILE.encode())
    for args in (["inspect", sid], ["inspect", sid, "--step", "1"], ["inspect", sid, "--step", "1", "--raw"]):
        out = rewind(*args).stdout
        assert "\x1b" not in out and "\\x1b[2J\\x1b[31m[bold]x" in out, args


def test_json_keeps_recorded_content_exact(home: Home, rewind: Invoke) -> None:
    sid = write_session(home, HOSTILE, body=HOSTILE.encode())
    step = json.loads(rewind("inspect", sid, "--step", "1", "--json").stdout)
    assert step["request"]["body"] == HOSTILE


def test_steps_that_could_not_be_recorded_are_shown(home: Home, rewind: Invoke) -> None:
    sid = write_session(home, "holey", gaps=[(2, "disk full")])
    shown = rewind("inspect", sid).stdout
    assert "NOT RECORDED 1 call(s)" in shown and "step 2: NOT RECORDED: disk full" in shown
    doc = json.loads(rewind("inspect", sid, "--json").stdout)
    assert doc["lost"] == 1 and doc["gaps"] == [{"step": 2, "reason": "disk full"}]


def test_session_shows_cost_and_tag_per_step_and_in_total(home: Home, rewind: Invoke) -> None:
    sid = record(
        home,
        {"input_tokens": 1000, "output_tokens": 100},  # gpt-4o
        {"model": "my-local-model"},
        {"status": 429, "input_tokens": None, "output_tokens": None, "response": {"error": {"type": "x"}}},
    )
    shown = rewind("inspect", sid).stdout
    assert "COST" in shown and "TAG" in shown and "rate_limited" in shown and "unpriced" in shown
    assert "cost: $0.0035 (1 call unpriced; prices as of " in shown
    doc = json.loads(rewind("inspect", sid, "--json").stdout)
    assert (doc["cost_usd"], doc["unpriced_calls"]) == (0.0035, 1)
    assert [(s["cost_usd"], s["tag"]) for s in doc["steps"]] == [
        (0.0035, None),
        (None, None),
        (None, "rate_limited"),
    ]


def test_a_session_of_unpriced_calls_never_costs_zero(home: Home, rewind: Invoke) -> None:
    sid = record(home, {"model": "my-local-model"})
    assert "cost: unknown (1 call unpriced" in rewind("inspect", sid).stdout
    assert json.loads(rewind("inspect", sid, "--json").stdout)["cost_usd"] is None


def test_a_stream_without_usage_says_not_reported(home: Home, rewind: Invoke) -> None:
    sid = record(home, STREAMED)
    row = next(line for line in rewind("inspect", sid).stdout.splitlines() if "│ 1 " in line)
    assert row.count("not reported") == 2 and "unknown" in row


# --- one step -----------------------------------------------------------------------


def test_a_streamed_step_shows_the_assembled_answer_not_the_chunks(home: Home, rewind: Invoke) -> None:
    sid = record(home, STREAMED)
    shown = rewind("inspect", sid, "--step", "1").stdout
    assert "What the agent received" in shown and "Hello world" in shown and "data:" not in shown
    assert "finish reason  stop" in shown
    assert "usage          input not reported  output not reported" in shown
    assert "cost           unknown: usage not reported" in shown
    assert "streamed, 3 chunks, ttft 12 ms" in shown


def test_step_json_says_when_each_chunk_arrived(home: Home, rewind: Invoke) -> None:
    sid = record(home, STREAMED)
    doc = json.loads(rewind("inspect", sid, "--step", "1", "--json").stdout)
    assert doc["chunk_timing"] == [[12.0, 40], [20.0, 40], [25.0, 30]] and doc["chunks"] == 3


def test_raw_shows_the_recorded_bytes(home: Home, rewind: Invoke) -> None:
    sid = record(home, STREAMED)
    shown = rewind("inspect", sid, "--step", "1", "--raw").stdout
    assert (
        "data: [DONE]" in shown and '"content": "Hello "' in shown and "What the agent received" not in shown
    )


def test_tool_calls_show_parsed_arguments_and_flag_invalid_ones(home: Home, rewind: Invoke) -> None:
    sid = record(home, {**STREAMED, "response": TOOL_STREAM}, {**STREAMED, "response": BAD_ARGS})
    shown = rewind("inspect", sid, "--step", "1").stdout
    assert "get_weather" in shown and '"city": "Paris"' in shown and "finish reason  tool_calls" in shown
    bad = rewind("inspect", sid, "--step", "2").stdout
    assert "arguments are not valid JSON" in bad and "{not json" in bad


def test_a_failed_step_shows_its_error_and_tag(home: Home, rewind: Invoke) -> None:
    error = {"error": {"type": "rate_limit_error", "message": "slow \x1b[2J down"}}
    sid = record(home, {"status": 429, "response": error, "response_headers": JSON})
    shown = rewind("inspect", sid, "--step", "1").stdout
    assert "error          rate_limit_error: slow \\x1b[2J down" in shown and "rate_limited" in shown
    assert "\x1b" not in shown


def test_priced_step_shows_its_cost(home: Home, rewind: Invoke) -> None:
    sid = record(
        home, {"response": ANSWER, "response_headers": JSON, "input_tokens": 1000, "output_tokens": 100}
    )
    shown = rewind("inspect", sid, "--step", "1").stdout
    assert "cost           $0.0035 (priced as gpt-4o)" in shown and "It is 21 C." in shown
    assert "usage          input 1000  output 100  cache read not reported" in shown


def test_step_json_adds_what_was_received(home: Home, rewind: Invoke) -> None:
    sid = record(home, {**STREAMED, "request": TOOL_RUN})
    doc = json.loads(rewind("inspect", sid, "--step", "1", "--json").stdout)
    assert doc["request"]["body"] == TOOL_RUN and doc["response"]["body"].startswith("data: ")
    received = doc["received"]
    assert (received["text"], received["finish_reason"], received["cost_usd"]) == (
        "Hello world",
        "stop",
        None,
    )
    assert received["usage"]["input_tokens"] is None and doc["cost_usd"] is None and doc["tag"] is None


def test_plain_http_step_shows_its_body(home: Home, rewind: Invoke) -> None:
    sid = record(home, {"kind": "http", "provider": None, "model": None, "response": {"temp": 21}})
    shown = rewind("inspect", sid, "--step", "1").stdout
    assert '"temp": 21' in shown


def test_step_out_of_range_is_one_clear_error(home: Home, rewind: Invoke) -> None:
    sid = record(home, {})
    result = rewind("inspect", sid, "--step", "9")
    assert result.exit_code == 1 and "no step 9 in this session (it has 1 steps)" in result.stderr


def test_raw_without_step_is_a_usage_error(home: Home, rewind: Invoke) -> None:
    sid = record(home, {})
    result = rewind("inspect", sid, "--raw")
    assert result.exit_code == 2 and "--raw needs --step N" in result.stderr
    assert rewind("inspect", sid, "--conversation", "--step", "1").exit_code == 2


# --- the conversation ---------------------------------------------------------------


def test_conversation_is_the_last_calls_transcript_and_answer(home: Home, rewind: Invoke) -> None:
    first = {"request": {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}}
    http = {"kind": "http", "provider": None}
    sid = record(home, first, {"request": TOOL_RUN, "response": ANSWER, "response_headers": JSON}, http)
    shown = rewind("inspect", sid, "--conversation").stdout
    order = ["conversation at step 2", "── system ──", "You are a weather bot.", "── user ──",
             "── assistant ──", "→ tool call get_weather", '"city": "Paris"',
             "── tool (get_weather, id c1) ──", '{"temp": 21}', "── assistant ──", "It is 21 C."]  # fmt: skip
    positions = [shown.index(part, shown.index(order[i - 1]) if i else 0) for i, part in enumerate(order)]
    assert positions == sorted(positions)
    doc = json.loads(rewind("inspect", sid, "--conversation", "--json").stdout)
    assert doc["step"] == 2 and [m["role"] for m in doc["messages"]] == [
        "system",
        "user",
        "assistant",
        "tool",
        "assistant",
    ]
    assert doc["messages"][3]["name"] == "get_weather" and doc["messages"][4]["text"] == "It is 21 C."


def test_conversation_of_a_failed_call_says_it_failed(home: Home, rewind: Invoke) -> None:
    error = {"error": {"type": "server_error", "message": "boom"}}
    sid = record(home, {"request": TOOL_RUN, "status": 500, "response": error, "response_headers": JSON})
    shown = rewind("inspect", sid, "--conversation").stdout
    assert "step failed: server_error: boom" in shown and "It is 21 C." not in shown


def test_conversation_needs_an_llm_call(home: Home, rewind: Invoke) -> None:
    sid = record(home, {"kind": "http", "provider": None})
    result = rewind("inspect", sid, "--conversation")
    assert result.exit_code == 1 and "no LLM call" in result.stderr
