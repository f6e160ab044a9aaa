"""``rewind branch`` (fork a recorded run at a step, with an edit, and go on live) and
``rewind mutate`` (inject faults at recorded steps, offline, and see what the agent does)."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from rewind.capture.wiring import parse_routes
from rewind.cli.app import App
from rewind.cli.render import emit_json, show, visible

if TYPE_CHECKING:
    from rewind.cli.branching import BranchResult

ROUTE_HELP = "Where live calls for HOST go (default: the recorded routes; repeatable)."
TIMEOUT_HELP = "Kill the agent after this many seconds (a mutate run is then 'hung')."
RETRY_AFTER = click.option(
    "--retry-after",
    type=click.IntRange(min=0),
    default=1,
    show_default=True,
    metavar="SECONDS",
    help="The Retry-After of an injected 429.",
)


@click.command("branch")
@click.argument("session")
@click.option(
    "--at", "at", type=int, required=True, metavar="N", help="The step to change (see `rewind inspect`)."
)
@click.option(
    "--response",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Serve this body at step N (JSON, or SSE for a streamed step) instead of the recorded one.",
)
@click.option("--status", type=int, metavar="CODE", help="With --response: the status to serve it with.")
@click.option(
    "--request-patch",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="A JSON merge patch (RFC 7396) applied to step N's request body, which then goes live.",
)
@click.option("--fault", metavar="FAULT", help="Inject FAULT at step N and stay offline (what mutate runs).")
@click.option("--name", help="A name for the new session (default: PARENT-branch@N).")
@click.option("--route", "routes", multiple=True, metavar="HOST=URL", help=ROUTE_HELP)
@click.option("--redact", multiple=True, metavar="REGEX", help="Extra body redaction pattern.")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0.1), metavar="SECONDS", help=TIMEOUT_HELP)
@RETRY_AFTER
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the result as JSON on stdout; the command's own stdout goes to stderr.",
)
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
@click.pass_context
def branch_command(
    ctx: click.Context,
    app: App,
    session: str,
    at: int,
    response: Path | None,
    status: int | None,
    request_patch: Path | None,
    fault: str | None,
    name: str | None,
    routes: tuple[str, ...],
    redact: tuple[str, ...],
    timeout_s: float | None,
    retry_after: int,
    as_json: bool,
    command: tuple[str, ...],
) -> None:
    """Re-run SESSION up to step N from the recording, change step N, and go on live.

    \b
    Examples:
      rewind branch nightly --at 7 --response fixed.json
      rewind branch nightly --at 7 --request-patch patch.json   # {"model": "gpt-4o"}
      rewind branch nightly --at 7 -- python agent.py --fixed

    Steps before N are answered from the recording, exactly as in replay (no cost).
    Step N gets --response's body, or goes live with --request-patch applied to its
    request, or simply goes live; every step after it goes live and is recorded. The
    result is a new session with SESSION as its parent: `rewind list --tree` draws the
    lineage and `rewind diff SESSION NEW` shows where they part. Exits with the
    command's exit code (6 if a call could not be recorded).
    """
    from rewind.cli.branching import BranchRequest, branch
    from rewind.cli.record_cmd import report
    from rewind.replay.faults import parse_faults

    faults = parse_faults(fault) if fault is not None else ()
    if len(faults) > 1:
        raise click.BadParameter("give one fault (rewind mutate runs several)", param_hint="--fault")
    req = BranchRequest(
        ref=session,
        at=at,
        environ=dict(os.environ),
        command=command,
        name=name,
        response=response,
        status=status,
        request_patch=request_patch,
        fault=faults[0] if faults else None,
        routes=parse_routes(routes) if routes else None,
        redact=redact,
        timeout_s=timeout_s,
        retry_after_s=retry_after,
    )
    redirect = contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext()
    with redirect:
        result = branch(app.home, req)
    for line in _story(result):
        click.echo(line, err=True)
    code = report(result.outcome)
    if as_json:
        emit_json(result.to_json())
    ctx.exit(code)


def _story(result: BranchResult) -> list[str]:
    """What happened at the fork, in a few lines for stderr."""
    spec, lines = result.spec, []
    at = f"step {spec.at}"
    if result.fork_request is None:
        lines.append(f"rewind: the agent never reached {at}: nothing was changed")
    elif spec.fault:
        lines.append(
            f"rewind: {at} got fault {spec.fault}; {result.served} answer(s) from the recording; "
            f"outcome: {result.classified.value if result.classified else '-'}"
        )
    else:
        what = (
            "served your --response"
            if spec.response
            else "went live with --request-patch applied"
            if spec.patch
            else "went live"
        )
        lines.append(
            f"rewind: {result.served} step(s) replayed from {result.parent.id}; {at} {what}; "
            f"{result.live_calls} call(s) live"
        )
    if result.early:
        lines.append(
            f"rewind: note: the agent asked for something not recorded before {at}, so the run "
            f"forked there (its request #{result.fork_request}); recorded steps "
            f"{', '.join(map(str, result.early))} were never asked for"
        )
    if result.patch_error:
        lines.append(
            f"rewind: WARNING: --request-patch could not apply; the request went live as sent: "
            f"{visible(result.patch_error)}"
        )
    return lines  # each miss was announced when it happened (and is in --json)


@click.command("mutate")
@click.argument("session")
@click.option(
    "--at", "at", metavar="STEPS", help="Steps to fault: 3,5-7 (default: every call the agent reads)."
)
@click.option(
    "--faults",
    metavar="LIST",
    help="Comma-separated: 429,500,503,timeout,reset,truncate,empty,bad_tool_args (default: all).",
)
@click.option(
    "--jobs", type=click.IntRange(min=1), default=2, show_default=True, metavar="N", help="Runs at once."
)
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(min=0.1),
    metavar="SECONDS",
    help="Kill a run after this long and call it hung (default: 3x the recording, at least 30 s).",
)
@RETRY_AFTER
@click.option("--json", "as_json", is_flag=True, help="Print the runs as JSON on stdout.")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
@click.pass_context
def mutate_command(
    ctx: click.Context,
    app: App,
    session: str,
    at: str | None,
    faults: str | None,
    jobs: int,
    timeout_s: float | None,
    retry_after: int,
    as_json: bool,
    command: tuple[str, ...],
) -> None:
    """Re-run SESSION once per (step, fault), offline, and classify what the agent did.

    \b
    Examples:
      rewind mutate nightly --at 7 --faults 429,timeout
      rewind mutate nightly --jobs 4 --json

    In each run the steps before the faulted one are replayed, the step gets the
    fault, and a retry of the same request gets the recorded answer (the fault is
    transient). Streamed steps are cut, emptied or corrupted in their chunks. Each run
    is kept as a session (mode mutate) for `rewind inspect` and `rewind diff`, and is
    survived (exit 0, same output), recovered (exit 0, other output), failed (non-zero
    exit), hung (killed at --timeout) or diverged (asked for something never recorded).
    Exit codes: 0 every run survived or recovered; 7 some run failed, hung or diverged.
    """
    from rewind.cli.mutating import MutateRequest, mutate, runs_table
    from rewind.replay.faults import parse_faults

    req = MutateRequest(
        ref=session,
        steps=at,
        faults=parse_faults(faults),
        jobs=jobs,
        timeout_s=timeout_s,
        retry_after_s=retry_after,
        command=command,
        home=app.home,
    )
    report = mutate(req, progress=None if as_json else _progress)
    if as_json:
        emit_json(report.to_json())
    else:
        show(runs_table(report))
        for line in report.lines():
            click.echo(line, err=True)
    ctx.exit(report.exit_code())


def _progress(line: str) -> None:
    click.echo(visible(line), err=True)


COMMANDS = [branch_command, mutate_command]
