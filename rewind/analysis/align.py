"""Pair the steps of two recorded runs, call slot by call slot.

    align(a, b)  ->  [Pair(a_step | None, b_step | None, status, request_same, response_same)]

Two runs of one agent make mostly the same calls in the same order, so their steps are
aligned the way a diff aligns the lines of two files: a call only one run makes is
``only_a`` or ``only_b``, and the steps after it still pair up. Steps are matched in
passes, each looser than the one before and each only inside the gaps the earlier passes
left:

    1. same request      fingerprint; of a run of retries (one request several times in a
                         row) the last tries pair, the earlier ones are left over
    2. same call slot    (kind, method, endpoint with model names elided), so a changed
                         system prompt, which changes every later fingerprint, still pairs
                         the calls 1:1
    3. same kind         an LLM call that went to another provider or API

Each pass matches a longest common subsequence of keys: the common prefix and suffix are
trimmed, keys that occur once on each side anchor the rest (patience diff), a block with
no anchor takes Myers' O((N+M)D) diff while it differs in at most ``MAX_EDITS`` places,
and beyond that a greedy scan that, at each mismatch, goes on where the two sides agree
again (nearby first, else at the next occurrence of either key). Runs that mostly agree
align in about linear time; no pass is O(N*M) over whole runs.
"""

from __future__ import annotations

import bisect
import re
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["MAX_EDITS", "Pair", "Status", "StepView", "align", "generic_path"]

MAX_EDITS = 500  # beyond this many differences in a block, the greedy scan takes over
_NEAR = 8  # how far the greedy scan first looks for the runs agreeing again after a mismatch
# offsets to try from a mismatch, nearest first, substitutions before insertions
_OFFSETS = sorted(
    ((da, db) for da in range(_NEAR + 1) for db in range(_NEAR + 1) if da or db),
    key=lambda o: (o[0] + o[1], abs(o[0] - o[1])),
)
_MODEL_SEGMENT = re.compile(r"/(models?|deployments)/[^/:?]+")

Key = Hashable
Match = tuple[int, int]
Box = tuple[int, int, int, int]  # a_lo, a_hi, b_lo, b_hi


@dataclass(frozen=True)
class StepView:
    """One step as the analyses see it."""

    step: int  # 1-based step number in its session
    kind: str  # "llm", "http", ...
    method: str
    endpoint: str  # "POST api.openai.com/v1/chat/completions": method, host and path
    fingerprint: str  # request identity
    meaning: str  # response meaning digest; equal digests = the same answer for the agent
    model: str | None  # requested model
    reported_model: str | None  # model the provider reports in the response


class Status(StrEnum):
    """How the two steps of a pair compare."""

    SAME = "same"
    CHANGED = "changed"
    ONLY_A = "only_a"
    ONLY_B = "only_b"


@dataclass(frozen=True)
class Pair:
    """Two steps in the same call slot, or a step one run makes and the other does not."""

    a: StepView | None
    b: StepView | None
    status: Status
    request_same: bool
    response_same: bool


def generic_path(path: str) -> str:
    """A path or endpoint with model and deployment names elided: the call slot it fills."""
    return _MODEL_SEGMENT.sub(r"/\1/*", path)


def align(a: Sequence[StepView], b: Sequence[StepView]) -> list[Pair]:
    """The steps of two runs in order, paired where they fill the same call slot."""
    return _pairs(a, b, _refine(a, b, (0, len(a), 0, len(b)), 0))


# --- passes ---------------------------------------------------------------------------


def _request(step: StepView) -> Key:
    return step.fingerprint


def _slot(step: StepView) -> Key:
    return step.kind, step.method, generic_path(step.endpoint)


def _kind(step: StepView) -> Key:
    return step.kind


# (key, whether runs of equal keys pair from their last element)
_PASSES: tuple[tuple[Callable[[StepView], Key], bool], ...] = (
    (_request, True),
    (_slot, False),
    (_kind, False),
)


