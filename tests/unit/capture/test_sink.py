"""The background sink keeps order and never swallows a failure."""

from __future__ import annotations

import threading

import pytest

from rewind.capture import sink as sink_module
from rewind.capture.sink import INLINE_MAX_BYTES, BackgroundSink
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


def _big(step: int) -> Exchange:
    body = b"x" * (INLINE_MAX_BYTES + 1)
    return Exchange(step=step, started_at=0.0, method="GET", url="http://x/", response_body=body)


def test_behind_a_busy_worker_exchanges_queue_and_resolve_once_handled() -> None:
    release = threading.Event()
    seen: list[int] = []
    sink = BackgroundSink(lambda ex: release.wait(5) and seen.append(ex.step))
    first, second = sink.submit(_big(1)), sink.submit(_ex(2))
    assert not first.done() and not second.done()  # the small one waits its turn too
    release.set()
    assert first.result(5) is True and second.result(5) is True and seen == [1, 2]
    sink.close()


def test_a_small_exchange_is_stored_at_once_when_the_worker_is_idle() -> None:
    threads: list[str] = []
    sink = BackgroundSink(lambda ex: threads.append(threading.current_thread().name))
    assert sink.submit(_ex(1)).done()  # no hand-off on the response's path
    assert sink.submit(_big(2)).result(5) is True
    assert threads == [threading.current_thread().name, "rewind-sink"]
    sink.close()


def test_a_submit_after_close_fails_loudly_and_does_not_hang(capsys: pytest.CaptureFixture[str]) -> None:
    sink = BackgroundSink(lambda ex: None)
    sink.close()
    assert sink.submit(_ex(9)).result(1) is False
    assert sink.failures and "step 9 was NOT recorded" in capsys.readouterr().err


def test_later_jobs_on_the_event_loop_run_together_well_after_the_responses() -> None:
    import asyncio

    order: list[str] = []
    sink = BackgroundSink(lambda ex: sink.later(lambda: order.append(f"described {ex.step}")))

    async def two_responses() -> None:
        for step in (1, 2):
            sink.submit(_ex(step))  # small and idle: stored in this thread
            order.append(f"response {step} sent")
            await asyncio.sleep(0)  # the agent's next request comes in
        order.append("still waiting")
        await asyncio.sleep(sink_module.DEFER_S * 3)

    asyncio.run(two_responses())
    assert order == ["response 1 sent", "response 2 sent", "still waiting", "described 1", "described 2"]
    sink.close()


def test_many_waiting_jobs_run_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    monkeypatch.setattr(sink_module, "MAX_DEFERRED", 3)
    ran: list[int] = []
    sink = BackgroundSink(lambda ex: sink.later(lambda: ran.append(ex.step)))

    async def three_responses() -> list[int]:
        for step in (1, 2, 3):
            sink.submit(_ex(step))
        await asyncio.sleep(0)
        return list(ran)

    assert asyncio.run(three_responses()) == [1, 2, 3]
    sink.close()
    assert ran == [1, 2, 3]


def test_a_later_job_the_loop_never_ran_runs_at_close() -> None:
    import asyncio

    ran: list[int] = []
    sink = BackgroundSink(lambda ex: sink.later(lambda: ran.append(ex.step)))
    loop = asyncio.new_event_loop()

    def store_then_stop() -> None:
        sink.submit(_ex(1))
        loop.stop()  # the loop ends with this iteration, before the job's

    loop.call_soon(store_then_stop)
    loop.run_forever()
    loop.close()
    assert ran == []
    sink.close()
    assert ran == [1]


def test_a_later_job_off_the_loop_is_queued_behind_the_work(capsys: pytest.CaptureFixture[str]) -> None:
    ran: list[int] = []
    sink = BackgroundSink(lambda ex: None)
    sink.later(lambda: ran.append(1))
    sink.later(lambda: 1 / 0)  # type: ignore[func-returns-value]
    sink.close()
    assert ran == [1] and "describing a recorded step failed: ZeroDivisionError" in capsys.readouterr().err
