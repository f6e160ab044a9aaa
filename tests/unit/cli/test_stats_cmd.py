"""``rewind stats`` through the CLI, on sessions written by the store."""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

from rewind.analysis.pricing import bundled_prices
from rewind.store.home import Home
from rewind.store.ids import new_session_id
from rewind.store.models import SessionStart
from rewind.store.writer import SessionWriter

from .conftest import URL, Invoke, make_step

DAY = 86400.0
GPT_4O = bundled_prices().models["gpt-4o"]


def record(
    home: Home, steps: list[dict[str, Any]], name: str = "s", exit_code: int = 0, age: float = 0
) -> str:
    """A finished session of conftest's gpt-4o step with these fields changed; its id."""
    started = time.time() - age
    start = SessionStart(new_session_id(), name, "record", started, ("agent",), "/w")
    writer = SessionWriter(home, start)
    for number, changes in enumerate(steps, start=1):
        base = dataclasses.replace(make_step(writer, URL, b"{}"), step=number, started_at=started + number)
        writer.add_step(dataclasses.replace(base, **changes))
    writer.finish(exit_code, b"", b"", ended_at=started + 60)
    return writer.session_id


def usd(inp: int, out: int) -> float:
    assert GPT_4O is not None
    return (inp * GPT_4O.input + out * GPT_4O.output) / 1e6


def test_stats_json_by_model(home: Home, rewind: Invoke) -> None:
    record(
        home,
        [{"latency_ms": 100.0, "ttft_ms": 20.0}, {"latency_ms": 300.0, "status": 429, "tag": "rate_limited"}],
    )
    record(home, [{"model": "no-such-model-x", "latency_ms": 50.0}])
    doc = json.loads(rewind("stats", "--json").stdout)
    assert doc["by"] == "model" and doc["days"] is None and doc["prices"]["as_of"] == bundled_prices().as_of
    gpt, other = doc["rows"]
    assert gpt == {
        "key": "gpt-4o", "calls": 2, "input_tokens": 6, "output_tokens": 8, "cache_read_tokens": 0,
        "cache_write_tokens": 0, "latency_p50_ms": 200.0, "latency_p95_ms": 290.0, "ttft_p50_ms": 20.0,
        "errors": 1, "tags": {"rate_limited": 1}, "cost_usd": usd(6, 8), "unpriced_calls": 0,
        "unpriced_models": [],
    }  # fmt: skip
    assert (other["key"], other["cost_usd"], other["unpriced_calls"]) == ("no-such-model-x", None, 1)
    total = doc["total"]
    assert "key" not in total and (total["calls"], total["errors"], total["unpriced_calls"]) == (3, 1, 1)
    assert total["cost_usd"] == usd(6, 8) and total["unpriced_models"] == ["no-such-model-x"]


def test_days_and_other_groupings(home: Home, rewind: Invoke) -> None:
    old = record(home, [{}], name="old", age=10 * DAY)
    new = record(home, [{}, {"provider": "anthropic", "model": "claude-sonnet-4"}], name="new")
    by_session = json.loads(rewind("stats", "--by", "session", "--json").stdout)["rows"]
    assert [(r["key"], r["name"], r["calls"]) for r in by_session] == [(new, "new", 2), (old, "old", 1)]
    recent = json.loads(rewind("stats", "--days", "7", "--by", "provider", "--json").stdout)
    assert recent["days"] == 7
    assert sorted((r["key"], r["calls"]) for r in recent["rows"]) == [("anthropic", 1), ("openai", 1)]
    assert len(json.loads(rewind("stats", "--by", "day", "--json").stdout)["rows"]) == 2


def test_table_shows_totals_tags_unpriced_and_the_price_date(home: Home, rewind: Invoke) -> None:
    record(home, [{"status": 429, "tag": "rate_limited"}, {"model": "no-such-model-x"}])
    out = rewind("stats").stdout
    for text in (
        "MODEL",
        "TOTAL",
        "1 (rate_limited×1)",
        "unpriced",
        f"Prices as of {bundled_prices().as_of}",
    ):
        assert text in out, text
    assert "Unpriced, left out of cost: 1 call(s) of no-such-model-x." in out
    assert "≥" in out  # the total mixes priced and unpriced calls


def test_a_price_override_is_used_and_named(home: Home, rewind: Invoke, tmp_path: Any) -> None:
    record(home, [{"model": "my-model", "input_tokens": 1_000_000, "output_tokens": 0}])
    override = tmp_path / "prices.json"
    override.write_text(json.dumps({"models": {"my-model": {"input": 3.0, "output": 1.0}}}))
    doc = json.loads(rewind("stats", "--json", REWIND_PRICES=str(override)).stdout)
    assert doc["total"]["cost_usd"] == 3.0 and doc["prices"]["overrides"] == [str(override)]


def test_no_calls_is_said_on_stderr(rewind: Invoke) -> None:
    result = rewind("stats")
    assert result.exit_code == 0 and result.stdout == "" and "No calls recorded yet." in result.stderr
    doc = json.loads(rewind("stats", "--json").stdout)
    assert doc["rows"] == [] and doc["total"]["calls"] == 0 and doc["total"]["cost_usd"] == 0.0


def test_bad_grouping_lists_the_valid_ones(rewind: Invoke) -> None:
    result = rewind("stats", "--by", "week")
    assert result.exit_code == 2 and "'model', 'provider', 'session', 'day'" in result.stderr
