"""A transient progress bar with bytes on stderr, for exports, pushes and pulls."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

PROGRESS_FROM_BYTES = 8 * 1024 * 1024  # a bar only for transfers at least this big


@contextmanager
def byte_progress(label: str) -> Iterator[Callable[[int, int], None]]:
    """``report(done, total)``: a bar appears once ``total`` is big enough (a total of 0:
    unknown, shown once ``done`` is big enough)."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TransferSpeedColumn

    bar = Progress(BarColumn(), DownloadColumn(), TransferSpeedColumn(), console=_console(), transient=True)
    task: list[TaskID] = []

    def report(done: int, total: int) -> None:
        if max(total, done) < PROGRESS_FROM_BYTES:
            return
        if not task:
            bar.start()
            task.append(bar.add_task(label, total=total or None))
        bar.update(task[0], completed=done)

    try:
        yield report
    finally:
        if task:  # stopping a bar never shown would print an empty line
            bar.stop()


def _console() -> Any:
    from rich.console import Console

    return Console(stderr=True)
