"""Stats and session summaries: the store's aggregates with prices and failure tags applied.

The store sums tokens per (group, model, provider); here each sum is priced once
(``cost_of_totals``: cost is linear in token counts, so this equals the sum of per-step
costs) and the group's cost is the sum of its priced parts. The rules for cost:

    a step with no model (a plain HTTP call) .......... costs nothing, is not "unpriced"
    a step whose model the price table prices ......... priced from its token counts
    a step whose model it does not price .............. unpriced: counted in
                                                        ``unpriced_calls``, never as $0
    a group with unpriced calls and no priced ones .... ``cost_usd`` None
    a group with both ................................. the priced part, ``partial``

Failure tags come from the stored ``tag``; for steps recorded before tags existed, from
the facts the store returns with them (``rewind.analysis.tags.failure_tag``). A session
is failed by ``session_failed`` (its exit code, else its tags).

These records are what every view renders: ``rewind stats`` and ``rewind list``, as
tables and as ``--json``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from rewind.analysis.pricing import PriceTable, cost_of_totals
from rewind.analysis.tags import StepFacts, Tag, failure_tag, session_failed, step_tag
from rewind.canon.providers import Usage
from rewind.store.models import SessionInfo, StepRecord
from rewind.store.stats import Aggregates, By, Failures, Timing, Tokens

__all__ = [
    "By",
    "Cost",
    "SessionSummary",
    "Stats",
    "StatsRow",
    "price_parts",
    "session_summaries",
    "stats",
    "steps_cost",
    "summarize_steps",
    "tag_counts",
]


@dataclass(frozen=True)
class Cost:
    """What some calls cost: ``usd`` None when none of them could be priced."""

    usd: float | None = 0.0
    unpriced_calls: int = 0
    unpriced_models: tuple[str, ...] = ()

    @property
    def partial(self) -> bool:
        """Some calls are priced, others are not: ``usd`` is a lower bound."""
        return self.usd is not None and self.unpriced_calls > 0


@dataclass(frozen=True)
class StatsRow:
    """One group of ``rewind stats`` (or the total: ``key`` None)."""

    key: str | None
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    ttft_p50_ms: float | None = None
    tags: Mapping[str, int] = field(default_factory=dict)
    cost: Cost = Cost()
    name: str | None = None  # the session's name (by session)
    reported_models: tuple[str, ...] = ()  # what the provider said answered (by model)

    @property
    def errors(self) -> int:
        return sum(self.tags.values())


@dataclass(frozen=True)
class Stats:
    """``rewind stats``: rows by ``by``, their total, and the prices used."""

    by: By
    days: int | None
    prices: PriceTable
    rows: list[StatsRow]
    total: StatsRow


@dataclass(frozen=True)
class SessionSummary:
    """A session's cost and failure tags, and whether it failed."""

    cost: Cost
    tags: Mapping[str, int]
    failed: bool


def stats(agg: Aggregates, by: By, days: int | None, prices: PriceTable) -> Stats:
    """The rows of ``rewind stats`` from the store's aggregates."""
    tokens = _grouped(agg.tokens)
    tags = tag_counts(agg.failures)
    timings = {t.key: t for t in agg.timings if not t.total}
    total_timing = next((t for t in agg.timings if t.total), None)
    rows = [
        _row(key, parts, timings.get(key), tags.get(key, {}), prices, agg.names.get(key or ""))
        for key, parts in tokens.items()
    ]
    total = _row(None, agg.tokens, total_timing, _sum_tags(tags.values()), prices, None)
    return Stats(by, days, prices, _ordered(rows, by), total)


def _grouped(tokens: Iterable[Tokens]) -> dict[str | None, list[Tokens]]:
    groups: dict[str | None, list[Tokens]] = {}
    for part in tokens:
        groups.setdefault(part.key, []).append(part)
    return groups


def _row(
    key: str | None,
    parts: Sequence[Tokens],
    timing: Timing | None,
    tags: Mapping[str, int],
    prices: PriceTable,
    name: str | None,
) -> StatsRow:
    return StatsRow(
        key=key,
        calls=sum(p.calls for p in parts),
        input_tokens=sum(p.input_tokens for p in parts),
        output_tokens=sum(p.output_tokens for p in parts),
        cache_read_tokens=sum(p.cache_read_tokens for p in parts),
        cache_write_tokens=sum(p.cache_write_tokens for p in parts),
        latency_p50_ms=timing.latency_p50_ms if timing else None,
        latency_p95_ms=timing.latency_p95_ms if timing else None,
        ttft_p50_ms=timing.ttft_p50_ms if timing else None,
        tags=tags,
        cost=price_parts(parts, prices),
        name=name,
        reported_models=tuple(sorted({m for p in parts for m in p.reported_models})),
    )


