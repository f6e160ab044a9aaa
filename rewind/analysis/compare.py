"""Two recorded runs side by side: the records ``rewind diff`` and ``rewind bisect`` show.

    Run(info, rows, fetch)            one session's steps as ``StepView`` s; the few steps
                                      looked at closely are fetched (bodies too) on demand
    compare(a, b)   ->  Comparison    every aligned pair; for a changed pair (up to
                                      ``MAX_DETAILED``) its field-level ``Change`` s
    bisect_runs(good, bad)  ->  (Bisection, [Change])   the first divergence, its cause,
                                      and what changed at it

Responses are compared by meaning (``rewind.canon.meaning``): the digest kept at record
time, or for steps recorded before that, computed here from the stored body. Requests
are compared by fingerprint, and a changed request part by part
(``rewind.canon.fingerprint.describe_parts``). Prompts, answers, tool arguments, tool
lists and HTTP bodies that differ get a unified text diff (``difflib``); the rest is
shown as its two values. Nothing here renders: the JSON and the tables are views of
these records.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rewind.analysis.align import Pair, Status, StepView, align
from rewind.analysis.cause import Bisection, bisect
from rewind.canon.conversation import conversation
from rewind.canon.fingerprint import FINGERPRINT_VERSION, canonical_request, describe_parts, fingerprint
from rewind.canon.meaning import Meaning, response_meaning
from rewind.canon.providers import provider_named
from rewind.core.exchange import header
from rewind.store.models import SessionInfo

if TYPE_CHECKING:
    from rewind.store.compare_rows import CompareRow, StepDetail, StepKey

__all__ = [
    "MAX_DETAILED",
    "Change",
    "Comparison",
    "PairDiff",
    "Run",
    "bisect_runs",
    "compare",
    "response_json",
    "text_diff",
]

MAX_DETAILED = 200  # changed pairs whose fields ``compare`` works out; the rest are counted
CONTEXT_LINES = 2  # unchanged lines around each change in a text diff

CURRENT = f"v{FINGERPRINT_VERSION}:"  # the prefix of fingerprints computed today
Fetch = Callable[[list["StepKey"]], Mapping["StepKey", "StepDetail"]]


# --- one run -------------------------------------------------------------------------------


class Run:
    """One session's steps as the analyses see them, and their details when asked."""

    def __init__(self, info: SessionInfo, rows: Sequence[CompareRow], fetch: Fetch) -> None:
        rows = [r for r in rows if r.kind != "telemetry"]  # uploads of traces: not the run
        self.info = info
        self._fetch = fetch
        self._details: dict[int, StepDetail] = {}
        self._meanings: dict[int, Meaning] = {}
        self._parts: dict[int, dict[str, Any]] = {}
        stale = [r for r in rows if not r.fingerprint.startswith(CURRENT)]
        self.load([r.step for r in rows if r.meaning is None] + [r.step for r in stale])
        self._current = {r.step: self._refingerprint(r) for r in stale}
        self.views = [self._view(r) for r in rows]
        self._own = {id(v) for v in self.views}

    def _view(self, r: CompareRow) -> StepView:
        meaning = r.meaning if r.meaning is not None else self.meaning_of(r.step).digest()
        fingerprint = self._current.get(r.step, r.fingerprint)
        return StepView(
            r.step, r.kind, r.method, r.endpoint, fingerprint, meaning, r.model, r.response_model
        )

    def _refingerprint(self, r: CompareRow) -> str:
        """A step recorded under an older fingerprint version, under the current one (so
        that a v1 session compares with a v2 one), from its stored request."""
        d = self.detail(r.step)
        return fingerprint(r.method, d.url, d.request_headers, d.request_body, provider_named(d.provider))

    def owns(self, view: StepView) -> bool:
        return id(view) in self._own

    def load(self, steps: Iterable[int]) -> None:
        """Fetch the details of ``steps`` not yet fetched, all at once."""
        wanted = sorted({s for s in steps if s not in self._details})
        if wanted:
            found = self._fetch([(self.info.id, s) for s in wanted])
            self._details.update({step: d for (_, step), d in found.items()})

    def detail(self, step: int) -> StepDetail:
        self.load([step])
        return self._details[step]

    def meaning_of(self, step: int) -> Meaning:
        """What the step's response says, read from its stored body."""
        if step not in self._meanings:
            d = self.detail(step)
            content_type = header(d.response_headers, "content-type")
            self._meanings[step] = response_meaning(
                provider_named(d.provider), d.status, content_type, d.response_body, d.error
            )
        return self._meanings[step]

    def parts(self, view: StepView) -> dict[str, Any]:
        """``describe_parts`` of the step's canonical request."""
        if view.step not in self._parts:
            d = self.detail(view.step)
            canonical = canonical_request(
                view.method, d.url, d.request_headers, d.request_body, provider_named(d.provider)
            )
            self._parts[view.step] = describe_parts(canonical)
        return self._parts[view.step]

    def prompt(self, view: StepView) -> list[str]:
        """The non-system turns of the step's request, one ``[role] text`` line per line."""
        d = self.detail(view.step)
        path = view.endpoint.partition("/")[2]
        turns = conversation(provider_named(d.provider), "/" + path, d.request_body)
        lines: list[str] = []
        for turn in (t for t in turns if t.role != "system"):
            label = f"[{turn.role}{' ' + turn.name if turn.name else ''}]"
            calls = [f"{label} calls {c.name}({_json(c.arguments)})" for c in turn.tool_calls]
            text = [f"{label} {line}" for line in turn.text.splitlines() or ([""] if not calls else [])]
            lines += text + calls
        return lines or _json_lines(self.parts(view).get("messages"))




