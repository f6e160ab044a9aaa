"""Hand exchanges to the store off the proxy's event loop, and say when each is kept.

Redaction, hashing and compression happen in one worker thread (one, so steps reach the
journal in the order they were submitted). A small exchange submitted while the worker
is idle is handled at once in the submitting thread instead: the same order, without two
thread hand-offs on the response's path. ``submit`` returns a future resolved once the
exchange is handled: the recorder awaits it before the last bytes of a response go to
the agent, so a call the agent saw complete is on disk even after ``kill -9``. Failures
never block or break the agent's response and are never swallowed: each is reported at
once and counted (the future then resolves to ``False``), and ``close()`` drains the queue.

``later(job)`` defers work that need not delay a response (describing a stored step).
Called while storing in the proxy's event loop, the job is scheduled on that loop: it runs
once the response hook has returned and the response's bytes are written. Called on the
worker, it is queued behind what is there. Jobs never run in another thread than the one
storing (a second thread computing beside the event loop only makes it wait for the GIL),
and ``close()`` runs any job still pending (a loop stopped before running it).
"""

from __future__ import annotations

import asyncio
import queue
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future

from rewind.core.exchange import Exchange

_Item = tuple[Exchange, "Future[bool]"] | Callable[[], None]
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
        self._pending: set[Callable[[], None]] = set()  # jobs scheduled on the event loop
        self._pending_lock = threading.Lock()
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

    def later(self, job: Callable[[], None]) -> None:
        """Run ``job`` after the current response is on its way (see module). Thread-safe."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._queue.put(job)
            return
        with self._pending_lock:
            self._pending.add(job)
        loop.call_soon(self._run_pending, job)

    def _run_pending(self, job: Callable[[], None]) -> None:
        with self._pending_lock:
            if job not in self._pending:
                return
            self._pending.discard(job)
        _run_job(job)

    def close(self, timeout: float = 60.0) -> list[str]:
        """Finish every queued exchange; the failures seen."""
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout)
        self._run_left_jobs()
        return self.failures

    def _run_left_jobs(self) -> None:
        """Jobs a stopped loop never ran, and jobs the worker queued behind the end while
        storing the last exchanges."""
        with self._pending_lock:
            left, self._pending = list(self._pending), set()
        for job in left:
            _run_job(job)
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if callable(item):
                _run_job(item)

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            if callable(item):
                _run_job(item)
                continue
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


def _run_job(job: Callable[[], None]) -> None:
    try:
        job()
    except Exception as exc:  # said, never swallowed: the step itself is already stored
        print(f"rewind: WARNING: describing a recorded step failed: {type(exc).__name__}: {exc}",
              file=sys.stderr, flush=True)


def _size(exchange: Exchange) -> int:
    return len(exchange.request_body) + len(exchange.response_body)
