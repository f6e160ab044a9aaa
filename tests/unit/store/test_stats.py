"""The stats aggregates, as DuckDB computes them from the index."""

from __future__ import annotations

import dataclasses
import datetime
import math
import time
from collections.abc import Iterator
from typing import Any

import pytest

from rewind.store.home import Home
from rewind.store.index import Store
from rewind.store.stats import By, Failures, Timing, Tokens, _offsets
from rewind.store.writer import SessionWriter

from .conftest import make_start, make_step

DAY = 86400.0
T0 = 1_700_000_000.0


def write(home: Home, steps: list[dict[str, Any]], name: str = "demo", started_at: float = T0) -> str:
    """A finished session whose steps are make_step's with these fields changed."""
    writer = SessionWriter(home, make_start(name, started_at=started_at))
    sha = writer.put_blob(b"{}")
    for number, changes in enumerate(steps, start=1):
        base = make_step(writer.session_id, number, sha, sha)
        writer.add_step(dataclasses.replace(base, started_at=started_at + number, **changes))
    writer.finish(0, b"", b"", ended_at=started_at + 100)
    return writer.session_id


def mixed(home: Home) -> str:
    return write(home, [
        {"latency_ms": 10.0, "ttft_ms": 2.0, "response_model": "gpt-4o-2024-08-06"},
        {"latency_ms": 30.0, "ttft_ms": 4.0, "cache_read_tokens": 4},
        {"model": "claude-sonnet-4", "provider": "anthropic", "latency_ms": 50.0, "ttft_ms": None,
         "status": 429, "tag": "rate_limited", "input_tokens": 0, "output_tokens": 0},
        {"status": 500, "tag": None},  # recorded before tags existed
        {"kind": "http", "model": None, "provider": None, "input_tokens": None, "output_tokens": None,
         "latency_ms": None, "ttft_ms": None},
    ])  # fmt: skip


def test_tokens_are_summed_per_group_model_and_provider(home: Home) -> None:
    mixed(home)
    tokens = sorted(Store(home).stats(By.MODEL).tokens, key=lambda t: (t.model is None, t.model or ""))
    assert tokens == [
        Tokens("claude-sonnet-4", "claude-sonnet-4", "anthropic", 1, 0, 0, 0, 0),
        Tokens("gpt-4o", "gpt-4o", "openai", 3, 30, 15, 4, 0, ("gpt-4o-2024-08-06",)),
        Tokens(None, None, None, 1, 0, 0, 0, 0),
    ]


def test_timings_per_group_and_in_total(home: Home) -> None:
    mixed(home)
    timings = {(t.key, t.total): t for t in Store(home).stats(By.PROVIDER).timings}
    # latencies 10, 30 (openai), 50 (anthropic), 12.5 (openai); TTFTs 2, 4, 3: interpolated
    assert timings[None, True] == Timing(None, True, 21.25, 47.0, 3.0)
    assert timings["openai", False] == Timing("openai", False, 12.5, pytest.approx(28.25), 3.0)
    assert timings[None, False] == Timing(None, False, None, None, None)  # the plain HTTP call


def test_failures_come_tagged_or_with_the_facts_of_an_untagged_step(home: Home) -> None:
    mixed(home)
    failures = sorted(Store(home).stats(By.PROVIDER).failures, key=lambda f: str(f.tag))
    assert failures == [
        Failures("openai", None, 1, status=500),
        Failures("anthropic", "rate_limited", 1),
    ]


def test_since_keeps_later_steps_only(home: Home) -> None:
    write(home, [{}], started_at=T0)
    write(home, [{}, {}], started_at=T0 + 3 * DAY)
    [tokens] = Store(home).stats(By.MODEL, since=T0 + DAY).tokens
    assert tokens.calls == 2


def test_by_day_is_the_local_date_and_by_session_names_the_session(home: Home) -> None:
    first = write(home, [{}], name="one", started_at=T0)
    write(home, [{}, {}], name="two", started_at=T0 + 2 * DAY)
    days = {t.key: t.calls for t in Store(home).stats(By.DAY).tokens}
    local = [datetime.datetime.fromtimestamp(T0 + d * DAY + 1).date().isoformat() for d in (0, 2)]
    assert days == {local[0]: 1, local[1]: 2}
    by_session = Store(home).stats(By.SESSION)
    assert by_session.names[first] == "one" and len(by_session.tokens) == 2


def test_sessions_come_with_the_stats_of_each(home: Home) -> None:
    one = mixed(home)
    write(home, [{}], name="other", started_at=T0 - DAY)
    sessions, agg = Store(home).sessions_with_stats(limit=1)
    assert [s.id for s in sessions] == [one] and agg.timings == []
    assert {t.key for t in agg.tokens} == {one} and sum(t.calls for t in agg.tokens) == 5
    assert sum(f.count for f in agg.failures) == 2
    sessions, agg = Store(home).sessions_with_stats(name="other")
    assert [t.key for t in agg.tokens] == [s.id for s in sessions] and agg.failures == []


def test_a_home_that_does_not_exist_has_no_stats(home: Home) -> None:
    agg = Store(home).stats(By.DAY)
    assert agg.tokens == [] and agg.failures == [] and [t.total for t in agg.timings] == [True]


@pytest.fixture
def paris(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "Europe/Paris")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


SPRING_FORWARD = 1711846800.0  # 2024-03-31 01:00 UTC: Paris goes from +1 h to +2 h


@pytest.mark.usefixtures("paris")
def test_local_days_follow_daylight_saving(home: Home) -> None:
    assert _offsets(SPRING_FORWARD - DAY, SPRING_FORWARD + DAY) == [(SPRING_FORWARD, 3600), (math.inf, 7200)]
    # 23:30 UTC the day before is already the next day in Paris (+1 h), and 22:30 UTC the
    # day after too (+2 h): a single offset would get one of them wrong.
    times = [SPRING_FORWARD - 1.5 * 3600, SPRING_FORWARD + 21.5 * 3600]
    for t in times:
        write(home, [{}], started_at=t - 1)  # write() starts step 1 one second later
    days = sorted(str(t.key) for t in Store(home).stats(By.DAY).tokens)
    assert (
        days
        == [datetime.datetime.fromtimestamp(t).date().isoformat() for t in times]
        == [
            "2024-03-31",
            "2024-04-01",
        ]
    )
