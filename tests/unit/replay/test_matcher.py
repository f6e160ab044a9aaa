from __future__ import annotations

import threading

from rewind.replay.matcher import Matcher, is_failure, is_replayable

from .factories import make_step


def test_repeated_prompt_gets_recorded_answers_in_order() -> None:
    matcher = Matcher(
        [make_step(1, "v1:a"), make_step(2, "v1:b"), make_step(3, "v1:a"), make_step(4, "v1:a")]
    )
    assert [matcher.take("v1:a").step for _ in range(3)] == [1, 3, 4]  # type: ignore[union-attr]
    assert matcher.take("v1:a") is None


def test_queues_follow_step_order_not_list_order() -> None:
    matcher = Matcher([make_step(5, "v1:a"), make_step(2, "v1:a")])
    assert matcher.take("v1:a").step == 2  # type: ignore[union-attr]


def test_unknown_fingerprint_is_a_miss() -> None:
    assert Matcher([make_step(1, "v1:a")]).take("v1:zz") is None


def test_reuse_serves_the_last_answer_again() -> None:
    matcher = Matcher([make_step(1, "v1:a"), make_step(2, "v1:a")], reuse=True)
    steps = [matcher.take("v1:a") for _ in range(4)]
    assert [s.step for s in steps if s] == [1, 2, 2, 2]
    assert matcher.served == 2 and matcher.answers == 4


def test_reuse_does_not_invent_answers_for_unknown_fingerprints() -> None:
    assert Matcher([make_step(1, "v1:a")], reuse=True).take("v1:b") is None


def test_unused_lists_never_served_steps_in_step_order() -> None:
    matcher = Matcher([make_step(3, "v1:c"), make_step(1, "v1:a"), make_step(2, "v1:b")])
    matcher.take("v1:b")
    assert [s.step for s in matcher.unused()] == [1, 3]
    assert matcher.served == 1


def test_recorded_failures_replay_and_incomplete_steps_are_skipped() -> None:
    failed = make_step(1, "v1:a", status=None, error="connection refused")
    limited = make_step(2, "v1:a", status=429)
    incomplete = make_step(3, "v1:b", status=None)
    matcher = Matcher([failed, limited, incomplete])
    assert is_failure(failed) and not is_failure(limited) and not is_failure(incomplete)
    assert not is_replayable(incomplete)
    assert matcher.take("v1:a") is failed and matcher.take("v1:a") is limited
    assert matcher.take("v1:b") is None
    assert matcher.skipped == [incomplete] and matcher.unused() == []
    assert [s.step for s in matcher.recorded] == [1, 2]


def test_concurrent_takes_serve_each_step_exactly_once() -> None:
    steps = [make_step(i, f"v1:{i % 4}") for i in range(1, 401)]
    matcher = Matcher(steps)
    taken: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def worker(index: int) -> None:
        barrier.wait()
        for _ in range(60):
            step = matcher.take(f"v1:{index % 4}")
            if step is not None:
                with lock:
                    taken.append(step.step)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(taken) == list(range(1, 401))
    assert matcher.served == 400 and matcher.unused() == []
