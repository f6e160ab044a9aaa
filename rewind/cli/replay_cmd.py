"""``rewind replay``: re-run a recorded agent offline (built next)."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
