"""``rewind push`` and ``rewind pull``: move sessions through a team store."""

from __future__ import annotations

import os
from typing import Any

import click

from rewind.canon.redact import RedactionPolicy
from rewind.cli.app import App
from rewind.cli.progress import byte_progress
from rewind.cli.render import emit_json, visible
from rewind.cli.since import since_option

JSON_HELP = "Print JSON to stdout instead of lines."
REMOTE_HELP = "The remote (`rewind remote list`); default: the only one configured."
EXIT_REFUSED = 1


@click.command("push")
@click.argument("sessions", nargs=-1, required=True)
@click.option("--remote", "remote_name", metavar="NAME", help=REMOTE_HELP)
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@click.pass_obj
def push_command(app: App, sessions: tuple[str, ...], remote_name: str | None, as_json: bool) -> None:
    """Upload SESSIONS to a team store and publish them there.

    \b
    Examples:
      rewind push nightly
      rewind push --remote team 3f9c2a 7be1d0

    Only the bodies the remote lacks are sent (content addressed); the sessions appear
    there in one transaction, once every body is uploaded, so no one sees half a
    session. Pushing again adds nothing. Refused if anything still looks like a secret
    (as `rewind export` is). Then, on another machine: `rewind pull SESSION`.
    """
    from rewind.store.team import push

    remote = app.use_remote(remote_name)
    literals = RedactionPolicy.build([], os.environ).literals
    with byte_progress("push") as report:
        done = push(app.home, remote, sessions, os.environ, literals, report)
    if as_json:
        emit_json({"remote": remote.name, "added": done.added, "present": done.present,
                   "bodies_sent": done.bodies_sent, "bodies_skipped": done.bodies_skipped,
                   "raw_bytes": done.raw_bytes, "sent_bytes": done.sent_bytes})  # fmt: skip
        return
    for sid in done.added:
        click.echo(f"Pushed {sid} to {remote.name}")
    for sid in done.present:
        click.echo(f"Already on {remote.name}: {sid}", err=True)
    if done.added:
        click.echo(
            f"{done.bodies_sent} bodies sent ({done.raw_bytes} bytes, {done.sent_bytes} compressed), "
            f"{done.bodies_skipped} already there",
            err=True,
        )


@click.command("pull")
@click.argument("sessions", nargs=-1)
@click.option("--remote", "remote_name", metavar="NAME", help=REMOTE_HELP)
@click.option("--name", metavar="NAME", help="Every session with this name.")
@click.option("--since", callback=since_option, metavar="DATE|AGE",
              help="Every session started since then: 2024-05-01, 7d, 12h.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@click.pass_obj
@click.pass_context
def pull_command(
    ctx: click.Context, app: App, sessions: tuple[str, ...], remote_name: str | None,
    name: str | None, since: float | None, as_json: bool,
) -> None:
    """Copy sessions from a team store into this one.

    \b
    Examples:
      rewind pull 3f9c2a            # an id (or a unique prefix), as on the remote
      rewind pull nightly           # the newest session named nightly on the remote
      rewind pull --name nightly --since 7d

    Every body is checked against its hash before anything of a session is written; a
    session with a damaged body is refused (named, exit 1) and the store is left as it
    was. Sessions already here are skipped. Then: `rewind replay SESSION`, offline.
    """
    from rewind.store.team import pull

    if not sessions and name is None and since is None:
        raise click.UsageError("name the sessions to pull, or give --name or --since")
    remote = app.use_remote(remote_name)
    with byte_progress("pull") as report:
        done = pull(app.home, remote, sessions, os.environ, name=name, since=since,
                    progress=lambda size: report(size, 0))  # fmt: skip
    if as_json:
        emit_json(_pulled_json(remote.name, done))
    else:
        _print_pulled(remote.name, done)
    if done.refused:
        ctx.exit(EXIT_REFUSED)


def _pulled_json(remote: str, done: Any) -> dict[str, Any]:
    return {"remote": remote, "added": done.added, "present": done.present,
            "refused": [{"session": sid, "error": why} for sid, why in done.refused],
            "received_bytes": done.received_bytes}  # fmt: skip


def _print_pulled(remote: str, done: Any) -> None:
    for sid in done.added:
        click.echo(f"Pulled {sid} from {remote}")
    for sid in done.present:
        click.echo(f"Already here: {sid}", err=True)
    for sid, why in done.refused:
        click.echo(visible(f"rewind: error: refused {sid}: {why}; nothing of it was written"), err=True)
    if not done.added and not done.present and not done.refused:
        click.echo("No session to pull.", err=True)


COMMANDS = [push_command, pull_command]
