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
Called while storing in the proxy's event loop, the job is run on that loop ``DEFER_S``
later, together with every other job asked for meanwhile (at once when ``MAX_DEFERRED``
are waiting): not right after the response, when an agent that got its answer is most
likely to send its next request, but while it thinks or waits for its next answer.
Called on the worker, it is queued behind what is there. Jobs never run in another thread
than the one storing (a second thread computing beside the event loop only makes it wait
for the GIL), and ``close()`` runs any job still waiting (a loop stopped before its turn).
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
DEFER_S = 0.02  # how long a job asked for on the event loop waits, with the others
MAX_DEFERRED = 256  # this many waiting run at once


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
        self._pending: list[Callable[[], None]] = []  # jobs deferred on the event loop
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
        """Run ``job`` once the response is long gone (see module). Thread-safe."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._queue.put(job)
            return
        with self._pending_lock:
            self._pending.append(job)
            waiting = len(self._pending)
        if waiting >= MAX_DEFERRED:
            loop.call_soon(self._run_pending)
        elif waiting == 1:  # the first since the last run: nothing else will run it
            loop.call_later(DEFER_S, self._run_pending)

    def _run_pending(self) -> None:
        with self._pending_lock:
            jobs, self._pending = self._pending, []
        for job in jobs:
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
        self._run_pending()
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
