"""The journal format: what a recorder writes, line by line, without DuckDB."""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from pathlib import Path

from rewind.store.blobs import BlobRef
from rewind.store.journal import (
    BLOB_COLUMNS,
    BLOBS_FILE,
    END_FILE,
    SESSION_FILE,
    STEP_COLUMNS,
    STEPS_FILE,
    JournalWriter,
    SessionEnd,
    blob_line,
    read_end,
    read_start,
    step_line,
)
from rewind.store.models import StepRecord

from .conftest import make_start

STEP = StepRecord(
    session_id="s1", step=1, kind="http", method="GET", url="https://example.com/x",
    started_at=1.5, fingerprint="v1:00", request_headers=(("accept", "*/*"),),
    request_sha="a" * 64, chunks=((1.0, 4),),
)


def test_session_json_round_trips(tmp_path: Path) -> None:
    start = make_start(pid=123)
    JournalWriter(tmp_path / "j", start).close()
    assert read_start(tmp_path / "j") == start
    assert json.loads((tmp_path / "j" / SESSION_FILE).read_text())["journal_version"] == 1


def test_unknown_journal_version_is_not_read(tmp_path: Path) -> None:
    (tmp_path / SESSION_FILE).write_text(json.dumps({"journal_version": 99}))
    assert read_start(tmp_path) is None


def test_missing_or_torn_session_json_is_not_read(tmp_path: Path) -> None:
    assert read_start(tmp_path) is None
    (tmp_path / SESSION_FILE).write_text('{"journal_version": 1, "id": ')
    assert read_start(tmp_path) is None


def test_step_line_has_exactly_the_step_columns() -> None:
    line = step_line(STEP)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    row = json.loads(line)
    assert list(row) == list(STEP_COLUMNS) == [f.name for f in fields(StepRecord)]
    assert row["request_headers"] == [["accept", "*/*"]] and row["chunks"] == [[1.0, 4]]


def test_blob_line_has_exactly_the_blob_columns() -> None:
    ref = BlobRef("b" * 64, "s1", 44, 10, 12)
    assert json.loads(blob_line(ref)) == asdict(ref)
    assert list(json.loads(blob_line(ref))) == list(BLOB_COLUMNS)


def test_appends_are_whole_lines(tmp_path: Path) -> None:
    writer = JournalWriter(tmp_path, make_start())
    writer.append_blob(BlobRef("b" * 64, "s1", 44, 10, 12))
    writer.append_step(STEP)
    writer.append_step(STEP)
    writer.close()
    assert (tmp_path / STEPS_FILE).read_bytes() == step_line(STEP) * 2
    assert len((tmp_path / BLOBS_FILE).read_bytes().splitlines()) == 1


def test_end_written_last_and_read_back(tmp_path: Path) -> None:
    writer = JournalWriter(tmp_path, make_start())
    assert read_end(tmp_path) is None
    writer.write_end(SessionEnd(3, 2.5, "c" * 64, None))
    assert read_end(tmp_path) == SessionEnd(3, 2.5, "c" * 64, None)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [SESSION_FILE, STEPS_FILE, BLOBS_FILE, END_FILE]
    )
