"""What replay does with a request it has no recording for.

A ``str`` enum, validated with a message that lists the valid values (the way vcrpy's
``RecordMode`` is): ``error`` answers a miss with an explanation (the default, strict);
``live`` sends it upstream and records the result as a new session.
"""

from __future__ import annotations

from enum import StrEnum

from rewind.errors import ConfigError

__all__ = ["OnMiss", "parse_on_miss"]


class OnMiss(StrEnum):
    """The ``--on-miss`` policy."""

    ERROR = "error"
    LIVE = "live"


def parse_on_miss(value: str | OnMiss) -> OnMiss:
    """The policy named by ``value``; ``ConfigError`` listing the valid values otherwise."""
    if isinstance(value, OnMiss):
        return value
    try:
        return OnMiss(value.strip().lower())
    except ValueError:
        valid = ", ".join(repr(mode.value) for mode in OnMiss)
        raise ConfigError(f"invalid --on-miss {value!r}: expected one of {valid}") from None
