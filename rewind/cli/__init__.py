"""The ``rewind`` command line: one module per command group, loaded only when used,
and errors turned into messages and exit codes here and only here."""

from __future__ import annotations

import difflib
import importlib
import sys
from typing import Any

import click

from rewind import __version__
from rewind.errors import RewindError

__all__ = ["main", "cli"]

# command name -> (module under rewind.cli holding it, its one-line summary). Modules are
# imported on first use, and `rewind --help` lists the summaries without importing any:
# `rewind --help` and `rewind list` need not pay for mitmproxy. A test keeps each summary
# equal to its command's own short help.
COMMANDS = {
    "branch": (
        "branch_cmd",
        "Re-run SESSION up to step N from the recording, change step N, and go on live.",
    ),
    "bisect": ("compare_cmd", "Find the first step where BAD left GOOD, and its likely cause."),
    "diff": ("compare_cmd", "Align two sessions step by step and show what changed."),
    "doctor": (
        "store_cmd",
        "Check every stored body's hash and every session's record; say what is damaged.",
    ),
    "export": ("cassette_cmd", "Write SESSIONS, with every body they use, to one cassette file."),
    "env": ("proxy_cmd", "Print the export lines that point a shell at a running `rewind proxy`."),
    "gc": ("store_cmd", "Remove stored bodies that no session refers to, and report the bytes freed."),
    "import": ("cassette_cmd", "Verify CASSETTE whole, then add its sessions to this store."),
    "init": ("init_cmd", "Create Rewind's CA and trust bundle under $REWIND_HOME/ca (idempotent)."),
    "inspect": ("inspect_cmd", "Show a session's steps, or one step in full."),
    "keygen": ("cassette_cmd", "Make an Ed25519 key pair to sign cassettes with."),
    "list": ("sessions_cmd", "List recorded sessions, newest first."),
    "mutate": (
        "branch_cmd",
        "Re-run SESSION once per (step, fault), offline, and classify what the agent did.",
    ),
    "pull": ("team_cmd", "Copy sessions from a team store into this one."),
    "push": ("team_cmd", "Upload SESSIONS to a team store and publish them there."),
    "proxy": ("proxy_cmd", "Run a recording proxy until Ctrl-C, for agents started by hand."),
    "record": ("record_cmd", "Run CMD and record every HTTP(S) call it makes."),
    "stats": ("stats_cmd", "Calls, tokens, latency, errors and cost, by model, provider, session or day."),
    "remote": ("remote_cmd", "Name team stores: a PostgreSQL catalog and S3-compatible storage."),
    "rm": ("store_cmd", "Delete SESSIONS and their records."),
    "ui": ("rewind.ui.command", "Serve a read-only web viewer of the store on localhost, and print its URL."),
    "verify": ("cassette_cmd", "Check CASSETTE: its structure, every body's hash and its signature."),
    "replay": ("replay_cmd", "Re-run SESSION's command offline, answering every call from the recording."),
}


class RewindGroup(click.Group):
    """Lazily loaded commands; ``RewindError`` reported as one clear line, not a traceback."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        name = COMMANDS[cmd_name][0]  # a module of rewind.cli, or (the viewer, a stage above) a full name
        module = importlib.import_module(name if "." in name else f"rewind.cli.{name}")
        return next((c for c in module.COMMANDS if c.name == cmd_name), None)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if name in COMMANDS or name.startswith("-") or ctx.resilient_parsing:
            return super().resolve_command(ctx, args)
        ctx.fail(no_such_command(name))

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The summaries from ``COMMANDS``, cut to the width as click cuts them."""
        limit = formatter.width - 6 - max(len(name) for name in COMMANDS)
        stubs = [click.Command(name, help=COMMANDS[name][1]) for name in sorted(COMMANDS)]
        rows = [(stub.name or "", stub.get_short_help_str(limit)) for stub in stubs]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RewindError as exc:
            report_error(exc)
            ctx.exit(exc.exit_code)


def no_such_command(name: str) -> str:
    """The usage error for an unknown command, with the nearest command if one is close."""
    nearest = difflib.get_close_matches(name, COMMANDS, n=1)
    hint = f" Did you mean {nearest[0]!r}?" if nearest else ""
    return f"No such command {name!r}.{hint}"


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
    from rewind.capture.runner import private_umask

    private_umask()  # the store's files are the user's only; the agent keeps its umask
    cli(prog_name="rewind")
    sys.exit(0)
