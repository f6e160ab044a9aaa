"""Turning records into JSON documents and rich tables."""

from __future__ import annotations

import datetime
import json
import shlex
from collections.abc import Sequence
from typing import Any

import click
from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.syntax import Syntax
from rich.table import Table

from rewind.store.models import SessionInfo, StepRecord


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).isoformat(timespec="milliseconds")


def session_json(s: SessionInfo) -> dict[str, Any]:
    return {
        "id": s.id,
        "name": s.name,
        "mode": s.mode,
        "status": s.status,
        "started_at": iso(s.started_at),
        "ended_at": iso(s.ended_at),
        "steps": s.steps,
        "exit_code": s.exit_code,
        "command": list(s.command),
        "cwd": s.cwd,
        "git_commit": s.git_commit,
        "parent_id": s.parent_id,
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


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def console() -> Console:
    """Stdout console; wide when piped, so ids and URLs are never cut."""
    out = Console(soft_wrap=False)
    return out if out.is_terminal else Console(soft_wrap=False, width=200)


def sessions_table(sessions: Sequence[SessionInfo]) -> Table:
    table = Table()
    table.add_column("ID", no_wrap=True)
    for title in ("NAME", "STARTED", "STEPS", "TOKENS", "EXIT", "STATUS", "COMMAND"):
        table.add_column(title)
    for s in sessions:
        table.add_row(
            s.id,
            s.name or "",
            _local(s.started_at),
            str(s.steps),
            str(s.total_tokens),
            _text(s.exit_code),
            s.status,
            _short(shlex.join(s.command), 50),
        )
    return table


def steps_table(steps: Sequence[StepRecord]) -> Table:
    table = Table(
        "#", "KIND", "PROVIDER", "MODEL", "METHOD", "URL", "STATUS", "IN", "OUT", "LATENCY", "TTFT", "STREAM"
    )
    for r in steps:
        table.add_row(
            str(r.step),
            r.kind,
            r.provider or "",
            r.model or "",
            r.method,
            _short(r.url, 60),
            _status(r),
            _text(r.input_tokens),
            _text(r.output_tokens),
            _ms(r.latency_ms),
            _ms(r.ttft_ms),
            "yes" if r.streamed else "",
        )
    return table


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
        Panel(summary, title=title, title_align="left"),
        _section("request", r.request_headers, request_body),
        _section("response", r.response_headers, response_body),
    )


def _section(label: str, headers: Sequence[tuple[str, str]], body: Any) -> RenderableType:
    table = Table(show_header=False, box=None, pad_edge=False)
    for name, value in headers:
        table.add_row(f"[dim]{name}[/]", value)
    return Panel(Group(table, _body_view(body)), title=label, title_align="left")


def _body_view(body: Any) -> RenderableType:
    if isinstance(body, (dict, list)):
        text = json.dumps(body, indent=2, ensure_ascii=False)
        return Syntax(_clip(text), "json", word_wrap=True)
    return _clip(str(body)) if body != "" else "[dim](empty body)[/]"


def _clip(text: str) -> str:
    lines = text.splitlines()
    if len(lines) <= BODY_LINES:
        return text
    return "\n".join(lines[:BODY_LINES]) + f"\n… {len(lines) - BODY_LINES} more lines (use --json)"
