"""``rewind replay``: re-run a recorded agent offline and compare."""

from __future__ import annotations

import contextlib
import os
import sys

import click

from rewind.capture.wiring import parse_routes
from rewind.cli.app import App
from rewind.cli.render import emit_json, visible
from rewind.cli.replaying import ReplayRequest, ReplayResult, replay
from rewind.replay.modes import parse_on_miss
from rewind.replay.pace import parse_pace


@click.command("replay")
@click.argument("session")
@click.option(
    "--pace",
    default="fast",
    show_default=True,
    metavar="fast|original|FACTOR",
    help="Stream pacing: no delays, the recorded gaps, or e.g. 2x faster.",
)
@click.option(
    "--on-miss",
    default="error",
    show_default=True,
    metavar="error|live",
    help="Unmatched requests: explained error, or go upstream and record anew.",
)
@click.option("--reuse", is_flag=True, help="Serve the last recorded answer again once used up.")
@click.option(
    "--route",
    "routes",
    multiple=True,
    metavar="HOST=URL",
    help="Where live misses for HOST go (default: the recorded routes).",
)
@click.option("--redact", multiple=True, metavar="REGEX", help="Extra body redaction pattern.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the summary as JSON on stdout; the command's own stdout goes to stderr.",
)
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
@click.pass_context
def replay_command(
    ctx: click.Context,
    app: App,
    session: str,
    pace: str,
    on_miss: str,
    reuse: bool,
    routes: tuple[str, ...],
    redact: tuple[str, ...],
    as_json: bool,
    command: tuple[str, ...],
) -> None:
    """Re-run SESSION's command offline, answering every call from the recording.

    \b
    Examples:
      rewind replay nightly
      rewind replay nightly --pace original
      rewind replay nightly -- python agent.py --fixed   # try a fix

    No request leaves the machine and no API key is needed. Exit codes: 0 all
    matched, all used, output identical; 3 a request had no recorded answer;
    4 output differs; 5 recorded steps were left unused. A session recorded
    without a command (`rewind proxy`, mitmdump) has no output to compare.
    """
    req = ReplayRequest(
        ref=session,
        environ=dict(os.environ),
        command=command,
        pace=parse_pace(pace),
        on_miss=parse_on_miss(on_miss),
        reuse=reuse,
        routes=parse_routes(routes) if routes else None,
        redact=redact,
    )
    with _agent_stdout_to_stderr(as_json):
        result = replay(app.home, req)
    _report(result, as_json)
    ctx.exit(result.summary.exit_code())


def _agent_stdout_to_stderr(as_json: bool) -> contextlib.AbstractContextManager[object]:
    """With --json, stdout carries only the JSON document: the agent's output is echoed
    to stderr instead (it is still compared with the recording)."""
    return contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext()


def _report(result: ReplayResult, as_json: bool) -> None:
    if as_json:
        emit_json(
            {
                "session": result.session.id,
                "live_session": result.live_session,
                "live_calls": result.live_calls,
                **result.summary.to_json(),
            }
        )
    for line in result.summary.lines():
        click.echo(visible(line, keep="\t"), err=True)
    if result.live_session:
        click.echo(f"{result.live_calls} request(s) went live; new session: {result.live_session}", err=True)


COMMANDS = [replay_command]
