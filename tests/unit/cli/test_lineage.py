"""``rewind list --tree``: branches drawn under the session they forked from, every listed
session exactly once, whatever the parent ids say."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import pytest
from rich.console import Console

from rewind.cli import lineage
from rewind.cli.lineage import lineage_json, lineage_tree
from rewind.store.models import SessionInfo


def session(sid: str, started_at: float, parent: str | None = None, **fields: Any) -> SessionInfo:
    defaults: dict[str, Any] = {
        "name": f"run-{sid}",
        "mode": "record" if parent is None else "branch",
        "command": ("python", "agent.py"),
        "cwd": "/work",
        "status": "complete",
        "steps": 2,
        "exit_code": 0,
    }
    return SessionInfo(id=sid, started_at=started_at, parent_id=parent, **{**defaults, **fields})


def drawn(sessions: Sequence[SessionInfo]) -> str:
    console = Console(record=True, width=200, file=io.StringIO())
    console.print(lineage_tree(sessions))
    return console.export_text()


def ids_in(text: str) -> list[str]:
    """The id each line of a drawn tree starts with, guides and indentation removed."""
    return [line.lstrip(" │├└─").split("  ")[0] for line in text.splitlines() if line.strip()]


def test_public_api() -> None:
    assert sorted(lineage.__all__) == ["lineage_json", "lineage_tree"]


def test_branches_hang_under_their_parent_oldest_first() -> None:
    sessions = [
        session("s-mut", 4, "s-base", mode="mutate", fork_step=2, fault="429", exit_code=1, steps=3),
        session("s-sub", 3, "s-br", fork_step=1),
        session("s-br", 2, "s-base", fork_step=3),
        session("s-base", 1, steps=5),
    ]
    assert drawn(sessions) == (
        "s-base  run-s-base  record  5 steps  exit 0\n"
        "├── s-br  run-s-br  branch  fork at step 3  2 steps  exit 0\n"
        "│   └── s-sub  run-s-sub  branch  fork at step 1  2 steps  exit 0\n"
        "└── s-mut  run-s-mut  mutate  fork at step 2  fault 429  3 steps  exit 1\n"
    )


def test_roots_stay_newest_first_as_listed() -> None:
    sessions = [session("s-new", 9), session("s-kid", 5, "s-old"), session("s-mid", 4), session("s-old", 1)]
    assert ids_in(drawn(sessions)) == ["s-new", "s-mid", "s-old", "s-kid"]


def test_children_are_ordered_by_start_not_by_listing() -> None:
    sessions = [session("s-a", 1), session("s-early", 2, "s-a"), session("s-late", 3, "s-a")]
    assert ids_in(drawn(sessions)) == ["s-a", "s-early", "s-late"]


def test_a_session_whose_parent_is_not_listed_is_a_root_that_names_it() -> None:
    text = drawn([session("s-kid", 2, "s-gone", fork_step=4), session("s-other", 1)])
    assert text == (
        "s-kid  run-s-kid  branch  fork at step 4  2 steps  exit 0  (parent s-gone not listed)\n"
        "s-other  run-s-other  record  2 steps  exit 0\n"
    )


def test_an_unfinished_session_shows_no_exit_code() -> None:
    assert "2 steps  exit -" in drawn([session("s-a", 1, exit_code=None, status="recording")])


def test_recorded_names_are_shown_escaped() -> None:
    text = drawn([session("s-a", 1, name="\x1b[2Jevil")])
    assert "\x1b" not in text and "\\x1b[2Jevil" in text


def test_a_self_parent_is_drawn_once() -> None:
    sessions = [session("s-b", 2, "s-a"), session("s-a", 1, "s-a")]
    text = drawn(sessions)
    assert ids_in(text) == ["s-a", "s-b"]
    assert text.splitlines()[1].startswith("└── s-b")


@pytest.mark.parametrize("order", [("s-a", "s-b"), ("s-b", "s-a")])
def test_a_two_session_cycle_does_not_loop_or_drop_sessions(order: tuple[str, str]) -> None:
    both = {"s-a": session("s-a", 1, "s-b"), "s-b": session("s-b", 2, "s-a")}
    sessions = [both[sid] for sid in order]
    assert sorted(ids_in(drawn(sessions))) == ["s-a", "s-b"]
    tree = lineage_json(sessions, {sid: {"id": sid} for sid in order})
    assert len(tree) == 1 and len(tree[0]["children"]) == 1
    assert tree[0]["children"][0]["children"] == []


def test_a_cycle_with_a_tail_keeps_every_session_once() -> None:
    sessions = [
        session("s-d", 4, "s-c"),
        session("s-c", 3, "s-b"),
        session("s-b", 2, "s-a"),
        session("s-a", 1, "s-c"),
        session("s-root", 0),
    ]
    assert sorted(ids_in(drawn(sessions))) == ["s-a", "s-b", "s-c", "s-d", "s-root"]


def test_a_cut_cycle_does_not_say_a_listed_parent_is_missing() -> None:
    assert "not listed" not in drawn([session("s-self", 3, "s-self")])
    assert "not listed" not in drawn([session("s-a", 1, "s-b"), session("s-b", 2, "s-a")])


def test_lineage_json_nests_children_under_the_rows() -> None:
    sessions = [
        session("s-lost", 5, "s-gone"),
        session("s-late", 4, "s-base"),
        session("s-sub", 3, "s-early"),
        session("s-early", 2, "s-base"),
        session("s-base", 1),
    ]
    rows = {s.id: {"id": s.id, "parent": s.parent_id} for s in sessions}
    assert lineage_json(sessions, rows) == [
        {"id": "s-lost", "parent": "s-gone", "children": []},
        {
            "id": "s-base",
            "parent": None,
            "children": [
                {
                    "id": "s-early",
                    "parent": "s-base",
                    "children": [{"id": "s-sub", "parent": "s-early", "children": []}],
                },
                {"id": "s-late", "parent": "s-base", "children": []},
            ],
        },
    ]


def test_lineage_json_of_nothing_is_empty() -> None:
    assert lineage_json([], {}) == []
    assert drawn([]).strip() == ""
