"""``rewind diff`` and ``rewind bisect``: where and why two runs differ."""

from __future__ import annotations

import click


@click.command("diff")
@click.argument("a")
@click.argument("b")
def diff_command(a: str, b: str) -> None:
    """Align two sessions step by step and show what changed."""
    raise click.UsageError("not implemented yet")


@click.command("bisect")
@click.argument("good")
@click.argument("bad")
def bisect_command(good: str, bad: str) -> None:
    """Find the first step where BAD left GOOD, and its likely cause."""
    raise click.UsageError("not implemented yet")


COMMANDS = [diff_command, bisect_command]
