"""Aligning two runs: steps pair call slot by call slot, and big runs align quickly."""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest

from rewind.analysis import align as align_module
from rewind.analysis.align import Pair, Status, StepView, align, generic_path

CHAT = "POST api.openai.com/v1/chat/completions"
TOOL = "GET api.weather.example/v1/now"
ENDPOINTS = {"L": CHAT, "T": TOOL, "A": "POST api.anthropic.com/v1/messages"}

Row = tuple[int | None, int | None, Status]


def run(spec: str) -> list[StepView]:
    """Steps from a compact spec: ``L1 T2=sunny``: an LLM call with fingerprint L1, then a
    tool (HTTP) call with fingerprint T2 whose answer means "sunny" (default: the fingerprint)."""
    return [_step(n, word) for n, word in enumerate(spec.split(), start=1)]


def _step(n: int, word: str) -> StepView:
    fingerprint, _, meaning = word.partition("=")
    endpoint = ENDPOINTS[fingerprint[0]]
    kind = "http" if fingerprint[0] == "T" else "llm"
    return StepView(
        step=n,
        kind=kind,
        method=endpoint.split()[0],
        endpoint=endpoint,
        fingerprint=f"v1:{fingerprint}",
        meaning=f"m1:{meaning or fingerprint}",
        model="gpt-4o" if kind == "llm" else None,
        reported_model=None,
    )


def rows(pairs: Sequence[Pair]) -> list[Row]:
    return [(p.a.step if p.a else None, p.b.step if p.b else None, p.status) for p in pairs]


def check(pairs: Sequence[Pair], a: Sequence[StepView], b: Sequence[StepView]) -> None:
    """Every step appears once, in order; each pair's flags agree with its steps."""
    assert [p.a for p in pairs if p.a] == list(a)
    assert [p.b for p in pairs if p.b] == list(b)
    for p in pairs:
        if p.a and p.b:
            assert p.request_same == (p.a.fingerprint == p.b.fingerprint)
            assert p.response_same == (p.a.meaning == p.b.meaning)
            assert p.status is (Status.SAME if p.request_same and p.response_same else Status.CHANGED)
            assert p.a.kind == p.b.kind
        else:
            assert p.status is (Status.ONLY_A if p.a else Status.ONLY_B)
            assert not p.request_same and not p.response_same


def aligned(a: str, b: str) -> list[Row]:
    good, bad = run(a), run(b)
    pairs = align(good, bad)
    check(pairs, good, bad)
    return rows(pairs)


SAME, CHANGED, ONLY_A, ONLY_B = Status.SAME, Status.CHANGED, Status.ONLY_A, Status.ONLY_B


def test_public_names() -> None:
    assert align_module.__all__ == ["MAX_EDITS", "Pair", "Status", "StepView", "align", "generic_path"]


def test_identical_runs_pair_one_to_one() -> None:
    assert aligned("L1 T2 L3", "L1 T2 L3") == [(1, 1, SAME), (2, 2, SAME), (3, 3, SAME)]


def test_empty_runs() -> None:
    assert aligned("", "") == []
    assert aligned("L1 L2", "") == [(1, None, ONLY_A), (2, None, ONLY_A)]
    assert aligned("", "L1") == [(None, 1, ONLY_B)]


def test_every_request_changed_still_pairs_call_by_call() -> None:
    """A changed system prompt changes every fingerprint; the calls still pair 1:1."""
    assert aligned("L1 L2 L3", "L7 L8 L9") == [(1, 1, CHANGED), (2, 2, CHANGED), (3, 3, CHANGED)]


def test_changed_requests_with_the_same_answers() -> None:
    pairs = align(run("L1=a L2=b"), run("L7=a L8=b"))
    assert [(p.status, p.request_same, p.response_same) for p in pairs] == [(CHANGED, False, True)] * 2


def test_same_request_with_another_answer() -> None:
    pairs = align(run("L1 L2=x"), run("L1 L2=y"))
    assert [(p.status, p.request_same, p.response_same) for p in pairs] == [
        (SAME, True, True),
        (CHANGED, True, False),
    ]


def test_a_tool_call_inserted_in_the_middle() -> None:
    assert aligned("L1 L2 L3 L4", "L1 L2 T9 L3 L4") == [
        (1, 1, SAME),
        (2, 2, SAME),
        (None, 3, ONLY_B),
        (3, 4, SAME),
        (4, 5, SAME),
    ]


