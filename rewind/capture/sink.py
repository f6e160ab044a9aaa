"""Hand exchanges to the store off the proxy's event loop, and say when each is kept.

Redaction, hashing and compression happen in one worker thread (one, so steps reach the
journal in the order they were submitted). A small exchange submitted while the worker
is idle is handled at once in the submitting thread instead: the same order, without two
thread hand-offs on the response's path. ``submit`` returns a future resolved once the
exchange is handled: the recorder awaits it before the last bytes of a response go to
the agent, so a call the agent saw complete is on disk even after ``kill -9``. Failures
never block or break the agent's response and are never swallowed: each is reported at
once and counted (the future then resolves to ``False``), and ``close()`` drains the queue.
"""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future

from rewind.core.exchange import Exchange

_Item = tuple[Exchange, "Future[bool]"]
INLINE_MAX_BYTES = 256 * 1024  # bodies up to this are stored in the caller when idle


class BackgroundSink:
    """A single worker applying ``handle`` to every submitted exchange, in order.

    ``submit`` is called from one thread (the proxy's event loop).
    """

    def __init__(self, handle: Callable[[Exchange], None]) -> None:
        self.handle = handle
        self.failures: list[str] = []
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()  # None: stop
        self._closed = False
        self._queued = 0  # written by the submitting thread only
        self._handled = 0  # written by the worker only
        self._thread = threading.Thread(target=self._work, name="rewind-sink", daemon=True)
        self._thread.start()

    def submit(self, exchange: Exchange) -> Future[bool]:
        """Store ``exchange`` now (if small and the worker idle) or queue it; the future
        says whether it was stored, and never raises."""
        done: Future[bool] = Future()
        if self._closed:
            self._fail(exchange.step, RuntimeError("the recording had already ended"))
            done.set_result(False)
        elif self._queued == self._handled and _size(exchange) <= INLINE_MAX_BYTES:
            done.set_result(self._handle(exchange))  # the worker is idle: nothing to overtake
        else:
            self._queued += 1
            self._queue.put((exchange, done))
        return done

    def close(self, timeout: float = 60.0) -> list[str]:
        """Finish every queued exchange; the failures seen."""
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout)
        return self.failures

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            exchange, done = item
            stored = self._handle(exchange)
            self._handled += 1
            done.set_result(stored)

    def _handle(self, exchange: Exchange) -> bool:
        try:
            self.handle(exchange)
        except Exception as exc:  # recording must fail loudly, not silently
            self._fail(exchange.step, exc)
            return False
        return True

    def _fail(self, step: int, exc: Exception) -> None:
        message = f"rewind: step {step} was NOT recorded: {type(exc).__name__}: {exc}"
        self.failures.append(message)
        print(message, file=sys.stderr, flush=True)


def _size(exchange: Exchange) -> int:
    return len(exchange.request_body) + len(exchange.response_body)
