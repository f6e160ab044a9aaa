"""``rewind record``: run an agent behind the recording proxy."""

from __future__ import annotations

import os
from dataclasses import replace

import click

from rewind.canon.redact import RedactionPolicy
from rewind.capture.local import COMMON_PORTS, local_upstreams, parse_local_ports
from rewind.capture.wiring import BaseUrls, parse_routes, upstreams_from_env
from rewind.cli.app import App
from rewind.cli.run import RecordOutcome, RecordRequest, record
from rewind.errors import RewindError
from rewind.store.home import Home
from rewind.store.remotes import Remote, pick_remote

ROUTE_HELP = "Send HOST's traffic to URL while recording it as HOST (repeatable)."
REDACT_HELP = "Regular expression to redact from bodies, e.g. PII (repeatable)."
BASE_URLS_HELP = (
    "Which provider base-URL variables the agent gets: auto (those you set, or all when "
    "CMD runs Node, whose fetch ignores HTTPS_PROXY), always, never."
)

LOCAL_PORT_HELP = (
    "Also record the model server on this loopback port (repeatable): "
    + ", ".join(f"{name} {port}" for port, name in COMMON_PORTS.items())
    + ". Replay then never reaches it."
)


@click.command(
    "record",
    context_settings={"allow_interspersed_args": False},
)
@click.option("--name", help="A name to refer to the session by.")
@click.option("--route", "routes", multiple=True, metavar="HOST=URL", help=ROUTE_HELP)
@click.option("--redact", multiple=True, metavar="REGEX", help=REDACT_HELP)
@click.option(
    "--base-urls", type=click.Choice([p.value for p in BaseUrls]), default=BaseUrls.AUTO.value,
    show_default=True, help=BASE_URLS_HELP,
)
@click.option("--local-port", "local_ports", multiple=True, type=int, metavar="PORT", help=LOCAL_PORT_HELP)
@click.option("--push", "push_to", metavar="REMOTE",
              help="Then push the session to this team store (exit 8 if that fails).")  # fmt: skip
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_obj
@click.pass_context
def record_command(
    ctx: click.Context,
    app: App,
    name: str | None,
    routes: tuple[str, ...],
    redact: tuple[str, ...],
    base_urls: str,
    local_ports: tuple[int, ...],
    push_to: str | None,
    command: tuple[str, ...],
) -> None:
    """Run CMD and record every HTTP(S) call it makes.

    \b
    Example:
      rewind record --name nightly -- python agent.py --task 3

    The agent gets HTTPS_PROXY/HTTP_PROXY and CA trust variables. OPENAI_BASE_URL,
    ANTHROPIC_BASE_URL and GOOGLE_GEMINI_BASE_URL point at Rewind's local listeners
    where you set them yourself, or when CMD runs Node (--base-urls auto): setting them
    otherwise would change what some frameworks send. API keys and auth headers are
    redacted before anything is written. Exits with CMD's exit code.

    \b
    A model server on this machine (Ollama, vLLM, ...):
      rewind record --local-port 11434 -- python agent.py
    """
    req = request_from_options(command, name, routes, redact, local_ports=local_ports)
    req = replace(req, base_urls=BaseUrls(base_urls))
    remote = pick_remote(app.home, push_to) if push_to is not None else None  # checked before running
    outcome = record(app.home, req)
    code = report(outcome)
    if remote is not None and not push_session(app.home, remote, outcome.session_id):
        code = code if code == EXIT_STEPS_LOST else EXIT_PUSH_FAILED
    ctx.exit(code)


EXIT_PUSH_FAILED = 8


def push_session(home: Home, remote: Remote, session_id: str) -> bool:
    """``--push``: the session pushed to the remote; False (said on stderr) if it failed.
    The recording stays here either way."""
    from rewind.store.team import push

    try:
        push(home, remote, [session_id], os.environ, RedactionPolicy.build([], os.environ).literals)
    except RewindError as exc:
        click.echo(f"rewind: WARNING: {session_id} is recorded here but was NOT pushed to {remote.name}: "
                   f"{exc}; push it with `rewind push --remote {remote.name} {session_id}` "
                   f"(exit {EXIT_PUSH_FAILED})", err=True)  # fmt: skip
        return False
    click.echo(f"Pushed {session_id} to {remote.name}", err=True)
    return True


def request_from_options(
    command: tuple[str, ...],
    name: str | None,
    routes: tuple[str, ...],
    redact: tuple[str, ...],
    mode: str = "record",
    local_ports: tuple[int, ...] = (),
) -> RecordRequest:
    """A recording of ``command`` in this directory and environment, as the options say."""
    environ = dict(os.environ)
    return RecordRequest(
        command=command,
        cwd=os.getcwd(),
        environ=environ,
        upstreams={**upstreams_from_env(environ), **local_upstreams(parse_local_ports(local_ports))},
        name=name,
        routes=parse_routes(routes),
        redact=redact,
        mode=mode,
    )


EXIT_STEPS_LOST = 6


def report(outcome: RecordOutcome) -> int:
    """Print the summary; the exit code: CMD's, or EXIT_STEPS_LOST if any exchange could
    not be recorded (whatever CMD returned: a recording with holes must not pass)."""
    tally = outcome.tally
    click.echo(
        f"Session recorded: {outcome.session_id} ({tally.steps} steps, {tally.tokens} tokens)",
        err=True,
    )
    for problem in outcome.problems:
        click.echo(f"rewind: WARNING: {problem}", err=True)
    lost = sorted({gap.step for gap in outcome.gaps}) or outcome.failures
    if not lost and not outcome.problems:
        return outcome.result.exit_code
    click.echo(
        f"rewind: WARNING: {len(lost)} exchange(s) could NOT be recorded"
        f"{_which(outcome)}; `rewind inspect {outcome.session_id}` shows the gaps "
        f"(exit {EXIT_STEPS_LOST}; the command itself exited {outcome.result.exit_code})",
        err=True,
    )
    return EXIT_STEPS_LOST


def _which(outcome: RecordOutcome) -> str:
    steps = sorted({gap.step for gap in outcome.gaps})
    return f" (step {', '.join(map(str, steps))})" if steps else ""


COMMANDS = [record_command]
