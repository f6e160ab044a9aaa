"""Hand exchanges to the store off the proxy's event loop.

Redaction, hashing and compression happen in a worker thread, so a response goes
back to the agent without waiting for its recording. Failures are never swallowed:
each is reported at once and counted, and ``close()`` drains the queue.
"""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Callable

from rewind.core.exchange import Exchange

_STOP = object()


class BackgroundSink:
    """A single worker applying ``handle`` to every submitted exchange, in order."""

    def __init__(self, handle: Callable[[Exchange], None]) -> None:
        self.handle = handle
        self.failures: list[str] = []
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._work, name="rewind-sink", daemon=True)
        self._thread.start()

    def submit(self, exchange: Exchange) -> None:
        self._queue.put(exchange)

    def close(self, timeout: float = 60.0) -> list[str]:
        """Finish every queued exchange; the failures seen."""
        self._queue.put(_STOP)
        self._thread.join(timeout)
        return self.failures

    def _work(self) -> None:
        while (item := self._queue.get()) is not _STOP:
            assert isinstance(item, Exchange)
            try:
                self.handle(item)
            except Exception as exc:  # recording must fail loudly, not silently
                self._fail(item.step, exc)

    def _fail(self, step: int, exc: Exception) -> None:
        message = f"rewind: step {step} was NOT recorded: {type(exc).__name__}: {exc}"
        self.failures.append(message)
        print(message, file=sys.stderr, flush=True)
