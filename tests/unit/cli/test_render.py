"""Rendering: recorded content stays inert in tables and panels, exact in JSON, and
piped output keeps its natural width."""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass

import pytest
from rich.console import Console, RenderableType

from rewind.cli.render import gaps_lines, json_text, sessions_table, show, step_detail, visible
from rewind.store.models import SessionInfo, StepRecord

HOSTILE = "\x1b[2J\x1b[31m[bold]x"


def rendered(renderable: RenderableType, width: int = 300) -> str:
    out = Console(file=io.StringIO(), width=width)
    out.print(renderable)
    return out.file.getvalue()  # type: ignore[attr-defined, no-any-return]


def session(**fields: object) -> SessionInfo:
    base: dict[str, object] = {"id": "abc123", "name": "demo", "mode": "record", "started_at": 0.0}
    base |= {"command": ("python", "agent.py"), "cwd": "/", "status": "complete"}
    return SessionInfo(**{**base, **fields})  # type: ignore[arg-type]


def test_control_characters_become_visible_escapes() -> None:
    assert visible("a\x1b[2Jb\x9bc\x7f") == "a\\x1b[2Jb\\x9bc\\x7f"
    assert visible("line\n\tnext\r", keep="\n\t") == "line\n\tnext\\r"
    assert visible("abc\u202egpj.exe") == "abc\\u202egpj.exe"


def test_a_hostile_session_name_is_shown_escaped_and_literal() -> None:
    text = rendered(sessions_table([session(name=HOSTILE, command=("echo", "\x1b]0;title\x07"))]))
    assert "\x1b" not in text and "\x07" not in text
    assert "\\x1b[2J\\x1b[31m[bold]x" in text
    assert "\\x1b]0;title\\x07" in text


def test_a_hostile_body_and_header_are_shown_escaped() -> None:
    step = StepRecord(
        session_id="s",
        step=1,
        kind="http",
        method="GET",
        url="http://x/\x1b[31m",
        started_at=0.0,
        fingerprint="v1:0",
        request_headers=(("x-h", HOSTILE),),
        request_sha="a",
    )
    text = rendered(step_detail(step, f"first {HOSTILE}\nsecond\tline", {"k": "\x9b[bold]"}))
    assert "\x1b" not in text and "\x9b" not in text
    assert text.count("\\x1b[2J\\x1b[31m[bold]x") == 2  # header and text body
    assert re.search(r"│ second +line", text)  # newline and tab in a body are kept
    assert "[bold]" in text and "http://x/\\x1b[31m" in text


def test_json_keeps_the_data_exact_and_inert() -> None:
    data = {"name": HOSTILE + "\x9b\u202e", "n": 1}
    text = json_text(data)
    assert json.loads(text) == data
    assert not any(ch in text for ch in "\x1b\x9b\u202e")


def test_sessions_table_shows_mode_and_parent_only_when_set() -> None:
    plain = rendered(sessions_table([session()]))
    assert "MODE" in plain and "record" in plain and "PARENT" not in plain
    child = rendered(
        sessions_table([session(), session(id="def456", mode="replay-live", parent_id="abc123")])
    )
    assert "PARENT" in child and "replay-live" in child


def wide_table() -> RenderableType:
    return sessions_table([session(name="n" * 150)])


def test_piped_output_is_not_wrapped_to_80_columns(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    show(wide_table())
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 5 and len(lines[3]) > 150  # top, header, rule, the row, bottom


def test_piped_output_honours_columns(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    show(wide_table())
    lines = capsys.readouterr().out.splitlines()
    assert max(len(line) for line in lines) <= 100 and len(lines) > 5


@dataclass(frozen=True)
class HandMadeGap:
    step: int
    reason: str


def test_gaps_show_each_unrecorded_step() -> None:
    lines = gaps_lines([HandMadeGap(4, "disk full"), HandMadeGap(2, "body too large \x1b[2J")])
    assert [line.plain for line in lines] == [
        "step 2: NOT RECORDED: body too large \\x1b[2J",
        "step 4: NOT RECORDED: disk full",
    ]
