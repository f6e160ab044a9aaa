"""The JSON documents of ``list``, ``inspect``, ``diff`` and ``bisect``, built in one place.

The CLI prints them with ``--json`` and ``rewind ui`` serves them from its API, so the two
can never disagree. Click-free; each function takes the ``App`` (the store's home) and
the same references the commands take (ids, unique id prefixes or names).
"""

from __future__ import annotations

import base64
import functools
import json
from typing import TYPE_CHECKING, Any

from rewind.cli.app import App
from rewind.cli.inspect_render import conversation_json, step_cost_json
from rewind.cli.lineage import lineage_json
from rewind.cli.render import session_json
from rewind.errors import RewindError

if TYPE_CHECKING:
    from rewind.analysis.compare import Run
    from rewind.analysis.pricing import PriceTable
    from rewind.analysis.stats import SessionSummary
    from rewind.store.index import Store
    from rewind.store.models import SessionInfo, StepRecord

__all__ = [
    "bisect_document",
    "conversation_document",
    "diff_document",
    "listed_sessions",
    "pick_step",
    "session_document",
    "sessions_document",
    "step_document",
]


def prices(app: App) -> PriceTable:
    from rewind.analysis.pricing import load_prices

    return load_prices(app.home.root)


# --- list ------------------------------------------------------------------------------


def listed_sessions(
    app: App,
    limit: int | None = None,
    name: str | None = None,
    since: float | None = None,
    failed: bool = False,
) -> tuple[list[SessionInfo], dict[str, SessionSummary]]:
    """The sessions to list, newest first, and their summaries: ``failed`` filters before
    ``limit``. A home that does not exist has none (no need to start DuckDB to say so)."""
    if not app.home.root.is_dir() and app.remote is None:
        return [], {}
    from rewind.analysis.stats import session_summaries

    sessions, agg = app.store().sessions_with_stats(limit=None if failed else limit, name=name, since=since)
    summaries = session_summaries(sessions, agg, prices(app))
    if failed:
        sessions = [s for s in sessions if summaries[s.id].failed][:limit]
    return sessions, summaries


def sessions_document(
    sessions: list[SessionInfo], summaries: dict[str, SessionSummary], tree: bool = False
) -> list[dict[str, Any]]:
    """``rewind list --json`` (``--tree``: roots with nested ``children``)."""
    rows = {s.id: session_json(s, summaries[s.id]) for s in sessions}
    return lineage_json(sessions, rows) if tree else [rows[s.id] for s in sessions]


# --- inspect ---------------------------------------------------------------------------


def session_document(app: App, info: SessionInfo, steps: list[StepRecord]) -> dict[str, Any]:
    """``rewind inspect SESSION --json``: the session, its output, steps with cost and tag,
    and any exchange the recorder could not store (gaps)."""
    from rewind.analysis.reading import step_cost, tag_of
    from rewind.analysis.stats import summarize_steps  # cost and tags as `list` counts them

    store, table = app.store(), prices(app)
    costs, tags = [step_cost(table, s) for s in steps], [tag_of(s) for s in steps]
    return {
        **session_json(info, summarize_steps(info, steps, table, tags)),
        "stdout": _text_blob(store, info.stdout_sha),
        "stderr": _text_blob(store, info.stderr_sha),
        "steps": [step_cost_json(s, c, t) for s, c, t in zip(steps, costs, tags, strict=True)],
        "gaps": [{"step": g.step, "reason": g.reason} for g in store.gaps(info.id)],
    }


def _text_blob(store: Store, sha: str | None) -> str | None:
    """The command's recorded (redacted) output as text, if any was kept."""
    return None if sha is None else store.blob(sha).decode("utf-8", "replace")


def pick_step(steps: list[StepRecord], number: int) -> StepRecord:
    for step in steps:
        if step.step == number:
            return step
    raise RewindError(f"no step {number} in this session (it has {len(steps)} steps)")


def bodies(store: Store, step: StepRecord) -> tuple[bytes, bytes]:
    return store.blob(step.request_sha), store.blob(step.response_sha) if step.response_sha else b""


def step_document(app: App, step: StepRecord) -> dict[str, Any]:
    """``rewind inspect SESSION --step N --json``: the step, what it gave the agent, when
    each chunk of a stream arrived (``[ms after the request, bytes]``), and both sides in full."""
    from rewind.analysis.reading import received

    request, response = bodies(app.store(), step)
    seen = received(step, response, prices(app))
    return {
        **step_cost_json(step, seen.cost, seen.tag),
        "chunk_timing": [[t_ms, size] for t_ms, size in step.chunks] if step.chunks is not None else None,
        "received": seen.to_json(),
        "request": {"headers": [list(h) for h in step.request_headers], "body": body_json(request)},
        "response": {"headers": [list(h) for h in step.response_headers], "body": body_json(response)},
    }


def body_json(data: bytes) -> Any:
    """JSON bodies as JSON, text as text, anything else as base64."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode("ascii")}
    try:
        return json.loads(text) if text.strip() else text
    except ValueError:
        return text


def conversation_document(app: App, steps: list[StepRecord]) -> dict[str, Any]:
    """``rewind inspect SESSION --conversation --json``: the conversation the model saw
    at the last LLM call, and its answer."""
    from rewind.analysis.reading import last_llm_step, meaning_of, transcript

    step = last_llm_step(steps)
    if step is None:
        raise RewindError("this session has no LLM call to show the conversation of")
    request, response = bodies(app.store(), step)
    return conversation_json(step.step, transcript(step, request, meaning_of(step, response)))


# --- diff and bisect -------------------------------------------------------------------


def runs(app: App, a: str, b: str) -> tuple[Run, Run]:
    from rewind.analysis.compare import Run
    from rewind.store.compare_rows import compare_rows, step_details  # DuckDB: only when run

    store = app.store()
    side_a, side_b = compare_rows(store, a, b)
    fetch = functools.partial(step_details, store)
    return Run(side_a.info, side_a.rows, fetch), Run(side_b.info, side_b.rows, fetch)


def diff_document(app: App, a: str, b: str) -> dict[str, Any]:
    """``rewind diff A B --json``."""
    from rewind.analysis.compare import compare

    doc: dict[str, Any] = compare(*runs(app, a, b)).to_json()
    return doc


def bisect_document(app: App, good: str, bad: str) -> dict[str, Any]:
    """``rewind bisect GOOD BAD --json``."""
    from rewind.analysis.align import StepView
    from rewind.analysis.compare import bisect_runs, response_json
    from rewind.cli.compare_render import bisect_doc

    good_run, bad_run = runs(app, good, bad)
    result, changes = bisect_runs(good_run, bad_run)

    def render_step(view: StepView) -> dict[str, Any]:
        return response_json(good_run if good_run.owns(view) else bad_run, view)

    found = result.to_json()  # later divergences without their responses: there may be many
    if result.first is not None:
        found["first_divergence"] = result.first.to_json(render_step)
    return bisect_doc(good_run.info, bad_run.info, found, changes)
