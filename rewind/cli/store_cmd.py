"""``rewind rm``, ``rewind gc`` and ``rewind doctor``: keeping the store healthy."""

from __future__ import annotations

import sys

import click

from rewind.cli.app import App
from rewind.cli.render import emit_json
from rewind.store.maintain import (
    DoctorReport,
    SessionHealth,
    collect_garbage,
    doctor,
    remove_sessions,
)

JSON_HELP = "Print JSON to stdout instead of text."
EXIT_UNHEALTHY = 1


@click.command("rm")
@click.argument("sessions", nargs=-1, required=True)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def rm_command(app: App, sessions: tuple[str, ...], yes: bool) -> None:
    """Delete SESSIONS and their records.

    Bodies no other session refers to stay on disk until `rewind gc`. Asks first
    when run in a terminal; --yes skips the question.
    """
    infos = [app.store().session(ref) for ref in sessions]
    if not yes and sys.stdin.isatty():
        names = ", ".join(f"{i.id} ({i.name or 'unnamed'}, {i.steps} steps)" for i in infos)
        click.confirm(f"Delete {names}?", abort=True, err=True)
    removed = remove_sessions(app.home, [i.id for i in infos])
    for info in removed:
        click.echo(f"Removed {info.id} ({info.name or 'unnamed'})", err=True)
    click.echo("Run `rewind gc` to free the space of bodies nothing refers to any more.", err=True)


@click.command("gc")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@click.pass_obj
def gc_command(app: App, as_json: bool) -> None:
    """Remove stored bodies that no session refers to, and report the bytes freed.

    Runs only while no recording is in progress in this home.
    """
    report = collect_garbage(app.home)
    if as_json:
        emit_json(report.to_json())
        return
    click.echo(
        f"Freed {report.bytes_freed} bytes: {report.objects_removed} bodies removed, "
        f"{report.packs_removed} packs deleted, {report.packs_rewritten} rewritten."
    )


@click.command("doctor")
@click.option("--repair", is_flag=True, help="Rebuild the index from the files under the home.")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@click.pass_obj
@click.pass_context
def doctor_command(ctx: click.Context, app: App, repair: bool, as_json: bool) -> None:
    """Check every stored body's hash and every session's record; say what is damaged.

    \b
    Exit 0 when everything is readable, 1 otherwise. --repair rebuilds
    index.duckdb from the session records and packs when it is missing or
    damaged (the old file is kept beside it), and points the index at intact
    copies; it drops nothing that is still readable.
    """
    report = doctor(app.home, repair=repair)
    if as_json:
        emit_json(report.to_json())
    else:
        for text in doctor_lines(report):
            click.echo(text)
    ctx.exit(0 if report.healthy else EXIT_UNHEALTHY)


def doctor_lines(report: DoctorReport) -> list[str]:
    """The human report: the index, the packs, then each session with a problem."""
    lines = [f"index: {report.index}",
             f"bodies: {report.objects} stored, {report.bad_objects} unreadable"]
    lines += [f"pack {p['pack']}: {p['torn_tail_bytes']} bytes after its last whole record (torn write)"
              for p in report.packs if p["torn_tail_bytes"]]
    for health in report.sessions:
        lines += _session_lines(health)
    lines.append("healthy" if report.healthy else "DAMAGED: see above")
    return lines


def _session_lines(health: SessionHealth) -> list[str]:
    head = f"session {health.id} ({health.name or 'unnamed'}, {health.steps} steps, {health.status})"
    lines = [f"{head}: record unreadable: {health.unreadable}"] if health.unreadable else []
    lines += [f"{head}: {e['what']} missing ({e['sha'][:12]})" for e in health.missing]
    lines += [f"{head}: {e['what']} corrupt ({e['sha'][:12]}): {e['why']}" for e in health.corrupt]
    lines += [f"{head}: {line}" for line in health.skipped_lines]
    return lines


COMMANDS = [rm_command, gc_command, doctor_command]
