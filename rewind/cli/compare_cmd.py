"""``rewind diff`` and ``rewind bisect``: where and why two runs differ.

Both exit 0 when the analysis ran, whatever it found (``identical`` in the JSON says
whether the runs differ); a session that cannot be found or read exits as every other
store error does.
"""

from __future__ import annotations

import click

from rewind.analysis.compare import compare
from rewind.cli.app import App
from rewind.cli.compare_render import bisect_view, diff_json_text, diff_view
from rewind.cli.documents import bisect_document, diff_document, runs
from rewind.cli.render import emit_json, show
from rewind.cli.sessions_cmd import JSON_HELP


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
    if as_json:
        click.echo(diff_json_text(diff_document(app, a, b)))
    else:
        show(*diff_view(compare(*runs(app, a, b))))


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
    doc = bisect_document(app, good, bad)
    if as_json:
        emit_json(doc)
    else:
        show(*bisect_view(doc))


COMMANDS = [diff_command, bisect_command]