def test_a_step_deleted() -> None:
    assert aligned("L1 T2 L3 L4", "L1 L3 L4") == [(1, 1, SAME), (2, None, ONLY_A), (3, 2, SAME), (4, 3, SAME)]


def test_an_inserted_call_among_changed_requests() -> None:
    """The prompt changed everywhere and the bad run calls one more tool."""
    assert aligned("L1 T1 L2 L3", "L7 T1 L8 T2 L9") == [
        (1, 1, CHANGED),
        (2, 2, SAME),
        (3, 3, CHANGED),
        (None, 4, ONLY_B),
        (4, 5, CHANGED),
    ]


def test_a_deleted_call_among_changed_requests() -> None:
    assert aligned("L1 L2 T3 L4 L5", "L6 L7 L8 L9") == [
        (1, 1, CHANGED),
        (2, 2, CHANGED),
        (3, None, ONLY_A),
        (4, 3, CHANGED),
        (5, 4, CHANGED),
    ]


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("L1 L2", "L1 L2 L3 L4", [(1, 1, SAME), (2, 2, SAME), (None, 3, ONLY_B), (None, 4, ONLY_B)]),
        ("L1 L2 L3", "L1", [(1, 1, SAME), (2, None, ONLY_A), (3, None, ONLY_A)]),
        ("L1 L2 L3", "L1 L2 L9", [(1, 1, SAME), (2, 2, SAME), (3, 3, CHANGED)]),
        ("L1 L2", "L1 L5 L6", [(1, 1, SAME), (2, 2, CHANGED), (None, 3, ONLY_B)]),
    ],
)
def test_tails_that_differ(a: str, b: str, expected: list[Row]) -> None:
    assert aligned(a, b) == expected


def test_a_retry_in_b_pairs_its_last_try() -> None:
    assert aligned("L1 L2=ok L3", "L1 L2=error L2=ok L3") == [
        (1, 1, SAME),
        (None, 2, ONLY_B),
        (2, 3, SAME),
        (3, 4, SAME),
    ]


def test_a_retry_in_a() -> None:
    assert aligned("L1 L2=error L2=ok L3", "L1 L2=ok L3") == [
        (1, 1, SAME),
        (2, None, ONLY_A),
        (3, 2, SAME),
        (4, 3, SAME),
    ]


def test_a_retry_whose_answer_differs_pairs_the_last_try() -> None:
    assert aligned("L1 L2=ok L3", "L1 L2=error L2=other L4") == [
        (1, 1, SAME),
        (None, 2, ONLY_B),
        (2, 3, CHANGED),
        (3, 4, CHANGED),
    ]


def test_repeated_identical_calls_pair_in_order() -> None:
    assert aligned("T1=a T1=a", "T1=a T1=b") == [(1, 1, SAME), (2, 2, CHANGED)]


def test_a_gemini_model_change_keeps_the_call_slot() -> None:
    pro = "POST generativelanguage.googleapis.com/v1beta/models/gemini-1.5-pro:generateContent"
    flash = pro.replace("gemini-1.5-pro", "gemini-1.5-flash")
    a = [_view(1, pro, "v1:a"), _view(2, pro, "v1:b")]
    b = [_view(1, flash, "v1:c"), _view(2, flash, "v1:d")]
    assert rows(align(a, b)) == [(1, 1, CHANGED), (2, 2, CHANGED)]


def _view(n: int, endpoint: str, fingerprint: str, kind: str = "llm") -> StepView:
    return StepView(n, kind, "POST", endpoint, fingerprint, f"m1:{fingerprint}", None, None)


def test_another_provider_still_pairs_llm_calls() -> None:
    assert aligned("L1 T2 L3", "A1 T2 A3") == [(1, 1, CHANGED), (2, 2, SAME), (3, 3, CHANGED)]


def test_an_llm_call_never_pairs_with_an_http_call() -> None:
    assert aligned("L1", "T1") == [(1, None, ONLY_A), (None, 1, ONLY_B)]


def test_generic_path_elides_model_and_deployment_names() -> None:
    assert generic_path("/v1beta/models/gemini-1.5-pro:generateContent") == "/v1beta/models/*:generateContent"
    assert (
        generic_path("/openai/deployments/gpt4o/chat/completions") == "/openai/deployments/*/chat/completions"
    )
    assert generic_path("/model/anthropic.claude-v2/invoke") == "/model/*/invoke"
    assert generic_path("/v1/chat/completions") == "/v1/chat/completions"


