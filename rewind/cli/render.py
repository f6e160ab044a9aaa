"""Turning records into JSON documents and rich tables.

Recorded content (names, commands, URLs, headers, bodies, error text) is untrusted: in a
table or panel it is a ``Text`` (never parsed as rich markup) with control characters
shown as visible ``\\x1b``-style escapes, so nothing recorded can drive the terminal.
``--json`` keeps the data exact; JSON's own escapes make it just as inert.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import re
import shlex
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import click
from rich.console import Console, Group, RenderableType
from rich.measure import Measurement
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from rewind.store.models import SessionInfo, StepRecord

if TYPE_CHECKING:  # the analysis stage is imported by the commands that need it
    from rewind.analysis.stats import Cost, SessionSummary, Stats, StatsRow

# C0, DEL, C1 (0x9b is a one-byte CSI) and the bidirectional overrides that reorder text.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# What JSON leaves raw inside strings (ensure_ascii=False) that a terminal might act on.
_RAW_IN_JSON = re.compile("[\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029]")
_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}
BODY_KEEP = "\n\t"


def visible(text: str, keep: str = "") -> str:
    """``text`` with control characters, except those in ``keep``, as visible escapes."""
    return _CONTROL.sub(lambda m: m.group() if m.group() in keep else _escape(m.group()), text)


def _escape(char: str) -> str:
    code = ord(char)
    return _NAMED.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def cell(value: object) -> Text:
    """Recorded content for a table or panel: literal text, control characters escaped."""
    return Text(visible("" if value is None else str(value)))


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).isoformat(timespec="milliseconds")


def session_json(s: SessionInfo, summary: SessionSummary | None = None) -> dict[str, Any]:
    """A session as JSON; with its ``summary``, also ``cost_usd``, ``unpriced_calls``,
    ``failed`` and ``tags`` (failure tag -> steps)."""
    return {**_session_fields(s), **(summary_json(summary) if summary is not None else {})}


def summary_json(summary: SessionSummary) -> dict[str, Any]:
    return {
        "cost_usd": summary.cost.usd,
        "unpriced_calls": summary.cost.unpriced_calls,
        "failed": summary.failed,
        "tags": dict(summary.tags),
    }


def _session_fields(s: SessionInfo) -> dict[str, Any]:
    return {
        "id": s.id,
        "name": s.name,
        "mode": s.mode,
        "status": s.status,
        "started_at": iso(s.started_at),
        "ended_at": iso(s.ended_at),
        "steps": s.steps,
        "lost": s.lost,
        "exit_code": s.exit_code,
        "command": list(s.command),
        "cwd": s.cwd,
        "git_commit": s.git_commit,
        "parent_id": s.parent_id,
        "parent": s.parent_id,
        "fork_step": s.fork_step,
        "fault": s.fault,
        "input_tokens": s.input_tokens,
        "output_tokens": s.output_tokens,
    }


def step_json(r: StepRecord) -> dict[str, Any]:
    return {
        "step": r.step,
        "kind": r.kind,
        "provider": r.provider,
        "model": r.model,
        "method": r.method,
        "url": r.url,
        "status": r.status,
        "error": r.error,
        "started_at": iso(r.started_at),
        "input_tokens": r.input_tokens,
        "output_tokens": r.output_tokens,
        "cache_read_tokens": r.cache_read_tokens,
        "cache_write_tokens": r.cache_write_tokens,
        "latency_ms": _round(r.latency_ms),
        "ttft_ms": _round(r.ttft_ms),
        "streamed": r.streamed,
        "chunks": len(r.chunks) if r.chunks is not None else None,
        "fingerprint": r.fingerprint,
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def json_text(data: Any) -> str:
    """Exact JSON; the few characters JSON may leave raw are written as ``\\uXXXX``."""
    text = json.dumps(data, indent=2, ensure_ascii=False)
    return _RAW_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def emit_json(data: Any) -> None:
    click.echo(json_text(data))


def console() -> Console:
    """Stdout console: a terminal's width, else ``$COLUMNS``, else (see ``show``) none."""
    return Console(soft_wrap=False)