def _ordered(rows: list[StatsRow], by: By) -> list[StatsRow]:
    """Days in date order; anything else by calls, most first, then key."""
    if by == By.DAY:
        return sorted(rows, key=lambda r: r.key or "")
    return sorted(rows, key=lambda r: (-r.calls, r.key is None, r.key or ""))


def price_parts(parts: Iterable[Tokens], prices: PriceTable) -> Cost:
    """The cost of token sums by (model, provider), by the rules of the module docstring."""
    usd, priced, unpriced, unreported = 0.0, 0, Counter[str](), 0
    for part in parts:
        if part.model is None:
            continue
        dollars = cost_of_totals(prices, part.model, part.provider, _usage(part))
        if dollars is None:
            unpriced[part.model] += part.calls
        else:  # a call that reported no usage has an unknown cost, not a zero one
            usd, priced = usd + dollars, priced + part.calls - part.unreported
            unreported += part.unreported
    missing = sum(unpriced.values()) + unreported
    return Cost(None if missing and not priced else usd, missing, tuple(sorted(unpriced)))


def _usage(part: Tokens) -> Usage:
    return Usage(part.input_tokens, part.output_tokens, part.cache_read_tokens, part.cache_write_tokens)


def tag_counts(failures: Iterable[Failures]) -> dict[str | None, dict[str, int]]:
    """Failing steps per group and tag, deriving the tag of steps stored without one."""
    counts: dict[str | None, Counter[str]] = {}
    for row in failures:
        tag = row.tag or _derived(row)
        if tag is not None:
            counts.setdefault(row.key, Counter())[tag] += row.count
    return {key: dict(sorted(c.items())) for key, c in counts.items()}


def _derived(row: Failures) -> str | None:
    facts = StepFacts(row.status, row.error, row.error_type, None, row.finish_reason)
    tag = failure_tag(facts)
    return None if tag is None else tag.value


def _sum_tags(groups: Iterable[Mapping[str, int]]) -> dict[str, int]:
    total: Counter[str] = Counter()
    for tags in groups:
        total.update(tags)
    return dict(sorted(total.items()))


# --- sessions ------------------------------------------------------------------------


def session_summaries(
    sessions: Sequence[SessionInfo], agg: Aggregates, prices: PriceTable
) -> dict[str, SessionSummary]:
    """Cost, tags and failed-or-ok of each session, from ``Store.sessions_with_stats``."""
    tokens = _grouped(agg.tokens)
    tags = tag_counts(agg.failures)
    return {
        s.id: _summary(s.exit_code, price_parts(tokens.get(s.id, []), prices), tags.get(s.id, {}))
        for s in sessions
    }


def summarize_steps(
    info: SessionInfo, steps: Sequence[StepRecord], prices: PriceTable, step_tags: Sequence[str | None] = ()
) -> SessionSummary:
    """The same summary from one session's steps in memory (``rewind inspect``); ``step_tags``:
    each step's tag when the caller has them already."""
    each = step_tags or [s.tag or step_tag(s) for s in steps]
    tags = Counter(t for t in each if t is not None)
    return _summary(info.exit_code, steps_cost(steps, prices), dict(sorted(tags.items())))


def steps_cost(steps: Sequence[StepRecord], prices: PriceTable) -> Cost:
    """What these steps cost, priced as the per-session SQL aggregates are."""
    return price_parts([_step_tokens(s) for s in steps], prices)


def _step_tokens(s: StepRecord) -> Tokens:
    read, write = s.cache_read_tokens or 0, s.cache_write_tokens or 0
    model = s.model if s.kind == "llm" else None  # only LLM calls are priced, as in SQL
    ok = s.status is not None and 200 <= s.status < 300
    silent = ok and s.input_tokens is None and s.output_tokens is None
    return Tokens(
        s.session_id, model, s.provider, 1, s.input_tokens or 0, s.output_tokens or 0, read, write,
        unreported=int(silent),
    )




def _summary(exit_code: int | None, cost: Cost, tags: Mapping[str, int]) -> SessionSummary:
    return SessionSummary(cost, tags, session_failed(exit_code, [Tag(t) for t in tags]))
