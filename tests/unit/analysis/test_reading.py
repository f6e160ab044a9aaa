"""Tests of rewind.analysis.reading: what a step gave the agent, its cost, its tag."""

from __future__ import annotations

import json
from dataclasses import replace
from types import MappingProxyType
from typing import Any

import pytest

from rewind.analysis import reading
from rewind.analysis.pricing import Price, PriceTable
from rewind.analysis.reading import (
    NO_USAGE,
    answer_message,
    last_llm_step,
    meaning_of,
    received,
    session_cost,
    step_cost,
    tag_of,
    transcript,
)
from rewind.canon.meaning import Meaning, ToolCall
from rewind.store.models import StepRecord

TABLE = PriceTable(
    as_of="2026-01-01",
    source=(),
    models=MappingProxyType(
        {"gpt-4o": Price(input=2.0, output=10.0), "gpt-4o-2024-05-13": Price(input=5.0, output=15.0)}
    ),
)


def step(**fields: Any) -> StepRecord:
    base: dict[str, Any] = {
        "session_id": "s",
        "step": 1,
        "kind": "llm",
        "method": "POST",
        "url": "https://api.openai.com/v1/chat/completions",
        "started_at": 0.0,
        "fingerprint": "v1:0",
        "request_headers": (),
        "request_sha": "0",
        "provider": "openai",
        "model": "gpt-4o",
        "status": 200,
        "response_headers": (("Content-Type", "application/json"),),
        "input_tokens": 1_000_000,
        "output_tokens": 100_000,
    }
    return StepRecord(**(base | fields))


def sse(*chunks: Any) -> bytes:
    return b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"


def test_public_api() -> None:
    assert "received" in reading.__all__ and "session_cost" in reading.__all__


def test_a_priced_step_costs_its_tokens() -> None:
    cost = step_cost(TABLE, step())
    assert cost.usd == pytest.approx(3.0) and cost.model == "gpt-4o" and cost.why_none is None


def test_the_requested_model_is_priced_as_stats_and_list_price_it() -> None:
    assert step_cost(TABLE, step(response_model="gpt-4o-2024-05-13")).usd == pytest.approx(3.0)
    assert step_cost(TABLE, step(model=None, response_model="gpt-4o-2024-05-13")).usd == pytest.approx(6.5)


def test_unknown_model_and_missing_usage_are_none_never_zero() -> None:
    unpriced = step_cost(TABLE, step(model="my-local-model"))
    assert unpriced.usd is None and unpriced.why_none == "no price for my-local-model"
    silent = step_cost(TABLE, step(input_tokens=None, output_tokens=None))
    assert silent.usd is None and silent.why_none == NO_USAGE
    assert step_cost(TABLE, step(kind="http", provider=None)).usd is None


def test_session_cost_sums_known_costs_and_counts_unpriced_calls() -> None:
    steps = [
        step(),
        step(step=2, model="my-local-model"),
        step(step=3, status=429, input_tokens=None, output_tokens=None),  # failed: no tokens
        step(step=4, kind="http", provider=None),
    ]
    total = session_cost(TABLE, steps)
    assert (total.usd, total.unpriced_calls, total.llm_calls) == (pytest.approx(3.0), 1, 3)


def test_session_cost_is_none_when_every_call_is_unpriced_and_zero_without_calls() -> None:
    assert session_cost(TABLE, [step(model="nope")]).usd is None
    assert session_cost(TABLE, [step(kind="http", provider=None)]).usd == 0


def test_tag_is_the_recorded_one_else_derived() -> None:
    assert tag_of(step(tag="timeout")) == "timeout"
    assert tag_of(step(status=429)) == "rate_limited"
    assert tag_of(step()) is None


def test_received_assembles_a_stream_and_keeps_usage_unreported() -> None:
    body = sse(
        {"choices": [{"index": 0, "delta": {"content": "Hel"}}]},
        {"choices": [{"index": 0, "delta": {"content": "lo"}, "finish_reason": "stop"}]},
    )
    record = step(
        streamed=True,
        chunks=((5.0, 10), (9.0, 10)),
        ttft_ms=5.0,
        input_tokens=None,
        output_tokens=None,
        response_headers=(("content-type", "text/event-stream"),),
    )
    seen = received(record, body, TABLE)
    assert (seen.meaning.text, seen.meaning.finish_reason, seen.chunks) == ("Hello", "stop", 2)
    doc = seen.to_json()
    assert doc["usage"] == dict.fromkeys(
        ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
    )
    assert doc["cost_usd"] is None and doc["tag"] is None and doc["text"] == "Hello"


def test_transcript_ends_with_the_calls_own_answer() -> None:
    request = {
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "weather?"},
        ]
    }
    answer = {"choices": [{"index": 0, "message": {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}
    ]}, "finish_reason": "tool_calls"}]}  # fmt: skip
    record = step()
    messages = transcript(
        record, json.dumps(request).encode(), meaning_of(record, json.dumps(answer).encode())
    )
    assert [m.role for m in messages] == ["system", "user", "assistant"]
    assert messages[-1].tool_calls == (ToolCall("get_weather", {"city": "Paris"}),)


def test_an_error_is_no_answer() -> None:
    assert answer_message(Meaning(kind="llm", status=429, error_type="rate_limit_exceeded")) is None
    assert answer_message(Meaning(kind="http", status=200, body={"a": 1})) is None


def test_last_llm_step_skips_plain_http() -> None:
    steps = [step(), step(step=2), step(step=3, kind="http", provider=None)]
    assert last_llm_step(steps) == steps[1]
    assert last_llm_step([replace(steps[2])]) is None
