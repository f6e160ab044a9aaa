"""The background sink keeps order and never swallows a failure."""

from __future__ import annotations

import threading

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
    futures = [sink.submit(_ex(i)) for i in (1, 2, 3)]
    assert [f.result(5) for f in futures] == [True, False, True]  # a failure never blocks
    failures = sink.close()
    assert len(failures) == 1 and "step 2 was NOT recorded" in failures[0]
    assert "disk full" in capsys.readouterr().err


def test_the_future_resolves_only_once_the_exchange_is_handled() -> None:
    release = threading.Event()
    sink = BackgroundSink(lambda ex: release.wait(5) and None)
    done = sink.submit(_ex(1))
    assert not done.done()
    release.set()
    assert done.result(5) is True
    sink.close()


def test_a_submit_after_close_fails_loudly_and_does_not_hang(capsys: pytest.CaptureFixture[str]) -> None:
    sink = BackgroundSink(lambda ex: None)
    sink.close()
    assert sink.submit(_ex(9)).result(1) is False
    assert sink.failures and "step 9 was NOT recorded" in capsys.readouterr().err
