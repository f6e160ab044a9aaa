"""``Matcher.put_back``: a fault served in place of a step undoes its take, so a retry of the
same request finds the recorded answer, and the summary counts it as never served."""

from __future__ import annotations

from rewind.replay.matcher import Matcher

from .factories import make_step


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