# --- what differs in a pair ----------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One field that differs between two steps: both values, or a text diff of them."""

    side: str  # "request" | "response"
    field: str  # "system", "messages", "model", "parameters.temperature", "text", ...
    a: Any = None
    b: Any = None
    diff: list[str] = dataclasses.field(default_factory=list)  # unified diff lines, "+"/"-"/" "/"@@"

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"side": self.side, "field": self.field}
        return doc | ({"diff": self.diff} if self.diff else {"a": self.a, "b": self.b})


def text_diff(a: str | Sequence[str], b: str | Sequence[str]) -> list[str]:
    """Unified diff lines of two texts (or line lists), headers left out."""
    lines_a = a.splitlines() if isinstance(a, str) else list(a)
    lines_b = b.splitlines() if isinstance(b, str) else list(b)
    diff = difflib.unified_diff(lines_a, lines_b, lineterm="", n=CONTEXT_LINES)
    return [line for line in diff if not line.startswith(("---", "+++"))]


def pair_changes(a_run: Run, b_run: Run, pair: Pair) -> list[Change]:
    """The request and response fields that differ between the two steps of a pair."""
    a, b = pair.a, pair.b
    if a is None or b is None:
        return []
    changes = [] if pair.request_same else request_changes(a_run, b_run, a, b)
    if a.reported_model != b.reported_model:
        changes.append(Change("response", "reported_model", a.reported_model, b.reported_model))
    if not pair.response_same:
        changes += response_changes(a_run.meaning_of(a.step), b_run.meaning_of(b.step))
    return changes


_SCALAR_PARTS = ("endpoint", "model", "body")


def request_changes(a_run: Run, b_run: Run, a: StepView, b: StepView) -> list[Change]:
    pa, pb = a_run.parts(a), b_run.parts(b)
    changes = [
        Change("request", k, _shown(k, pa[k]), _shown(k, pb[k])) for k in _SCALAR_PARTS if pa[k] != pb[k]
    ]
    if pa["system"] != pb["system"]:
        changes.append(Change("request", "system", diff=text_diff(_text(pa["system"]), _text(pb["system"]))))
    if pa["messages"] != pb["messages"]:
        changes.append(Change("request", "messages", diff=text_diff(a_run.prompt(a), b_run.prompt(b))))
    if pa["tools"] != pb["tools"]:
        changes.append(
            Change("request", "tools", diff=text_diff(_json_lines(pa["tools"]), _json_lines(pb["tools"])))
        )
    return changes + _parameter_changes(pa["parameters"] or {}, pb["parameters"] or {})


