"""The aggregates behind ``rewind stats`` and the cost and failure columns of ``rewind list``.

Each is a few DuckDB queries over the ``steps`` table that return a handful of rows,
never a Python loop over steps:

    token sums ....... one row per (group, model, provider): calls and the four token
                       counts, to be priced outside the store (cost is linear in them)
    timings .......... per group and in total (GROUPING SETS): latency p50/p95 and TTFT p50
                       (``quantile_cont``, interpolated)
    failures ......... per (group, tag), counted; a failing step recorded before tags
                       existed (``tag`` NULL, ``status >= 400 OR error IS NOT NULL``) comes
                       back with the facts its tag is derived from instead

A group is a ``By``: the requested model, the provider, the session, or the local date
the step started on. Steps are chosen by start time (``since``) or by session.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb

__all__ = ["Aggregates", "By", "Failures", "Timing", "Tokens", "aggregate", "session_aggregates"]


class By(StrEnum):
    """What ``rewind stats`` groups steps by."""

    MODEL = "model"
    PROVIDER = "provider"
    SESSION = "session"
    DAY = "day"


# The group key of a step, as SQL; the local day is computed apart (``_local_day``).
_KEYS = {By.MODEL: "model", By.PROVIDER: "provider", By.SESSION: "session_id"}
_EPOCH = datetime.date(1970, 1, 1)
_FAILING = "(tag IS NOT NULL OR status >= 400 OR error IS NOT NULL)"


@dataclass(frozen=True)
class Tokens:
    """Calls and token sums of one (group, requested model, provider)."""

    key: str | None
    model: str | None
    provider: str | None
    calls: int
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    reported_models: tuple[str, ...] = ()  # what the provider said answered
    unreported: int = 0  # successful calls whose response carried no token counts


@dataclass(frozen=True)
class Timing:
    """Latency and time-to-first-token quantiles (ms) of a group, or of all (``total``)."""

    key: str | None
    total: bool
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    ttft_p50_ms: float | None


@dataclass(frozen=True)
class Failures:
    """``count`` failing steps of a group with this ``tag``; for steps without a stored
    tag (recorded before tags), the facts to derive it from instead."""

    key: str | None
    tag: str | None
    count: int
    status: int | None = None
    error: str | None = None
    error_type: str | None = None
    finish_reason: str | None = None


@dataclass(frozen=True)
class Aggregates:
    """What the index says about a set of steps, grouped."""

    tokens: list[Tokens]
    timings: list[Timing] = field(default_factory=list)
    failures: list[Failures] = field(default_factory=list)
    names: dict[str, str | None] = field(default_factory=dict)  # session id -> name


def aggregate(conn: duckdb.DuckDBPyConnection, by: By, since: float | None) -> Aggregates:
    """Tokens, timings and failures of the steps started at or after ``since``, by ``by``."""
    where, params = ("WHERE started_at >= ?", [since]) if since is not None else ("", [])
    key = _local_day(conn, where, params) if by == By.DAY else _KEYS[By(by)]
    agg = Aggregates(
        tokens=_tokens(conn, key, where, params, reported=by == By.MODEL),
        timings=_timings(conn, key, where, params),
        failures=_failures(conn, key, where, params),
        names=_session_names(conn) if by == By.SESSION else {},
    )
    return _dated(agg) if by == By.DAY else agg


def session_aggregates(conn: duckdb.DuckDBPyConnection, sessions_sql: str, params: list[Any]) -> Aggregates:
    """Tokens and failures of each session ``sessions_sql`` selects the id of (by session id)."""
    where = f"WHERE session_id IN ({sessions_sql})"
    return Aggregates(
        tokens=_tokens(conn, "session_id", where, params, reported=False),
        failures=_failures(conn, "session_id", where, params),
    )


def _tokens(
    conn: duckdb.DuckDBPyConnection, key: str, where: str, params: list[Any], *, reported: bool
) -> list[Tokens]:
    models = "list(DISTINCT response_model) FILTER (WHERE response_model IS NOT NULL)" if reported else "[]"
    rows = conn.execute(
        f"""
        SELECT {key} AS key, CASE WHEN kind = 'llm' THEN model END AS priced_model, provider, count(*),
               coalesce(sum(input_tokens), 0), coalesce(sum(output_tokens), 0),
               coalesce(sum(cache_read_tokens), 0), coalesce(sum(cache_write_tokens), 0),
               {models},
               count(*) FILTER (WHERE kind = 'llm' AND status BETWEEN 200 AND 299
                                AND input_tokens IS NULL AND output_tokens IS NULL)
        FROM steps {where} GROUP BY ALL
        """,
        params,
    ).fetchall()
    return [_token_row(row) for row in rows]


def _token_row(row: tuple[Any, ...]) -> Tokens:
    key, model, provider, calls, inp, out, read, write, reported, unreported = row
    models = tuple(sorted(reported or ()))
    return Tokens(key, model, provider, calls, inp, out, read, write, models, unreported)


_QUANTILES = "quantile_cont(latency_ms, [0.5, 0.95]), quantile_cont(ttft_ms, 0.5)"


def _timings(conn: duckdb.DuckDBPyConnection, key: str, where: str, params: list[Any]) -> list[Timing]:
    """Per group, then in total: two queries run faster than one with GROUPING SETS."""
    groups = conn.execute(f"SELECT {key} AS key, {_QUANTILES} FROM steps {where} GROUP BY ALL", params)
    rows = [(key, False, *rest) for key, *rest in groups.fetchall()]
    total = conn.execute(f"SELECT NULL, {_QUANTILES} FROM steps {where}", params).fetchall()
    return [_timing(*row) for row in rows + [(None, True, *total[0][1:])]]


def _timing(key: Any, total: bool, latency: list[float] | None, ttft: float | None) -> Timing:
    p50, p95 = latency if latency is not None else (None, None)
    return Timing(key, total, p50, p95, ttft)


def _failures(conn: duckdb.DuckDBPyConnection, key: str, where: str, params: list[Any]) -> list[Failures]:
    legacy = "CASE WHEN tag IS NULL THEN {} END"
    facts = ", ".join(legacy.format(c) for c in ("status", "error", "error_type", "finish_reason"))
    condition = f"{where} AND {_FAILING}" if where else f"WHERE {_FAILING}"
    rows = conn.execute(
        f"SELECT {key} AS key, tag, count(*), {facts} FROM steps {condition} GROUP BY ALL",
        params,
    ).fetchall()
    return [Failures(*row) for row in rows]


def _session_names(conn: duckdb.DuckDBPyConnection) -> dict[str, str | None]:
    return dict(conn.execute("SELECT id, name FROM sessions").fetchall())


# --- the local day -------------------------------------------------------------------
#
# DuckDB's own conversion (``CAST(to_timestamp(t) AS DATE)``, through ICU) costs ~0.2 s
# per million steps. Local time is UTC plus an offset that changes only at a few
# transitions (daylight saving), so the key is the day number of ``t + offset`` with a
# CASE over the transitions in the steps' time range, found here with Python's own
# time-zone rules; day numbers become dates on the few result rows.


def _local_day(conn: duckdb.DuckDBPyConnection, where: str, params: list[Any]) -> str:
    bounds = f"SELECT min(started_at), max(started_at) FROM steps {where}"
    lo, hi = conn.execute(bounds, params).fetchone() or (None, None)
    spans = _offsets(lo, hi) if lo is not None and hi is not None else [(math.inf, 0)]
    day = "CAST(floor((started_at + {}) / 86400) AS INTEGER)"
    cases = " ".join(f"WHEN started_at < {until!r} THEN {day.format(off)}" for until, off in spans[:-1])
    last = day.format(spans[-1][1])
    return f"(CASE {cases} ELSE {last} END)" if cases else last


def _offsets(lo: float, hi: float) -> list[tuple[float, int]]:
    """(until, UTC offset in seconds) spans covering [lo, hi]: each offset holds before
    its ``until``; the last one holds from then on."""
    spans: list[tuple[float, int]] = []
    t, offset = lo, _offset(lo)
    while t < hi:
        nxt = min(t + _DAY, hi)
        if _offset(nxt) != offset:
            change = _transition(t, nxt, offset)
            spans.append((change, offset))
            offset, nxt = _offset(change), change
        t = nxt
    return [*spans, (math.inf, offset)]


_DAY = 86400.0


def _offset(t: float) -> int:
    delta = datetime.datetime.fromtimestamp(t).astimezone().utcoffset()
    return int(delta.total_seconds()) if delta is not None else 0


def _transition(lo: float, hi: float, before: int) -> float:
    """The first whole second in (lo, hi] whose offset is not ``before``."""
    lo_s, hi_s = math.floor(lo), math.ceil(hi)
    while hi_s - lo_s > 1:
        mid = (lo_s + hi_s) // 2
        lo_s, hi_s = (mid, hi_s) if _offset(mid) == before else (lo_s, mid)
    return float(hi_s)


def _dated(agg: Aggregates) -> Aggregates:
    """Day numbers as ISO dates."""
    return Aggregates(
        tokens=[dataclasses.replace(t, key=_date(t.key)) for t in agg.tokens],
        timings=[dataclasses.replace(t, key=_date(t.key)) for t in agg.timings],
        failures=[dataclasses.replace(f, key=_date(f.key)) for f in agg.failures],
    )


def _date(day: Any) -> str | None:
    return None if day is None else (_EPOCH + datetime.timedelta(days=int(day))).isoformat()
