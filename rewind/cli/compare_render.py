"""What ``rewind diff`` and ``rewind bisect`` print: tables and text from the analysis
records (``rewind.analysis.compare``), recorded text escaped as ``rewind.cli.render`` does.

``diff`` shows one row per aligned pair, long runs of matched steps folded into one row,
then each changed step's fields; ``bisect`` shows the first divergence, "Steps matched:
k / n", the likely cause with its evidence, what changed at that step, and the later
divergences.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from rewind.analysis.align import Status
from rewind.analysis.compare import Change, Comparison, PairDiff
from rewind.cli.render import cell, json_text, visible
from rewind.store.models import SessionInfo

FOLD = 3  # runs of more matched steps than this are folded into one row
SHOWN_LATER = 20  # later divergences listed by bisect's text view
_LABELS = {"same": "matched", "changed": "changed", "only_a": "only in A", "only_b": "only in B"}
_STYLES = {"same": "dim", "changed": "yellow", "only_a": "red", "only_b": "green"}
_DIFF_STYLES = {"+": "green", "-": "red", "@": "cyan"}


# --- shared ------------------------------------------------------------------------------


def session_line(label: str, info: SessionInfo | dict[str, Any]) -> Text:
    doc = info if isinstance(info, dict) else {"id": info.id, "name": info.name}
    return Text.assemble((f"{label} ", "bold"), cell(doc["id"]), " ", cell(f"({doc['name'] or 'unnamed'})"))


def changes_lines(changes: Sequence[Change | dict[str, Any]], indent: str = "  ") -> list[Text]:
    """Each change as ``side field: a -> b``, or its name and its diff lines."""
    lines: list[Text] = []
    for change in changes:
        doc = change.to_json() if isinstance(change, Change) else change
        where = f"{indent}{doc['side']} {doc['field']}"
        if "diff" in doc:
            lines.append(cell(where))
            lines += [_diff_line(indent * 2, line) for line in doc["diff"]]
        else:
            lines.append(
                Text.assemble(cell(f"{where}: "), cell(_value(doc["a"])), " -> ", cell(_value(doc["b"])))
            )
    return lines


def _diff_line(indent: str, line: str) -> Text:
    return Text(indent + visible(line), style=_DIFF_STYLES.get(line[:1], ""))


def _value(value: Any) -> str:
    return "(none)" if value is None else json.dumps(value, ensure_ascii=False, default=str)


def _lines(lines: Sequence[Text]) -> Text:
    return Text("\n").join(lines)


# --- diff ----------------------------------------------------------------------------------

# What JSON leaves raw inside strings that a terminal might act on (as render.json_text).
_RAW_IN_JSON = re.compile("[\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


def diff_json_text(doc: dict[str, Any]) -> str:
    """``json_text`` of diff's document, but one step per line: ten thousand steps need the
    C encoder, which ``indent`` turns off."""
    head = {k: v for k, v in doc.items() if k != "steps"}
    steps = ",\n".join(f"    {json.dumps(step, ensure_ascii=False)}" for step in doc["steps"])
    text = json_text(head)[:-2] + f',\n  "steps": [\n{steps}\n  ]\n}}'
    return _RAW_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def diff_view(comparison: Comparison) -> list[RenderableType]:
    """Header, counts, the aligned steps, then each changed step's changes."""
    c = comparison.counts
    counts = (
        f"matched {c['same']}  changed {c['changed']}  only in A {c['only_a']}  only in B {c['only_b']}"
        f"  (responses the same: {comparison.matched} / {comparison.total})"
    )
    head = [session_line("A", comparison.a), session_line("B", comparison.b), Text(counts)]
    if comparison.identical:
        head.append(Text("Identical: every step made the same request and got the same answer."))
    out: list[RenderableType] = [_lines(head), _pairs_table(comparison.pairs)]
    details = [_pair_details(p) for p in comparison.pairs if p.changes]
    if comparison.not_detailed:
        details.append(Text(f"… {comparison.not_detailed} more changed steps not detailed (see --json)"))
    return out + details


def _pairs_table(pairs: Sequence[PairDiff]) -> Table:
    table = Table("A", "B", "", "CALL", "WHAT DIFFERS")
    for run in _folded(pairs):
        if isinstance(run, int):
            table.add_row("", "", Text(f"… {run} matched", style="dim"), "", "")
        else:
            table.add_row(*_pair_row(run))
    return table


