"""Which recorded step answers a request: fingerprint queues, first in, first out.

For each fingerprint the recorded steps are served in step order, so an agent that
sends the same prompt three times gets the three recorded answers in order. With
``reuse=True`` the last answer of an exhausted queue is served again. A step is
replayable when it has a response (any status, a recorded 429 or 500 included) or a
recorded failure (no status but an ``error``: the connection dropped); a step with
neither (an interrupted recording) is never served and is listed in ``skipped``.

The proxy may call ``take`` from several connections at once, so every access to the
queues holds one lock.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from collections.abc import Sequence

from rewind.store.models import StepRecord

__all__ = ["Matcher", "is_failure", "is_replayable"]


def is_failure(step: StepRecord) -> bool:
    """True when the recorded outcome is a failure with no response (dropped, refused)."""
    return step.status is None and step.error is not None


def is_replayable(step: StepRecord) -> bool:
    """True when the step has something to play back: a response or a recorded failure."""
    return step.status is not None or is_failure(step)


class Matcher:
    """Serves recorded steps by fingerprint, first in, first out; thread-safe."""

    def __init__(self, steps: Sequence[StepRecord], reuse: bool = False) -> None:
        self.reuse = reuse
        self._lock = threading.Lock()
        self._queues: dict[str, deque[StepRecord]] = {}
        self._last: dict[str, StepRecord] = {}
        self._replayable = sorted(filter(is_replayable, steps), key=lambda s: s.step)
        self._skipped = sorted((s for s in steps if not is_replayable(s)), key=lambda s: s.step)
        self._used: Counter[int] = Counter()  # step -> times served
        self._answers = 0
        for step in self._replayable:
            self._queues.setdefault(step.fingerprint, deque()).append(step)

    def take(self, fingerprint: str) -> StepRecord | None:
        """The next recorded step for ``fingerprint``, or ``None`` for a miss."""
        with self._lock:
            step = self._pop(fingerprint)
            if step is not None:
                self._used[step.step] += 1
                self._answers += 1
            return step

    def _pop(self, fingerprint: str) -> StepRecord | None:
        queue = self._queues.get(fingerprint)
        if queue:
            self._last[fingerprint] = queue.popleft()
            return self._last[fingerprint]
        return self._last.get(fingerprint) if self.reuse else None

    def put_back(self, step: StepRecord) -> None:
        """Undo one ``take`` of ``step``: the next request with its fingerprint gets it
        (a fault was served in its place, and a retry must find the recorded answer)."""
        with self._lock:
            self._queues.setdefault(step.fingerprint, deque()).appendleft(step)
            self._used[step.step] -= 1
            if self._used[step.step] <= 0:
                del self._used[step.step]
            self._answers -= 1

    def unused(self) -> list[StepRecord]:
        """Replayable recorded steps never served, in step order."""
        with self._lock:
            return [s for s in self._replayable if s.step not in self._used]

    @property
    def skipped(self) -> list[StepRecord]:
        """Recorded steps with neither a response nor a failure: never served."""
        return list(self._skipped)

    @property
    def served(self) -> int:
        """How many distinct recorded steps have been served."""
        with self._lock:
            return len(self._used)

    @property
    def answers(self) -> int:
        """How many requests were answered (more than ``served`` when reusing)."""
        with self._lock:
            return self._answers

    @property
    def recorded(self) -> list[StepRecord]:
        """Every replayable recorded step, in step order (candidates for a miss report)."""
        return list(self._replayable)
