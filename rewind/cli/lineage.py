"""``rewind list --tree``: sessions drawn as the lineage of branches they form.

A session made by ``rewind branch``, ``rewind mutate`` or ``replay --on-miss live`` names
its parent; each one hangs under its parent, oldest first, labelled with the step it
forked at and the fault it injected. A session whose parent is not among those listed
(filtered out, or deleted) is drawn as a root that says which parent it had.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.text import Text
from rich.tree import Tree

from rewind.cli.render import cell, visible
from rewind.store.models import SessionInfo

__all__ = ["lineage_json", "lineage_tree"]


def _children(sessions: Sequence[SessionInfo]) -> tuple[list[SessionInfo], dict[str, list[SessionInfo]]]:
    """The roots (newest first, as listed) and each session's children (oldest first).

    Parent ids come from the store (or an imported cassette), so a cycle is possible in
    a tampered store: a session no root reaches becomes a root, and its edge is cut."""
    listed = {s.id for s in sessions}
    children: dict[str, list[SessionInfo]] = {}
    for s in sorted(sessions, key=lambda s: s.started_at):
        if s.parent_id in listed and s.parent_id != s.id:
            children.setdefault(s.parent_id, []).append(s)
    roots = [s for s in sessions if s.parent_id not in listed or s.parent_id == s.id]
    reached = _reached(roots, children)
    for s in sessions:
        if s.id not in reached:
            children[s.parent_id or ""].remove(s)
            roots.append(s)
            reached |= _reached([s], children)
    return roots, children


def _reached(roots: Sequence[SessionInfo], children: Mapping[str, list[SessionInfo]]) -> set[str]:
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        s = todo.pop()
        if s.id not in seen:
            seen.add(s.id)
            todo.extend(children.get(s.id, []))
    return seen


def label(s: SessionInfo, note: str = "") -> Text:
    """One node: id, name, mode, where it forked and how it ended."""
    parts = [visible(s.id), visible(s.name or "-"), s.mode]
    if s.fork_step is not None:
        parts.append(f"fork at step {s.fork_step}")
    if s.fault:
        parts.append(f"fault {visible(s.fault)}")
    parts.append(f"{s.steps} steps")
    parts.append(f"exit {s.exit_code if s.exit_code is not None else '-'}")
    if note:
        parts.append(note)
    text = Text("  ".join(parts))
    text.stylize("bold", 0, len(visible(s.id)))
    return text


def lineage_tree(sessions: Sequence[SessionInfo]) -> Tree:
    """Every listed session once, under its parent when its parent is listed."""
    roots, children = _children(sessions)
    listed = {s.id for s in sessions}
    top = Tree(cell("sessions"), hide_root=True, guide_style="dim")
    for root in roots:
        _grow(top.add(label(root, _root_note(root, listed))), root, children)
    return top


def _root_note(root: SessionInfo, listed: set[str]) -> str:
    """Why a session with a parent is drawn as a root."""
    if not root.parent_id:
        return ""
    if root.parent_id in listed:  # only in a tampered store
        return f"(parent {visible(root.parent_id)}: a cycle, cut here)"
    return f"(parent {visible(root.parent_id)} not listed)"


def _grow(node: Tree, session: SessionInfo, children: Mapping[str, list[SessionInfo]]) -> None:
    for child in children.get(session.id, []):
        _grow(node.add(label(child)), child, children)


def lineage_json(sessions: Sequence[SessionInfo], rows: Mapping[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The roots as ``rows`` gives them, each with its ``children``, nested."""
    roots, children = _children(sessions)

    def nested(s: SessionInfo) -> dict[str, Any]:
        return {**rows[s.id], "children": [nested(c) for c in children.get(s.id, [])]}

    return [nested(root) for root in roots]
