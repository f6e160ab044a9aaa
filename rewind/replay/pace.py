"""How fast recorded streams are played back.

``fast`` (the default) sends every chunk at once; ``original`` keeps the recorded gaps;
a factor such as ``2x``, ``0.5x`` or ``2`` plays that many times *faster* than recorded
(``2x`` halves every gap, ``0.5x`` doubles it, ``1x`` is ``original``).
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass

from rewind.errors import ConfigError

__all__ = ["FAST", "ORIGINAL", "Pace", "parse_pace", "sleep_until"]

VALID_FORMS = "'fast', 'original', or a positive speed factor such as '2x', '0.5x' or '3'"


@dataclass(frozen=True)
class Pace:
    """A playback speed: ``speed`` times faster than recorded, ``None`` for no delays."""

    speed: float | None = None

    @property
    def is_fast(self) -> bool:
        return self.speed is None

    def delay_s(self, prev_t_ms: float, t_ms: float) -> float:
        """Seconds to wait between chunks recorded at ``prev_t_ms`` and ``t_ms``."""
        if self.speed is None:
            return 0.0
        return max(0.0, t_ms - prev_t_ms) / 1000.0 / self.speed

    def __str__(self) -> str:
        if self.speed is None:
            return "fast"
        return "original" if self.speed == 1.0 else f"{self.speed:g}x"


FAST = Pace(None)
ORIGINAL = Pace(1.0)


def parse_pace(text: str) -> Pace:
    """The pace named by ``text``; ``ConfigError`` listing the valid forms otherwise."""
    word = text.strip().lower()
    if word == "fast":
        return FAST
    if word == "original":
        return ORIGINAL
    return Pace(_parse_factor(text, word.removesuffix("x")))


def _parse_factor(text: str, number: str) -> float:
    try:
        factor = float(number)
    except ValueError:
        factor = math.nan
    if not (math.isfinite(factor) and factor > 0):
        raise ConfigError(f"invalid --pace {text!r}: expected {VALID_FORMS}")
    return factor


async def sleep_until(deadline: float) -> None:
    """Sleep until ``deadline`` on the running loop's clock (at once if it has passed)."""
    delay = deadline - asyncio.get_running_loop().time()
    if delay > 0:
        await asyncio.sleep(delay)