def _refine(a: Sequence[StepView], b: Sequence[StepView], box: Box, level: int) -> list[Match]:
    """Matches inside ``box`` by pass ``level``, and by the later passes in its gaps."""
    a_lo, a_hi, b_lo, b_hi = box
    if level == len(_PASSES) or a_lo == a_hi or b_lo == b_hi:
        return []
    key, runs = _PASSES[level]
    keys_a = [key(a[i]) for i in range(a_lo, a_hi)]
    keys_b = [key(b[j]) for j in range(b_lo, b_hi)]
    matches: list[Match] = []
    i, j = a_lo, b_lo
    for mi, mj in _match(keys_a, keys_b, runs):
        if a_lo + mi > i and b_lo + mj > j:
            matches += _refine(a, b, (i, a_lo + mi, j, b_lo + mj), level + 1)
        matches.append((a_lo + mi, b_lo + mj))
        i, j = a_lo + mi + 1, b_lo + mj + 1
    return matches + _refine(a, b, (i, a_hi, j, b_hi), level + 1)


def _pairs(a: Sequence[StepView], b: Sequence[StepView], matches: list[Match]) -> list[Pair]:
    pairs: list[Pair] = []
    i = j = 0
    for mi, mj in matches:
        if mi > i or mj > j:
            pairs += _unmatched(a[i:mi], b[j:mj])
        pairs.append(_paired(a[mi], b[mj]))
        i, j = mi + 1, mj + 1
    return pairs + _unmatched(a[i:], b[j:])


def _paired(a: StepView, b: StepView) -> Pair:
    request, response = a.fingerprint == b.fingerprint, a.meaning == b.meaning
    status = Status.SAME if request and response else Status.CHANGED
    return Pair(a, b, status, request, response)


def _unmatched(a: Sequence[StepView], b: Sequence[StepView]) -> list[Pair]:
    only_a = [Pair(step, None, Status.ONLY_A, False, False) for step in a]
    return only_a + [Pair(None, step, Status.ONLY_B, False, False) for step in b]


# --- matching keys --------------------------------------------------------------------


def _match(keys_a: list[Key], keys_b: list[Key], runs: bool) -> list[Match]:
    """A longest common subsequence of two key lists, as sorted index pairs."""
    if not runs:
        return _lcs(keys_a, keys_b)
    runs_a, runs_b = _runs(keys_a), _runs(keys_b)
    matched = _lcs([keys_a[s] for s, _ in runs_a], [keys_b[s] for s, _ in runs_b])
    return [m for ra, rb in matched for m in _last_tries(runs_a[ra], runs_b[rb])]


def _runs(keys: list[Key]) -> list[tuple[int, int]]:
    """(start, length) of each run of equal consecutive keys."""
    starts = [i for i in range(len(keys)) if i == 0 or keys[i] != keys[i - 1]]
    ends = [*starts[1:], len(keys)] if starts else []
    return [(s, e - s) for s, e in zip(starts, ends, strict=True)]


def _last_tries(run_a: tuple[int, int], run_b: tuple[int, int]) -> list[Match]:
    """Two runs of one request pair from their ends: the earlier tries were retried."""
    (start_a, len_a), (start_b, len_b) = run_a, run_b
    n = min(len_a, len_b)
    return [(start_a + len_a - n + t, start_b + len_b - n + t) for t in range(n)]


def _lcs(keys_a: list[Key], keys_b: list[Key]) -> list[Match]:
    found: list[Match] = []
    todo: list[Box] = [(0, len(keys_a), 0, len(keys_b))]
    while todo:
        box = _trim(keys_a, keys_b, todo.pop(), found)
        todo += _split(keys_a, keys_b, box, found)
    return sorted(found)


