"""``rewind export``, ``import``, ``verify`` and ``keygen``: sessions as portable cassettes."""

from __future__ import annotations

import os
from pathlib import Path

import click

from rewind.canon.redact import RedactionPolicy
from rewind.cli.app import App
from rewind.cli.progress import byte_progress
from rewind.cli.render import emit_json, visible
from rewind.store import signing
from rewind.store.transfer import Verified, export, import_cassette, verify

JSON_HELP = "Print JSON to stdout instead of text."


@click.command("export")
@click.argument("sessions", nargs=-1, required=True)
@click.option("-o", "--output", "output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The cassette file to write (e.g. bug-1234.rw).")
@click.option("--sign", "sign_key", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              metavar="KEY", help="Sign it with this private key (from `rewind keygen`).")
@click.pass_obj
def export_command(app: App, sessions: tuple[str, ...], output: Path, sign_key: Path | None) -> None:
    """Write SESSIONS, with every body they use, to one cassette file.

    \b
    Example:
      rewind export nightly -o bug-1234.rw --sign mykey

    The file is self-contained and compressed; `rewind import` on another machine
    verifies it and makes the sessions replayable there, with no flags. Refused if
    anything in it still looks like a secret (the step is named).
    """
    literals = RedactionPolicy.build([], os.environ).literals
    with byte_progress("export") as report:
        done = export(app.home, sessions, output, sign_key, literals, report)
    signed = f", signed by key {done.key_id}" if done.key_id else ""
    click.echo(
        f"Exported {done.sessions} session(s), {done.steps} steps, {done.blobs} bodies "
        f"({done.bytes} bytes) to {done.path}{signed}",
        err=True,
    )


@click.command("import")
@click.argument("cassette", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--trust", type=click.Path(exists=True, dir_okay=False, path_type=Path), metavar="KEY.pub",
              help="Require a valid signature by this public key.")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@click.pass_obj
def import_command(app: App, cassette: Path, trust: Path | None, as_json: bool) -> None:
    """Verify CASSETTE whole, then add its sessions to this store.

    Nothing is written unless every hash (and the signature, if any) checks out.
    Sessions the store has already are left as they are, so importing twice adds
    nothing. Then: `rewind replay SESSION`.
    """
    done = import_cassette(app.home, cassette, trust)
    if as_json:
        emit_json({"added": done.added, "present": done.present, "key_id": done.key_id})
        return
    for sid in done.added:
        click.echo(f"Imported {sid}")
    for sid in done.present:
        click.echo(f"Already here: {sid}", err=True)
    if done.key_id:
        click.echo(f"Signed by key {done.key_id}", err=True)


@click.command("verify")
@click.argument("cassette", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--trust", type=click.Path(exists=True, dir_okay=False, path_type=Path), metavar="KEY.pub",
              help="Require a valid signature by this public key.")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def verify_command(cassette: Path, trust: Path | None, as_json: bool) -> None:
    """Check CASSETTE: its structure, every body's hash and its signature.

    Exit 0 when it is intact (and signed by the --trust key, if given); a damaged,
    altered or wrongly signed file is an error naming what is wrong.
    """
    report = verify(cassette, trust)
    if as_json:
        emit_json(_verified_json(report))
        return
    for session in report.sessions:
        click.echo(f"{session['id']}  {visible(session['name'] or '-')}  {session['steps']} steps")
    signed = f"signed by key {report.key_id}" if report.key_id else "not signed"
    click.echo(f"OK: {report.blobs} bodies ({report.bytes} bytes) verified, {signed}", err=True)


def _verified_json(report: Verified) -> dict[str, object]:
    return {"sessions": report.sessions, "blobs": report.blobs, "bytes": report.bytes,
            "key_id": report.key_id, "rewind_version": report.rewind_version}


@click.command("keygen")
@click.option("-o", "--output", "output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              metavar="NAME", help="Writes NAME (private, 0600) and NAME.pub.")
def keygen_command(output: Path) -> None:
    """Make an Ed25519 key pair to sign cassettes with.

    Sign with `rewind export --sign NAME`; give NAME.pub to whoever imports your
    cassettes, who checks it with `rewind import --trust NAME.pub`.
    """
    public, key_id = signing.keygen(output)
    click.echo(f"Wrote {output} (keep it private) and {public}; key id {key_id}", err=True)


COMMANDS = [export_command, import_command, verify_command, keygen_command]