def _folded(pairs: Sequence[PairDiff]) -> list[PairDiff | int]:
    """The pairs, each run of more than ``FOLD`` matched ones kept only at its ends."""
    out: list[PairDiff | int] = []
    same: list[PairDiff] = []
    for pair in [*pairs, None]:
        if pair is not None and pair.pair.status is Status.SAME:
            same.append(pair)
            continue
        out += same if len(same) <= FOLD else [same[0], len(same) - 2, same[-1]]
        same = []
        if pair is not None:
            out.append(pair)
    return out


def _pair_row(diff: PairDiff) -> list[Text]:
    p, status = diff.pair, str(diff.pair.status)
    either = p.a or p.b
    call = f"{either.kind} {either.endpoint}" if either else ""
    return [
        Text(str(p.a.step) if p.a else ""),
        Text(str(p.b.step) if p.b else ""),
        Text(_LABELS[status], style=_STYLES[status]),
        cell(call),
        cell(_summary(diff)),
    ]


def _summary(diff: PairDiff) -> str:
    """The fields that differ, by side: ``request: system; response: text``."""
    if diff.changes is None:
        return "(not detailed)" if diff.pair.status is Status.CHANGED else ""
    fields: dict[str, list[str]] = {}
    for change in diff.changes:
        fields.setdefault(change.side, []).append(change.field)
    return "; ".join(f"{side}: {', '.join(names)}" for side, names in fields.items())


def _pair_details(diff: PairDiff) -> Text:
    p = diff.pair
    title = f"A step {p.a.step if p.a else '-'} / B step {p.b.step if p.b else '-'}"
    return _lines([Text(title, style="bold"), *changes_lines(diff.changes or [])])


# --- bisect --------------------------------------------------------------------------------


def bisect_doc(
    good: SessionInfo, bad: SessionInfo, found: dict[str, Any], changes: Sequence[Change]
) -> dict[str, Any]:
    """Bisect's JSON: the sessions, the bisection, and what changed at the divergence."""
    doc = {"good": {"id": good.id, "name": good.name}, "bad": {"id": bad.id, "name": bad.name}, **found}
    if doc["first_divergence"] is not None:
        doc["first_divergence"]["changes"] = [c.to_json() for c in changes]
    return doc


def bisect_view(doc: dict[str, Any]) -> list[RenderableType]:
    lines = [session_line("good", doc["good"]), session_line("bad", doc["bad"])]
    first = doc["first_divergence"]
    if first is None:
        lines += [Text(_verdict(doc)), Text(f"Steps matched: {doc['matched']} / {doc['total']}")]
        return [_lines(lines)]
    lines += [
        cell(f"First divergence: {_where(first)}"),
        Text(f"Steps matched: {doc['matched']} / {doc['total']}", style="bold"),
        Text.assemble(("Cause: ", "bold"), cell(f"{doc['cause']['kind']}: {doc['cause']['detail']}")),
        *[cell(f"  {line}") for line in doc["cause"]["evidence"]],
    ]
    if first["changes"]:
        lines += [Text("What changed at that step:", style="bold"), *changes_lines(first["changes"])]
    return [_lines(lines + _later_lines(doc["later"]))]


def _verdict(doc: dict[str, Any]) -> str:
    if doc["identical"]:
        return "Identical: every step made the same request and got the same answer."
    return "No divergence: every response is the same, though some requests differ."


def _where(first: dict[str, Any]) -> str:
    good, bad = first["good"], first["bad"]
    either = good or bad
    steps = f"good step {good['step'] if good else '-'}, bad step {bad['step'] if bad else '-'}"
    return f"step {first['step']} ({first['kind']} {either['endpoint']}; {steps})"


def _later_lines(later: Sequence[dict[str, Any]]) -> list[Text]:
    if not later:
        return [Text("No later divergences.")]
    propagated = sum(d["propagated"] for d in later)
    head = f"Later divergences: {len(later)} ({propagated} propagated, {len(later) - propagated} independent)"
    lines = [Text(head, style="bold")]
    for d in later[:SHOWN_LATER]:
        good, bad = d["good"], d["bad"]
        where = f"good {good['step'] if good else '-'} / bad {bad['step'] if bad else '-'}"
        how = "propagated" if d["propagated"] else "independent (same request, another answer)"
        lines.append(cell(f"  step {d['step']} ({where}): {how}"))
    if len(later) > SHOWN_LATER:
        lines.append(Text(f"  … {len(later) - SHOWN_LATER} more (see --json)"))
    return lines