def _trim(keys_a: list[Key], keys_b: list[Key], box: Box, found: list[Match]) -> Box:
    """The box without its common prefix and suffix, which go to ``found``."""
    a_lo, a_hi, b_lo, b_hi = box
    while a_lo < a_hi and b_lo < b_hi and keys_a[a_lo] == keys_b[b_lo]:
        found.append((a_lo, b_lo))
        a_lo, b_lo = a_lo + 1, b_lo + 1
    while a_lo < a_hi and b_lo < b_hi and keys_a[a_hi - 1] == keys_b[b_hi - 1]:
        a_hi, b_hi = a_hi - 1, b_hi - 1
        found.append((a_hi, b_hi))
    return a_lo, a_hi, b_lo, b_hi


def _split(keys_a: list[Key], keys_b: list[Key], box: Box, found: list[Match]) -> list[Box]:
    """Matches inside a trimmed box go to ``found``; returns the boxes left to match."""
    a_lo, a_hi, b_lo, b_hi = box
    if a_lo == a_hi or b_lo == b_hi:
        return []
    if a_hi - a_lo == 1 or b_hi - b_lo == 1:
        found += _single(keys_a, keys_b, box)
        return []
    count_a, count_b = Counter(keys_a[a_lo:a_hi]), Counter(keys_b[b_lo:b_hi])
    if count_a.keys().isdisjoint(count_b):
        return []
    anchors = _anchors(keys_a, keys_b, box, count_a, count_b)
    if anchors:
        found += anchors
        return _gaps(box, anchors)
    edits = _myers(keys_a, keys_b, box)
    found += _greedy(keys_a, keys_b, box) if edits is None else edits
    return []


def _single(keys_a: list[Key], keys_b: list[Key], box: Box) -> list[Match]:
    """A box with one element on a side: that element's first match, if any."""
    a_lo, a_hi, b_lo, b_hi = box
    if a_hi - a_lo == 1:
        return [(a_lo, j) for j in range(b_lo, b_hi) if keys_b[j] == keys_a[a_lo]][:1]
    return [(i, b_lo) for i in range(a_lo, a_hi) if keys_a[i] == keys_b[b_lo]][:1]


def _gaps(box: Box, anchors: list[Match]) -> list[Box]:
    a_lo, a_hi, b_lo, b_hi = box
    starts = [(a_lo - 1, b_lo - 1), *anchors]
    ends = [*anchors, (a_hi, b_hi)]
    return [(i + 1, ei, j + 1, ej) for (i, j), (ei, ej) in zip(starts, ends, strict=True)]


def _anchors(
    keys_a: list[Key], keys_b: list[Key], box: Box, count_a: Counter[Key], count_b: Counter[Key]
) -> list[Match]:
    """Keys found exactly once on each side, in the longest order both sides agree on."""
    a_lo, a_hi, b_lo, b_hi = box
    where_b = {keys_b[j]: j for j in range(b_lo, b_hi) if count_b[keys_b[j]] == 1 and count_a[keys_b[j]] == 1}
    return _increasing([(i, where_b[keys_a[i]]) for i in range(a_lo, a_hi) if keys_a[i] in where_b])


def _increasing(pairs: list[Match]) -> list[Match]:
    """The longest subsequence of ``pairs`` (sorted by first index) whose second index rises."""
    tails: list[int] = []  # per length, the smallest second index ending such a subsequence
    tail_at: list[int] = []
    back = [-1] * len(pairs)
    for n, (_, j) in enumerate(pairs):
        k = bisect.bisect_left(tails, j)
        back[n] = tail_at[k - 1] if k else -1
        if k == len(tails):
            tails.append(j)
            tail_at.append(n)
        else:
            tails[k], tail_at[k] = j, n
    chain: list[Match] = []
    n = tail_at[-1] if tail_at else -1
    while n >= 0:
        chain.append(pairs[n])
        n = back[n]
    return chain[::-1]


def _myers(keys_a: list[Key], keys_b: list[Key], box: Box) -> list[Match] | None:
    """The matches of a shortest edit script, or ``None`` past ``MAX_EDITS`` edits."""
    trace = _myers_trace(keys_a, keys_b, box)
    return None if trace is None else _myers_path(trace, box)


