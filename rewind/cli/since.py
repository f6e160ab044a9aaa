"""``--since`` values: an ISO date or date-time (local time unless it has an offset), or an
age such as ``7d`` or ``12h``; converted to epoch seconds."""

from __future__ import annotations

import datetime
import re
import time

import click

AGE = re.compile(r"(\d+)([smhdw])")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
EXAMPLES = "e.g. 2024-05-01, 2024-05-01T09:30, 7d or 12h (units: s m h d w)"


def parse_since(value: str, now: float) -> float | None:
    """Epoch seconds for ``value``, or None if it is neither a date-time nor an age."""
    if age := AGE.fullmatch(value.strip()):
        return now - int(age.group(1)) * UNIT_SECONDS[age.group(2)]
    try:
        return datetime.datetime.fromisoformat(value.strip()).timestamp()
    except ValueError:
        return None


def since_option(_ctx: click.Context, _param: click.Parameter, value: str | None) -> float | None:
    """The click callback for ``--since``: a bad value is a usage error with examples."""
    if value is None:
        return None
    since = parse_since(value, time.time())
    if since is None:
        raise click.BadParameter(f"{value!r} is not a date or an age; {EXAMPLES}")
    return since
