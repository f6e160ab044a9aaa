"""Stats and session summaries: prices applied to token sums, tags counted and derived."""

from __future__ import annotations

import pytest

from rewind.analysis.pricing import Price, PriceTable
from rewind.analysis.stats import (
    Cost,
    price_parts,
    session_summaries,
    stats,
    steps_cost,
    summarize_steps,
    tag_counts,
)
from rewind.store.models import SessionInfo, StepRecord
from rewind.store.stats import Aggregates, By, Failures, Timing, Tokens

PRICES = PriceTable(
    as_of="2026-01-01",
    source=("https://example.com/prices",),
    models={"m": Price(input=2.0, output=10.0, cache_read=1.0), "retired": None},
)


def tokens(
    key: str | None, model: str | None, calls: int = 1, inp: int = 0, out: int = 0, read: int = 0
) -> Tokens:
    return Tokens(key, model, "openai", calls, inp, out, read, 0)


def test_token_sums_are_priced_with_openai_cached_tokens_inside_input() -> None:
    cost = price_parts([tokens("k", "m", 2, inp=1_000_000, out=100_000, read=400_000)], PRICES)
    assert cost == Cost(usd=pytest.approx(0.6 * 2 + 0.4 * 1 + 0.1 * 10))


def test_unpriced_models_are_never_free() -> None:
    assert price_parts([tokens("k", "unknown", 3, inp=10)], PRICES) == Cost(None, 3, ("unknown",))
    assert price_parts([tokens("k", "retired")], PRICES).usd is None  # known, deliberately unpriced


def test_a_mix_is_the_priced_part_marked_partial() -> None:
    cost = price_parts([tokens("k", "m", inp=1_000_000), tokens("k", "x", 2)], PRICES)
    assert (cost.usd, cost.unpriced_calls, cost.partial) == (2.0, 2, True)


def test_calls_without_a_model_cost_nothing_and_are_not_unpriced() -> None:
    assert price_parts([tokens("k", None, 5)], PRICES) == Cost(0.0, 0, ())


def test_tags_are_counted_and_derived_for_steps_recorded_before_tags() -> None:
    failures = [
        Failures("a", "rate_limited", 2),
        Failures("a", None, 1, status=503),
        Failures("b", None, 1, error="[Errno 110] Connection timed out"),
        Failures("b", None, 4, status=200),  # not a failure after all
    ]
    assert tag_counts(failures) == {"a": {"rate_limited": 2, "server_error": 1}, "b": {"timeout": 1}}


def test_stats_rows_total_and_order() -> None:
    agg = Aggregates(
        tokens=[tokens("m", "m", 1, inp=1_000_000), tokens("x", "x", 3, inp=5), tokens(None, None, 1)],
        timings=[Timing("m", False, 10.0, 20.0, 5.0), Timing(None, True, 11.0, 30.0, 5.0)],
        failures=[Failures("x", "timeout", 1)],
    )
    result = stats(agg, By.MODEL, 7, PRICES)
    assert [(r.key, r.calls, r.cost.usd, r.errors) for r in result.rows] == [
        ("x", 3, None, 1), ("m", 1, 2.0, 0), (None, 1, 0.0, 0)
    ]  # fmt: skip
    assert result.rows[1].latency_p95_ms == 20.0 and result.rows[0].latency_p50_ms is None
    total = result.total
    assert (total.calls, total.input_tokens, total.latency_p95_ms, dict(total.tags)) == (
        5,
        1_000_005,
        30.0,
        {"timeout": 1},
    )
    assert (total.cost.usd, total.cost.unpriced_calls, total.cost.partial) == (2.0, 3, True)


def test_days_are_in_date_order() -> None:
    agg = Aggregates(tokens=[tokens("2026-01-02", "m"), tokens("2026-01-01", "m", 5)])
    assert [r.key for r in stats(agg, By.DAY, None, PRICES).rows] == ["2026-01-01", "2026-01-02"]


def session(sid: str, exit_code: int | None) -> SessionInfo:
    return SessionInfo(sid, None, "record", 0.0, ("a",), "/", "complete", exit_code=exit_code)


def test_a_session_fails_by_its_exit_code_else_by_its_tags() -> None:
    sessions = [session("ok", 0), session("exit", 1), session("tagged", None), session("clean", None)]
    agg = Aggregates(
        tokens=[tokens("ok", "m", inp=1_000_000)],
        failures=[Failures("ok", "rate_limited", 1), Failures("tagged", "timeout", 1)],
    )
    summaries = session_summaries(sessions, agg, PRICES)
    assert {sid: s.failed for sid, s in summaries.items()} == {
        "ok": False, "exit": True, "tagged": True, "clean": False
    }  # fmt: skip
    assert summaries["ok"].cost.usd == 2.0 and summaries["ok"].tags == {"rate_limited": 1}
    assert summaries["exit"].cost == Cost(0.0)


def step(n: int, **fields: object) -> StepRecord:
    base: dict[str, object] = {"provider": "openai", "model": "m", "input_tokens": 1_000_000}
    return StepRecord("s", n, "llm", "POST", "u", 0.0, "v1:x", (), "sha", **(base | fields))  # type: ignore[arg-type]


def test_one_sessions_steps_give_the_same_summary() -> None:
    steps = [step(1), step(2, status=429, tag="rate_limited"), step(3, status=500, model="x")]
    summary = summarize_steps(session("s", None), steps, PRICES)
    assert summary.tags == {"rate_limited": 1, "server_error": 1} and summary.failed
    assert (summary.cost.usd, summary.cost.unpriced_calls) == (4.0, 1)
    assert steps_cost([steps[2]], PRICES).usd is None and steps_cost([steps[0]], PRICES).usd == 2.0


def test_a_successful_call_that_reported_no_usage_is_unpriced_not_free() -> None:
    from rewind.store.stats import Tokens

    silent = Tokens("s", "m", "openai", 2, 100, 10, 0, 0, unreported=1)
    cost = price_parts([silent], PRICES)
    assert cost.unpriced_calls == 1 and cost.partial and cost.usd is not None and cost.usd > 0
    assert price_parts([Tokens("s", "m", "openai", 1, 0, 0, 0, 0, unreported=1)], PRICES).usd is None