def _myers_trace(keys_a: list[Key], keys_b: list[Key], box: Box) -> list[list[int]] | None:
    """Per edit count d, the furthest x reached on each diagonal k with d - 1 edits.

    ``v[k]`` for negative k wraps to the list's end, which is long enough not to overlap.
    """
    a_lo, a_hi, b_lo, b_hi = box
    n, m = a_hi - a_lo, b_hi - b_lo
    most = min(n + m, MAX_EDITS)
    v = [0] * (2 * most + 3)
    trace: list[list[int]] = []
    for d in range(most + 1):
        trace.append(v[:])
        for k in range(-d, d + 1, 2):
            x = v[k + 1] if k == -d or (k != d and v[k - 1] < v[k + 1]) else v[k - 1] + 1
            y = x - k
            while x < n and y < m and keys_a[a_lo + x] == keys_b[b_lo + y]:
                x, y = x + 1, y + 1
            v[k] = x
            if x >= n and y >= m:
                return trace
    return None


def _myers_path(trace: list[list[int]], box: Box) -> list[Match]:
    a_lo, a_hi, b_lo, b_hi = box
    x, y = a_hi - a_lo, b_hi - b_lo
    path: list[Match] = []
    for d in range(len(trace) - 1, -1, -1):
        v, k = trace[d], x - y
        prev_k = k + 1 if k == -d or (k != d and v[k - 1] < v[k + 1]) else k - 1
        prev_x = v[prev_k]
        prev_y = prev_x - prev_k
        while x > prev_x and y > prev_y:
            x, y = x - 1, y - 1
            path.append((a_lo + x, b_lo + y))
        x, y = prev_x, prev_y
    return path[::-1]


def _greedy(keys_a: list[Key], keys_b: list[Key], box: Box) -> list[Match]:
    """Walk both sides; at a mismatch, go on where they agree again. About O(N + M)."""
    a_lo, a_hi, b_lo, b_hi = box
    where = _positions(keys_a, a_lo, a_hi), _positions(keys_b, b_lo, b_hi)
    found: list[Match] = []
    i, j = a_lo, b_lo
    while i < a_hi and j < b_hi:
        if keys_a[i] == keys_b[j]:
            found.append((i, j))
            i, j = i + 1, j + 1
        else:
            i, j = _resync(keys_a, keys_b, (i, a_hi, j, b_hi), where)
    return found


def _resync(
    keys_a: list[Key], keys_b: list[Key], box: Box, where: tuple[dict[Key, list[int]], ...]
) -> tuple[int, int]:
    """Where two mismatching sides agree again for two keys in a row: nearby, else at the
    next occurrence of either key; if nowhere, both sides move on by one (a changed call)."""
    i, a_hi, j, b_hi = box
    near = ((i + da, j + db) for da, db in _OFFSETS)
    far = sorted(
        [(i, _next(where[1], keys_a[i], j)), (_next(where[0], keys_b[j], i), j)],
        key=lambda m: m[0] - i + m[1] - j,
    )
    return next((m for m in (*near, *far) if _agree(keys_a, keys_b, m, box)), (i + 1, j + 1))


def _agree(keys_a: list[Key], keys_b: list[Key], at: Match, box: Box) -> bool:
    """Whether the sides agree at ``at`` and just after it (or one of them ends there)."""
    (i, j), (_, a_hi, _, b_hi) = at, box
    if i >= a_hi or j >= b_hi or keys_a[i] != keys_b[j]:
        return False
    return i + 1 == a_hi or j + 1 == b_hi or keys_a[i + 1] == keys_b[j + 1]


def _positions(keys: list[Key], lo: int, hi: int) -> dict[Key, list[int]]:
    where: dict[Key, list[int]] = defaultdict(list)
    for i in range(lo, hi):
        where[keys[i]].append(i)
    return where


def _next(where: dict[Key, list[int]], key: Key, start: int) -> int:
    """The first position of ``key`` from ``start`` on, or ``sys.maxsize`` when none."""
    positions = where.get(key, [])
    k = bisect.bisect_left(positions, start)
    return positions[k] if k < len(positions) else sys.maxsize