def show(*renderables: RenderableType) -> None:
    """Print to stdout; on a pipe without ``$COLUMNS``, at the output's natural width, so
    nothing is wrapped or cut."""
    out = console()
    if not out.is_terminal and not os.environ.get("COLUMNS", "").isdigit():
        out.width = natural_width(out, renderables)
    out.print(*renderables)


UNBOUNDED = 100_000


def natural_width(out: Console, renderables: Sequence[RenderableType]) -> int:
    """The widest of ``renderables`` laid out without a width limit."""
    options = out.options.update_width(UNBOUNDED)
    return max((Measurement.get(out, options, r).maximum for r in renderables), default=1)


SESSION_COLUMNS = ("ID", "NAME", "MODE", "STARTED", "STEPS", "TOKENS", "EXIT", "STATUS")


def sessions_table(
    sessions: Sequence[SessionInfo], summaries: Mapping[str, SessionSummary] | None = None
) -> Table:
    """One row per session; LOST and PARENT columns when any session has one; COST and
    RESULT (ok / failed, with failure tags) when ``summaries`` are given."""
    lost, parents = any(s.lost for s in sessions), any(s.parent_id for s in sessions)
    titles = SESSION_COLUMNS + (("COST", "RESULT") if summaries is not None else ())
    titles += (("LOST",) if lost else ()) + (("PARENT",) if parents else ())
    table = Table()
    for title in (*titles, "COMMAND"):
        table.add_column(title, no_wrap=title in ("ID", "PARENT"), justify=_JUSTIFY.get(title, "left"))
    for s in sessions:
        judged = _judged(summaries[s.id]) if summaries is not None else []
        extra = judged + ([cell(s.lost)] if lost else []) + ([cell(s.parent_id)] if parents else [])
        table.add_row(*[cell(v) for v in _session_row(s)], *extra, cell(_command(s, 50)))
    return table


_JUSTIFY: dict[str, Any] = {"STEPS": "right", "TOKENS": "right", "COST": "right"}


def _judged(summary: SessionSummary) -> list[Text]:
    """The COST and RESULT cells of a session."""
    verdict = "failed" if summary.failed else "ok"
    tags = tags_text(summary.tags)
    result = Text(verdict + (f": {tags}" if tags else ""), style="red" if summary.failed else "")
    return [Text(cost_text(summary.cost)), result]


def cost_text(cost: Cost) -> str:
    """``$0.0123``; ``unpriced`` when nothing could be priced; ``≥$0.0123`` when partly."""
    if cost.usd is None:
        return "unpriced"
    return ("≥" if cost.partial else "") + usd_text(cost.usd)


def usd_text(usd: float) -> str:
    if usd == 0:
        return "$0.00"
    if usd >= 1:
        return f"${usd:,.2f}"
    decimals = min(8, max(4, 1 - math.floor(math.log10(usd))))  # two significant digits
    return f"${usd:.{decimals}f}"


def tags_text(tags: Mapping[str, int]) -> str:
    """``rate_limited×2, timeout×1``: failing steps by tag."""
    return ", ".join(f"{tag}×{n}" for tag, n in tags.items())


def _session_row(s: SessionInfo) -> tuple[object, ...]:
    return (s.id, s.name, s.mode, _local(s.started_at), s.steps, s.total_tokens, s.exit_code, s.status)


def _command(s: SessionInfo, width: int) -> str:
    return _short(shlex.join(s.command), width)


