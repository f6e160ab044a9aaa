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


# --- put_back: a fault served in place of a step undoes its take ----------------------------


def _take(matcher: Matcher, fingerprint: str) -> int | None:
    step = matcher.take(fingerprint)
    return step.step if step is not None else None


def test_a_put_back_step_is_served_next_for_its_fingerprint() -> None:
    matcher = Matcher([make_step(1, "v1:a"), make_step(2, "v1:b"), make_step(3, "v1:a")])
    taken = matcher.take("v1:a")
    assert taken is not None and taken.step == 1
    matcher.put_back(taken)
    assert [_take(matcher, "v1:a") for _ in range(3)] == [1, 3, None]


def test_a_put_back_step_goes_before_later_steps_of_its_fingerprint() -> None:
    matcher = Matcher([make_step(1, "v1:a"), make_step(2, "v1:a"), make_step(3, "v1:a")])
    assert _take(matcher, "v1:a") == 1
    second = matcher.take("v1:a")
    assert second is not None
    matcher.put_back(second)
    assert [_take(matcher, "v1:a") for _ in range(3)] == [2, 3, None]


def test_putting_back_leaves_other_fingerprints_alone() -> None:
    matcher = Matcher([make_step(1, "v1:a"), make_step(2, "v1:b")])
    taken = matcher.take("v1:a")
    assert taken is not None
    matcher.put_back(taken)
    assert _take(matcher, "v1:b") == 2
    assert _take(matcher, "v1:b") is None


def test_counts_are_as_if_the_step_had_not_been_taken() -> None:
    matcher = Matcher([make_step(1, "v1:a"), make_step(2, "v1:b"), make_step(3, "v1:a")])
    assert _take(matcher, "v1:b") == 2
    taken = matcher.take("v1:a")
    assert taken is not None
    assert (matcher.served, matcher.answers) == (2, 2)
    matcher.put_back(taken)
    assert (matcher.served, matcher.answers) == (1, 1)
    assert [s.step for s in matcher.unused()] == [1, 3]


def test_the_retry_after_a_put_back_counts_once() -> None:
    matcher = Matcher([make_step(1, "v1:a"), make_step(2, "v1:a")])
    taken = matcher.take("v1:a")
    assert taken is not None
    matcher.put_back(taken)
    assert _take(matcher, "v1:a") == 1
    assert (matcher.served, matcher.answers) == (1, 1)
    assert [s.step for s in matcher.unused()] == [2]


def test_a_put_back_step_is_served_again_then_reused_when_reusing() -> None:
    matcher = Matcher([make_step(1, "v1:a")], reuse=True)
    taken = matcher.take("v1:a")
    assert taken is not None
    matcher.put_back(taken)
    assert [_take(matcher, "v1:a") for _ in range(3)] == [1, 1, 1]
    assert (matcher.served, matcher.answers) == (1, 3)


def test_undoing_a_reused_take_keeps_the_earlier_one() -> None:
    matcher = Matcher([make_step(1, "v1:a")], reuse=True)
    assert _take(matcher, "v1:a") == 1
    again = matcher.take("v1:a")  # the recorded answer reused
    assert again is not None
    matcher.put_back(again)  # undo the second take only
    assert (matcher.served, matcher.answers) == (1, 1)
    assert matcher.unused() == []
