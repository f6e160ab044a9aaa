"""``rewind list``: the sessions recorded, with their cost and failure tags."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from rewind.cli.app import App
from rewind.cli.documents import listed_sessions, sessions_document
from rewind.cli.lineage import lineage_tree
from rewind.cli.remote_cmd import remote_option
from rewind.cli.render import emit_json, sessions_table, show
from rewind.cli.since import since_option

if TYPE_CHECKING:
    pass

JSON_HELP = "Print JSON to stdout instead of a table."


@click.command("list")
@click.option("--limit", type=click.IntRange(min=1), metavar="N", help="Show at most N sessions.")
@click.option("--name", metavar="NAME", help="Only sessions with this name.")
@click.option(
    "--since",
    callback=since_option,
    metavar="DATE|AGE",
    help="Only sessions started since then: 2024-05-01, 2024-05-01T09:30, 7d, 12h.",
)
@click.option(
    "--failed", is_flag=True, help="Only failed sessions (non-zero exit; unknown exit: a failed call)."
)
@click.option(
    "--tree", is_flag=True, help="Draw branches under the session they forked from (JSON: nested children)."
)
@remote_option
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@click.pass_obj
def list_command(
    app: App,
    limit: int | None,
    name: str | None,
    since: float | None,
    failed: bool,
    tree: bool,
    as_json: bool,
) -> None:
    """List recorded sessions, newest first.

    \b
    Examples:
      rewind list --limit 5
      rewind list --name nightly --since 7d --json
      rewind list --failed
      rewind list --tree          # branches under their parents
    """
    sessions, summaries = listed_sessions(app, limit, name, since, failed)
    if as_json:
        emit_json(sessions_document(sessions, summaries, tree))
    elif not sessions:
        click.echo(_nothing_found(filtered=name is not None or since is not None or failed), err=True)
    else:
        show(lineage_tree(sessions) if tree else sessions_table(sessions, summaries))


def _nothing_found(filtered: bool) -> str:
    return "No sessions match." if filtered else "No sessions yet. Record one with: rewind record -- CMD"


COMMANDS = [list_command]