def _parameter_changes(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[Change]:
    names = sorted(n for n in set(a) | set(b) if a.get(n, _UNSET) != b.get(n, _UNSET))
    return [Change("request", f"parameters.{n}", a.get(n), b.get(n)) for n in names]


_UNSET = object()


def response_changes(a: Meaning, b: Meaning) -> list[Change]:
    changes = [
        Change("response", name, getattr(a, name), getattr(b, name))
        for name in ("kind", "status", "finish_reason", "error_type", "refusal")
        if getattr(a, name) != getattr(b, name)
    ]
    if a.text != b.text:
        changes.append(Change("response", "text", diff=text_diff(a.text, b.text)))
    changes += _tool_call_changes(a, b)
    if a.body != b.body:
        changes.append(Change("response", "body", diff=text_diff(_json_lines(a.body), _json_lines(b.body))))
    return changes


def _tool_call_changes(a: Meaning, b: Meaning) -> list[Change]:
    changes: list[Change] = []
    for i in range(max(len(a.tool_calls), len(b.tool_calls))):
        ca = a.tool_calls[i] if i < len(a.tool_calls) else None
        cb = b.tool_calls[i] if i < len(b.tool_calls) else None
        where = f"tool_calls[{i}]"
        if ca is None or cb is None or ca.name != cb.name:
            changes.append(Change("response", f"{where}.name", ca and ca.name, cb and cb.name))
        if (ca and ca.arguments) != (cb and cb.arguments):
            lines = [_json_lines(c.arguments) if c else [] for c in (ca, cb)]
            changes.append(Change("response", f"{where}.arguments", diff=text_diff(*lines)))
    return changes


def _shown(part: str, value: Any) -> Any:
    """A request part as a change shows it: an endpoint as ``METHOD host/path?query``."""
    if part != "endpoint" or not isinstance(value, Mapping):
        return value
    query = "&".join(f"{k}={v}" for k, v in value.get("query") or [])
    where = f"{value.get('method')} {value.get('host')}{value.get('path')}"
    return where + (f"?{query}" if query else "")


def _text(value: Any) -> str:
    """A system prompt's text: strings as they are, text blocks joined, else JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n".join(_text(v) for v in value)
    if isinstance(value, Mapping):
        for key in ("text", "content", "parts"):
            if isinstance(value.get(key), str | list):
                return _text(value[key])
    return _json(value)


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def _json_lines(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return value.splitlines()
    return json.dumps(value, sort_keys=True, ensure_ascii=False, indent=2, default=str).splitlines()


# --- diff ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PairDiff:
    """One aligned pair, with its changes when it was looked at closely (else ``None``)."""

    pair: Pair
    changes: list[Change] | None = None

    def to_json(self) -> dict[str, Any]:
        p = self.pair
        doc: dict[str, Any] = {
            "status": str(p.status),
            "a": p.a.step if p.a else None,
            "b": p.b.step if p.b else None,
        }
        if p.status is Status.SAME:
            return doc
        either = p.a or p.b
        doc |= {"kind": either.kind if either else None, "endpoint": either.endpoint if either else None}
        if p.a and p.b:
            doc |= {"request_same": p.request_same, "response_same": p.response_same}
            doc["changes"] = None if self.changes is None else [c.to_json() for c in self.changes]
        return doc


@dataclass(frozen=True)
class Comparison:
    """Two runs aligned step by step."""

    a: SessionInfo
    b: SessionInfo
    pairs: list[PairDiff]
    counts: dict[str, int]  # per Status value
    matched: int  # aligned pairs whose responses are the same
    total: int  # steps of the longer run
    not_detailed: int  # changed pairs past MAX_DETAILED, whose changes were not worked out

    @property
    def identical(self) -> bool:
        return self.counts.get(str(Status.SAME), 0) == len(self.pairs)

    def to_json(self) -> dict[str, Any]:
        return {
            "a": _session(self.a, self.counts, Status.ONLY_B),
            "b": _session(self.b, self.counts, Status.ONLY_A),
            "identical": self.identical,
            "counts": self.counts,
            "matched": self.matched,
            "total": self.total,
            "not_detailed": self.not_detailed,
            "steps": [p.to_json() for p in self.pairs],
        }


def _session(info: SessionInfo, counts: Mapping[str, int], other_only: Status) -> dict[str, Any]:
    steps = sum(counts.values()) - counts.get(str(other_only), 0)
    return {"id": info.id, "name": info.name, "steps": steps}


def compare(a: Run, b: Run) -> Comparison:
    """Align two runs and work out what changed in their changed pairs."""
    pairs = align(a.views, b.views)
    changed = [p for p in pairs if p.status is Status.CHANGED]
    detailed = changed[:MAX_DETAILED]
    _prefetch(a, b, detailed)
    details = {id(p): pair_changes(a, b, p) for p in detailed}
    counts = Counter(str(p.status) for p in pairs)
    counts_all = {str(s): counts.get(str(s), 0) for s in Status}
    matched = sum(p.response_same for p in pairs)
    total = max(len(a.views), len(b.views))
    diffs = [PairDiff(p, details.get(id(p))) for p in pairs]
    return Comparison(a.info, b.info, diffs, counts_all, matched, total, len(changed) - len(detailed))


def _prefetch(a: Run, b: Run, pairs: Sequence[Pair]) -> None:
    a.load(p.a.step for p in pairs if p.a)
    b.load(p.b.step for p in pairs if p.b)


# --- bisect ----------------------------------------------------------------------------------


def bisect_runs(good: Run, bad: Run) -> tuple[Bisection, list[Change]]:
    """The first divergence of ``bad`` from ``good``, its cause, and what changed there."""
    pairs = align(good.views, bad.views)
    first = next((i for i, p in enumerate(pairs) if not p.response_same), None)
    if first is not None:
        earlier = next((p for p in pairs[:first] if p.a and p.b and not p.request_same), None)
        _prefetch(good, bad, [pairs[first], *([earlier] if earlier else [])])

    def parts(view: StepView) -> dict[str, Any]:
        return (good if good.owns(view) else bad).parts(view)

    result = bisect(pairs, parts)
    changes = pair_changes(good, bad, pairs[first]) if first is not None else []
    return result, changes


def response_json(run: Run, view: StepView) -> dict[str, Any]:
    """A step's response as bisect's JSON shows it: what it said, not its bytes."""
    m = run.meaning_of(view.step)
    calls = [{"name": c.name, "arguments": c.arguments} for c in m.tool_calls]
    return {
        "response": {
            "kind": m.kind,
            "status": m.status,
            "text": m.text,
            "tool_calls": calls,
            "finish_reason": m.finish_reason,
            "error_type": m.error_type,
            "refusal": m.refusal,
        }
    }