def session_header(info: SessionInfo) -> Text:
    """The lines above ``inspect``'s steps table: who, what, when, how it was made."""
    first = Text.assemble(
        (visible(info.id), "bold"), " ", cell(info.name), "  ", cell(shlex.join(info.command))
    )
    second = f"started {iso(info.started_at)}  exit {_text(info.exit_code)}  status {info.status}"
    second += f"  mode {info.mode}" + (f"  parent {info.parent_id}" if info.parent_id else "")
    second += f"  fork at step {info.fork_step}" if info.fork_step is not None else ""
    second += f"  fault {info.fault}" if info.fault else ""
    second += f"  NOT RECORDED {info.lost} call(s)" if info.lost else ""
    return Text("\n").join([first, cell(second)])


def steps_table(steps: Sequence[StepRecord]) -> Table:
    table = Table(
        "#", "KIND", "PROVIDER", "MODEL", "METHOD", "URL", "STATUS", "IN", "OUT", "LATENCY", "TTFT", "STREAM"
    )
    for r in steps:
        table.add_row(*[cell(v) for v in _step_row(r)])
    return table


def _step_row(r: StepRecord) -> tuple[object, ...]:
    return (
        r.step,
        r.kind,
        r.provider,
        r.model,
        r.method,
        _short(r.url, 60),
        _status(r),
        r.input_tokens,
        r.output_tokens,
        _ms(r.latency_ms),
        _ms(r.ttft_ms),
        "yes" if r.streamed else "",
    )


class GapLike(Protocol):
    """A step that could not be recorded (the store's ``Gap``)."""

    @property
    def step(self) -> int: ...

    @property
    def reason(self) -> str: ...


def gaps_lines(gaps: Sequence[GapLike]) -> list[Text]:
    """One line per step that was not recorded: ``step N: NOT RECORDED: reason``."""
    return [
        Text.assemble(f"step {g.step}: ", ("NOT RECORDED", "bold red"), ": ", cell(g.reason))
        for g in sorted(gaps, key=lambda g: g.step)
    ]


def _status(r: StepRecord) -> str:
    return str(r.status) if r.status is not None else f"failed: {_short(r.error or '', 30)}"


def _local(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:.0f} ms"


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


BODY_LINES = 80


def step_detail(r: StepRecord, request_body: Any, response_body: Any) -> RenderableType:
    """One step in full: summary, then request and response headers and bodies."""
    timing = f"latency {_ms(r.latency_ms)}  ttft {_ms(r.ttft_ms)}"
    tokens = f"tokens in {_text(r.input_tokens)} out {_text(r.output_tokens)}"
    chunks = f"  {len(r.chunks)} chunks" if r.chunks is not None else ""
    title = f"step {r.step}  {r.kind} {r.provider or ''} {r.model or ''}  {_status(r)}"
    summary = f"{r.method} {r.url}\n{timing}  {tokens}{chunks}\nfingerprint {r.fingerprint}"
    return Group(
        Panel(Text(visible(summary, keep="\n")), title=cell(title), title_align="left"),
        _section("request", r.request_headers, request_body),
        _section("response", r.response_headers, response_body),
    )


def _section(label: str, headers: Sequence[tuple[str, str]], body: Any) -> RenderableType:
    table = Table(show_header=False, box=None, pad_edge=False)
    for name, value in headers:
        table.add_row(Text(visible(name), style="dim"), cell(value))
    return Panel(Group(table, _body_view(body)), title=label, title_align="left")


def _body_view(body: Any) -> RenderableType:
    if isinstance(body, (dict, list)):
        from rich.syntax import Syntax  # pygments: only for a step shown in full

        return Syntax(visible(_clip(json_text(body)), keep=BODY_KEEP), "json", word_wrap=True)
    if body == "":
        return Text("(empty body)", style="dim")
    return Text(visible(_clip(str(body)), keep=BODY_KEEP))


def _clip(text: str) -> str:
    lines = text.splitlines()
    if len(lines) <= BODY_LINES:
        return text
    return "\n".join(lines[:BODY_LINES]) + f"\n… {len(lines) - BODY_LINES} more lines (use --json)"


