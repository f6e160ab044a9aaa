"""The ``rewind`` command line: one module per command group, errors turned into
messages and exit codes here and only here."""

from __future__ import annotations

import sys
from typing import Any

import click

from rewind import __version__
from rewind.cli.app import App
from rewind.errors import RewindError

__all__ = ["main", "cli"]


class RewindGroup(click.Group):
    """A group whose commands report ``RewindError`` as one clear line, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RewindError as exc:
            report_error(exc)
            ctx.exit(exc.exit_code)


def report_error(exc: RewindError) -> None:
    click.echo(f"rewind: error: {exc}", err=True)
    if exc.hint:
        click.echo(f"hint: {exc.hint}", err=True)


@click.group(cls=RewindGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--home",
    type=click.Path(file_okay=False),
    envvar=None,
    help="Store location (default: $REWIND_HOME, else ~/.rewind).",
)
@click.version_option(__version__, prog_name="rewind")
@click.pass_context
def cli(ctx: click.Context, home: str | None) -> None:
    """Rewind: record an AI agent's HTTP traffic, then replay and inspect it offline.

    \b
    Quick start:
      rewind record --name first -- python my_agent.py
      rewind list
      rewind inspect first
      rewind replay first
    """
    ctx.obj = App.create(home)


def _register() -> None:
    from rewind.cli import init_cmd, proxy_cmd, record_cmd, replay_cmd, sessions_cmd

    for module in (init_cmd, record_cmd, replay_cmd, sessions_cmd, proxy_cmd):
        for command in module.COMMANDS:
            cli.add_command(command)


_register()


def main() -> None:
    cli(prog_name="rewind")
    sys.exit(0)
