"""The background sink keeps order and never swallows a failure."""

from __future__ import annotations

import pytest

from rewind.capture.sink import BackgroundSink
from rewind.core.exchange import Exchange


def _ex(step: int) -> Exchange:
    return Exchange(step=step, started_at=0.0, method="GET", url="http://x/")


def test_handles_in_order_and_drains_on_close() -> None:
    seen: list[int] = []
    sink = BackgroundSink(lambda ex: seen.append(ex.step))
    for i in range(1, 51):
        sink.submit(_ex(i))
    assert sink.close() == []
    assert seen == list(range(1, 51))


def test_failures_are_reported_and_kept(capsys: pytest.CaptureFixture[str]) -> None:
    def handle(ex: Exchange) -> None:
        if ex.step == 2:
            raise OSError("disk full")

    sink = BackgroundSink(handle)
    for i in (1, 2, 3):
        sink.submit(_ex(i))
    failures = sink.close()
    assert len(failures) == 1 and "step 2 was NOT recorded" in failures[0]
    assert "disk full" in capsys.readouterr().err