# --- rewind stats --------------------------------------------------------------------


def stats_json(result: Stats) -> dict[str, Any]:
    """The documented JSON of ``rewind stats`` (docs/stats.md)."""
    prices = result.prices
    return {
        "by": result.by.value,
        "days": result.days,
        "prices": {"as_of": prices.as_of, "source": list(prices.source), "overrides": list(prices.overrides)},
        "rows": [stats_row_json(row) for row in result.rows],
        "total": {k: v for k, v in stats_row_json(result.total).items() if k != "key"},
    }


def stats_row_json(row: StatsRow) -> dict[str, Any]:
    doc: dict[str, Any] = {"key": row.key}
    if row.name is not None:
        doc["name"] = row.name
    if row.reported_models:
        doc["reported_models"] = list(row.reported_models)
    return doc | {
        "calls": row.calls,
        "input_tokens": row.input_tokens,
        "output_tokens": row.output_tokens,
        "cache_read_tokens": row.cache_read_tokens,
        "cache_write_tokens": row.cache_write_tokens,
        "latency_p50_ms": _round(row.latency_p50_ms),
        "latency_p95_ms": _round(row.latency_p95_ms),
        "ttft_p50_ms": _round(row.ttft_p50_ms),
        "errors": row.errors,
        "tags": dict(row.tags),
        "cost_usd": row.cost.usd,
        "unpriced_calls": row.cost.unpriced_calls,
        "unpriced_models": list(row.cost.unpriced_models),
    }


STATS_COLUMNS = ("CALLS", "IN", "OUT", "CACHE R", "CACHE W", "P50", "P95", "TTFT P50", "ERRORS", "COST")


def stats_table(result: Stats) -> Table:
    """One row per group, then the total; the caption names the prices and what is unpriced."""
    table = Table(caption=stats_caption(result), caption_justify="left")
    table.add_column(result.by.value.upper())
    for title in STATS_COLUMNS:
        table.add_column(title, justify="left" if title == "ERRORS" else "right")
    for i, row in enumerate(result.rows):
        table.add_row(*_stats_cells(row, result), end_section=i == len(result.rows) - 1)
    table.add_row(*_stats_cells(result.total, result), style="bold")
    return table


def _stats_cells(row: StatsRow, result: Stats) -> list[Text]:
    label = "TOTAL" if row is result.total else _group_label(row)
    errors = f"{row.errors} ({tags_text(row.tags)})" if row.errors else "0"
    counts = (row.calls, row.input_tokens, row.output_tokens, row.cache_read_tokens, row.cache_write_tokens)
    timings = (_ms(row.latency_p50_ms), _ms(row.latency_p95_ms), _ms(row.ttft_p50_ms))
    return [
        cell(label),
        *(Text(f"{n:,}") for n in counts),
        *(Text(t) for t in timings),
        Text(errors),
        Text(cost_text(row.cost)),
    ]


def _group_label(row: StatsRow) -> str:
    key = "—" if row.key is None else row.key
    if row.name:
        return f"{key} ({row.name})"
    others = [m for m in row.reported_models if m != row.key]
    return f"{key} ({', '.join(others)})" if others else key


def stats_caption(result: Stats) -> Text:
    """Prices: their date and file; the models left out of cost; what ``≥`` means."""
    overrides = "".join(f" + {path}" for path in result.prices.overrides)
    lines = [f"Prices as of {result.prices.as_of or 'an unknown date'} (bundled table{overrides})."]
    unpriced = result.total.cost
    if unpriced.unpriced_calls:
        models = ", ".join(unpriced.unpriced_models)
        lines.append(f"Unpriced, left out of cost: {unpriced.unpriced_calls} call(s) of {models}.")
    if any(row.cost.partial for row in (*result.rows, result.total)):
        lines.append("≥: partial cost, the priced calls only.")
    return Text(visible("\n".join(lines), keep="\n"))
