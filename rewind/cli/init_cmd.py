"""``rewind init``: create the CA and trust bundle."""

from __future__ import annotations

import os

import click

from rewind.capture.ca import ensure_ca
from rewind.cli.app import App


@click.command("init")
@click.pass_obj
def init(app: App) -> None:
    """Create Rewind's CA and trust bundle under $REWIND_HOME/ca (idempotent).

    The bundle is your current roots (SSL_CERT_FILE if set, else certifi) plus the
    Rewind CA; `rewind record` points agents at it automatically.
    """
    files, created = ensure_ca(app.home.ca_dir, dict(os.environ))
    verb = "Created" if created else "Kept existing"
    click.echo(f"{verb} CA: {files.cert}", err=True)
    click.echo(f"Trust bundle: {files.bundle}", err=True)


COMMANDS = [init]
