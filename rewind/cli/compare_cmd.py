"""``rewind diff`` and ``rewind bisect``: where and why two runs differ.

Both exit 0 when the analysis ran, whatever it found (``identical`` in the JSON says
whether the runs differ); a session that cannot be found or read exits as every other
store error does.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import click

from rewind.analysis.align import StepView
from rewind.analysis.compare import Run, bisect_runs, compare, response_json
from rewind.cli.app import App
from rewind.cli.compare_render import bisect_doc, bisect_view, diff_json_text, diff_view
from rewind.cli.render import emit_json, show
from rewind.cli.sessions_cmd import JSON_HELP

if TYPE_CHECKING:
    from rewind.store.index import Store


@click.command("diff")
@click.argument("a")
@click.argument("b")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@click.pass_obj
def diff_command(app: App, a: str, b: str, as_json: bool) -> None:
    """Align two sessions step by step and show what changed.

    \b
    Pairs the calls of A and B as a diff pairs lines: matched, changed, only in A, only
    in B. A changed step shows each field that differs, with a text diff for prompts and
    answers. A and B are ids, unique id prefixes or names.
    """
    comparison = compare(*_runs(app.store(), a, b))
    if as_json:
        click.echo(diff_json_text(comparison.to_json()))
    else:
        show(*diff_view(comparison))


@click.command("bisect")
@click.argument("good")
@click.argument("bad")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@click.pass_obj
def bisect_command(app: App, good: str, bad: str, as_json: bool) -> None:
    """Find the first step where BAD left GOOD, and its likely cause.

    \b
    The first step whose response differs, "Steps matched: k / n", the likely cause read
    from the requests at and before it (system prompt, model, sampling, tools, a tool
    result, user input, or the same request answered differently) with the differing
    text, and whether each later divergence propagated from it.
    """
    good_run, bad_run = _runs(app.store(), good, bad)
    result, changes = bisect_runs(good_run, bad_run)

    def render_step(view: StepView) -> dict[str, Any]:
        return response_json(good_run if good_run.owns(view) else bad_run, view)

    found = result.to_json()  # later divergences without their responses: there may be many
    if result.first is not None:
        found["first_divergence"] = result.first.to_json(render_step)
    doc = bisect_doc(good_run.info, bad_run.info, found, changes)
    if as_json:
        emit_json(doc)
    else:
        show(*bisect_view(doc))


def _runs(store: Store, a: str, b: str) -> tuple[Run, Run]:
    from rewind.store.compare_rows import compare_rows, step_details  # DuckDB: only when run

    side_a, side_b = compare_rows(store, a, b)
    fetch = functools.partial(step_details, store)
    return Run(side_a.info, side_a.rows, fetch), Run(side_b.info, side_b.rows, fetch)


COMMANDS = [diff_command, bisect_command]
