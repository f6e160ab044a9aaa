"""The ``rewind`` command line: one module per command group, loaded only when used,
and errors turned into messages and exit codes here and only here."""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from rewind import __version__
from rewind.errors import RewindError

__all__ = ["main", "cli"]

# command name -> module under rewind.cli holding it (imported on first use: `rewind list`
# need not pay for importing mitmproxy).
COMMANDS = {
    "init": "init_cmd",
    "record": "record_cmd",
    "replay": "replay_cmd",
    "list": "sessions_cmd",
    "inspect": "sessions_cmd",
    "proxy": "proxy_cmd",
    "env": "proxy_cmd",
}


class RewindGroup(click.Group):
    """Lazily loaded commands; ``RewindError`` reported as one clear line, not a traceback."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module_name = COMMANDS.get(cmd_name)
        if module_name is None:
            return None
        module = importlib.import_module(f"rewind.cli.{module_name}")
        return next((c for c in module.COMMANDS if c.name == cmd_name), None)

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
    "--home", type=click.Path(file_okay=False), help="Store location (default: $REWIND_HOME, else ~/.rewind)."
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
    from rewind.cli.app import App

    ctx.obj = App.create(home)


def main() -> None:
    cli(prog_name="rewind")
    sys.exit(0)