# --- big runs ------------------------------------------------------------------------------

N = 10_000


def big(words: Sequence[str]) -> list[StepView]:
    return [_step(n, word) for n, word in enumerate(words, start=1)]


def statuses(pairs: Sequence[Pair]) -> dict[Status, int]:
    counts = dict.fromkeys(Status, 0)
    for p in pairs:
        counts[p.status] += 1
    return counts


def test_ten_thousand_identical_steps() -> None:
    a = big([f"L{i}" for i in range(N)])
    pairs = align(a, list(a))
    check(pairs, a, a)
    assert statuses(pairs)[SAME] == N


def test_ten_thousand_changed_requests() -> None:
    a, b = big([f"L{i}" for i in range(N)]), big([f"L{i}x" for i in range(N)])
    pairs = align(a, b)
    check(pairs, a, b)
    assert statuses(pairs)[CHANGED] == N


def test_ten_thousand_steps_with_one_inserted_and_one_deleted() -> None:
    words = [f"L{i}" if i % 2 else f"T{i}" for i in range(N)]
    bad = words[:2000] + ["T99999"] + words[2000:7000] + words[7001:]
    a, b = big(words), big(bad)
    pairs = align(a, b)
    check(pairs, a, b)
    assert statuses(pairs) == {SAME: N - 1, CHANGED: 0, ONLY_A: 1, ONLY_B: 1}


def test_ten_thousand_polls_of_one_url() -> None:
    words = ["T1=busy"] * N
    bad = list(words)
    bad[100] = bad[9000] = "T1=done"
    a, b = big(words), big(bad)
    pairs = align(a, b)
    check(pairs, a, b)
    assert statuses(pairs) == {SAME: N - 2, CHANGED: 2, ONLY_A: 0, ONLY_B: 0}


def test_ten_thousand_changed_llm_calls_between_the_same_tool_calls() -> None:
    good = [w for i in range(N // 2) for w in (f"L{i}", f"T{i}")]
    bad = [w for i in range(N // 2) for w in (f"L{i}x", f"T{i}")]
    a, b = big(good), big(bad)
    pairs = align(a, b)
    check(pairs, a, b)
    assert statuses(pairs) == {SAME: N // 2, CHANGED: N // 2, ONLY_A: 0, ONLY_B: 0}


def test_ten_thousand_steps_with_many_scattered_differences() -> None:
    """Repeated requests and more differences than Myers' limit: the greedy scan aligns."""
    rng = random.Random(7)
    words = [f"T{rng.randint(0, 300)}" for _ in range(N)]
    bad = [w if rng.random() > 0.05 else "L0" for w in words]
    bad = [w for i, w in enumerate(bad) if i % 97]
    a, b = big(words), big(bad)
    pairs = align(a, b)
    check(pairs, a, b)
    assert statuses(pairs)[SAME] > 0.9 * N


def test_ten_thousand_unrelated_steps() -> None:
    rng = random.Random(3)
    a = big([rng.choice(["L1", "T1", "T2", "L2=x"]) for _ in range(N)])
    b = big([rng.choice(["L1", "T1", "T3", "L2=y"]) for _ in range(N)])
    check(align(a, b), a, b)


@pytest.mark.parametrize("seed", range(40))
def test_small_random_runs_keep_every_step_in_order(seed: int) -> None:
    rng = random.Random(seed)
    alphabet = ["L1", "L2", "L3=x", "T1", "T2=y", "A1"]
    a = big([rng.choice(alphabet) for _ in range(rng.randint(0, 30))])
    b = big([rng.choice(alphabet) for _ in range(rng.randint(0, 30))])
    check(align(a, b), a, b)


def test_myers_finds_a_longest_common_subsequence() -> None:
    rng = random.Random(11)
    for _ in range(300):
        a = [rng.randint(0, 3) for _ in range(rng.randint(0, 12))]
        b = [rng.randint(0, 3) for _ in range(rng.randint(0, 12))]
        found = align_module._myers(list(a), list(b), (0, len(a), 0, len(b)))
        assert found is not None and len(found) == _lcs_length(a, b)
        assert all(a[i] == b[j] for i, j in found)


def _lcs_length(a: list[int], b: list[int]) -> int:
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            table[i + 1][j + 1] = table[i][j] + 1 if x == y else max(table[i][j + 1], table[i + 1][j])
    return table[-1][-1]
