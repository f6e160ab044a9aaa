"""``rewind stats``: where the money and the time went."""

from __future__ import annotations

import click


@click.command("stats")
def stats_command() -> None:
    """Calls, tokens, latency, errors and cost, by model, provider, session or day."""
    raise click.UsageError("not implemented yet")


COMMANDS = [stats_command]
