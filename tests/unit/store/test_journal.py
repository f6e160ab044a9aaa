"""The journal format: what a recorder writes, and how every line is validated before
anything reads it. (Sealed records: test_sealed.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import pytest

from rewind.store.blobs import PackWriter, sha256_hex
from rewind.store.journal import (
    END_FILE,
    GAPS_FILE,
    JOURNAL_VERSION,
    LIVE_LOCK,
    SESSION_FILE,
    STEP_COLUMNS,
    STEPS_FILE,
    JournalWriter,
    SessionEnd,
    check_step,
    decode_headers,
    decode_text,
    encode_headers,
    encode_text,
    is_live,
    line,
    read_journal,
    read_jsonl,
    step_row,
)
from rewind.store.models import Gap, StepRecord

from .conftest import make_start, wait_for_line

SID = "abcdef012345"
RAW = b"\xff\xfe"
ODD = "tok " + RAW.decode("utf-8", "surrogateescape")  # a header value that is not UTF-8


def step(n: int = 1, session_id: str = SID, **changes: Any) -> StepRecord:
    fields_: dict[str, Any] = dict(
        session_id=session_id,
        step=n,
        kind="http",
        method="GET",
        url="https://example.com/x",
        started_at=1.5,
        fingerprint="v1:00",
        request_headers=(("accept", "*/*"),),
        request_sha="a" * 64,
        chunks=((1.0, 4),),
    )
    return StepRecord(**{**fields_, **changes})


@pytest.fixture
def journal(tmp_path: Path) -> Path:
    return tmp_path / "sessions" / SID


def writer(journal: Path) -> JournalWriter:
    return JournalWriter(journal, make_start(session_id=SID, pid=123))


# -- lossless text ----------------------------------------------------------------------------


def test_undecodable_header_bytes_survive_encoding() -> None:
    encoded = encode_headers((("x-token", ODD), ("plain", "é")))
    assert encoded[1] == ["plain", "é"]  # UTF-8 stays readable text
    decoded = decode_headers(json.loads(json.dumps(encoded)))
    assert decoded == (("x-token", ODD), ("plain", "é"))
    assert decoded[0][1].encode("utf-8", "surrogateescape") == b"tok " + RAW


def test_undecodable_header_bytes_survive_a_step_line() -> None:
    row = json.loads(line(step_row(step(request_headers=(("x-raw", ODD),)))))
    assert decode_headers(check_step(row, SID)["request_headers"]) == (("x-raw", ODD),)


@pytest.mark.parametrize("value", [3, {"b64": 3}, {"b64": "not base64!"}, None])
def test_header_text_of_another_shape_is_refused(value: Any) -> None:
    with pytest.raises(ValueError):
        decode_text(value)


def test_encode_text_is_identity_for_utf8() -> None:
    assert encode_text("héllo") == "héllo"


# -- lines -------------------------------------------------------------------------------------


def test_step_line_has_exactly_the_step_columns() -> None:
    data = line(step_row(step()))
    assert data.endswith(b"\n") and data.count(b"\n") == 1
    row = json.loads(data)
    assert list(row) == list(STEP_COLUMNS) == [f.name for f in fields(StepRecord)]
    assert row["request_headers"] == [["accept", "*/*"]] and row["chunks"] == [[1.0, 4]]


def test_appends_are_whole_lines(journal: Path) -> None:
    w = writer(journal)
    w.append_step(step(1))
    w.append_step(step(2))
    w.append_gap(Gap(3, "body too large"))
    w.close()
    assert (journal / STEPS_FILE).read_bytes() == line(step_row(step(1))) + line(step_row(step(2)))
    assert json.loads((journal / GAPS_FILE).read_bytes()) == {"step": 3, "reason": "body too large"}


def test_journal_round_trips(journal: Path) -> None:
    start = make_start(session_id=SID, pid=123)
    w = JournalWriter(journal, start)
    pack = PackWriter(journal.parent.parent, f"objects/{SID}.pack")
    refs = [
        pack.put(sha256_hex(b"body"), b"body"),
        pack.put(sha256_hex(b"body 2"), b"body 2", (sha256_hex(b"body"), b"body")),
    ]
    pack.close()
    w.append_step(step(1, request_headers=(("x-raw", ODD),)))
    w.append_gap(Gap(2, "disk full"))
    w.write_end(SessionEnd(3, 2.5, "c" * 64, None))
    w.close()
    record = read_journal(journal, live=False)
    assert record is not None
    assert record.start == start
    assert record.objects == [asdict(ref) for ref in refs]  # the pack describes itself
    assert [r["step"] for r in record.steps] == [1]
    assert record.gaps == [{"session_id": SID, "step": 2, "reason": "disk full"}]
    assert record.end == SessionEnd(3, 2.5, "c" * 64, None) and record.skipped == []


def test_session_json_carries_the_journal_version(journal: Path) -> None:
    writer(journal).close()
    assert json.loads((journal / SESSION_FILE).read_text())["journal_version"] == JOURNAL_VERSION


def test_journal_files_are_private(journal: Path) -> None:
    writer(journal).close()
    assert os.stat(journal).st_mode & 0o077 == 0
    assert all(os.stat(p).st_mode & 0o077 == 0 for p in journal.iterdir())


@pytest.mark.parametrize("version", [1, 99, None])
def test_unknown_journal_version_is_not_read(journal: Path, version: int | None) -> None:
    writer(journal).close()
    data = json.loads((journal / SESSION_FILE).read_text())
    (journal / SESSION_FILE).write_text(json.dumps({**data, "journal_version": version}))
    assert read_journal(journal, live=False) is None


@pytest.mark.parametrize(
    "text",
    ["", '{"journal_version": 2, "id": ', "[]", '{"journal_version": 2, "id": "../etc", "started_at": 1}'],
)
def test_missing_torn_or_invalid_session_json_is_not_read(journal: Path, text: str) -> None:
    journal.mkdir(parents=True)
    if text:
        (journal / SESSION_FILE).write_text(text)
    assert read_journal(journal, live=False) is None


def test_torn_end_json_reads_as_no_end(journal: Path) -> None:
    writer(journal).close()
    (journal / END_FILE).write_text('{"exit_code": 0, "ended')
    record = read_journal(journal, live=False)
    assert record is not None and record.end is None


# -- validation ----------------------------------------------------------------------------------

GOOD = line(step_row(step(1)))
BAD_LINES: dict[str, tuple[bytes, str]] = {
    "missing fields": (b'{"session_id": "%s", "step": 2}\n' % SID.encode(), "'kind' is missing"),
    "wrong type": (line({**step_row(step(2)), "step": "2"}), "'step' has the wrong type"),
    "bool for int": (line({**step_row(step(2)), "status": True}), "'status' has the wrong type"),
    "bad sha": (line({**step_row(step(2)), "request_sha": "../x"}), "not a sha256"),
    "bad headers": (line({**step_row(step(2)), "request_headers": [["a"]]}), "pair"),
    "bad chunks": (line({**step_row(step(2)), "chunks": [[1, "x"]]}), "chunks"),
    "step zero": (line({**step_row(step(2)), "step": 0}), "start at 1"),
    "not an object": (b"[1, 2]\n", "not a JSON object"),
    "torn line": (GOOD[:40] + b"\n", "not JSON"),
    "garbage bytes": (b"\x00\xff\xfe garbage \x80\n", "not JSON"),
    "another session": (line(step_row(step(2, session_id="0123456789ab"))), "belongs to session"),
}


@pytest.mark.parametrize("case", list(BAD_LINES))
def test_bad_step_line_is_skipped_with_file_and_line(journal: Path, case: str) -> None:
    bad, reason = BAD_LINES[case]
    writer(journal).close()
    (journal / STEPS_FILE).write_bytes(GOOD + bad + line(step_row(step(3))))
    record = read_journal(journal, live=False)
    assert record is not None
    assert [r["step"] for r in record.steps] == [1, 3]
    assert [(s.file, s.line) for s in record.skipped] == [(str(journal / STEPS_FILE), 2)]
    assert reason in record.skipped[0].reason
    assert record.skipped[0].text().startswith(f"{journal / STEPS_FILE}, line 2: ")


def test_unknown_keys_are_dropped() -> None:
    row = check_step({**step_row(step(1)), "extra": "x"}, SID)
    assert sorted(row) == sorted(STEP_COLUMNS)


def test_bad_gap_lines_are_skipped(journal: Path) -> None:
    writer(journal).close()
    (journal / GAPS_FILE).write_bytes(b'{"step": "x"}\n{"step": 4, "reason": "r"}\n')
    record = read_journal(journal, live=False)
    assert record is not None and record.gaps[0]["step"] == 4
    assert [(Path(s.file).name, s.line) for s in record.skipped] == [(GAPS_FILE, 1)]


def test_a_torn_pack_tail_is_not_an_object(journal: Path) -> None:
    writer(journal).close()
    pack = PackWriter(journal.parent.parent, f"objects/{SID}.pack")
    ref = pack.put(sha256_hex(b"whole"), b"whole")
    pack.close()
    with open(journal.parent.parent / ref.pack, "ab") as f:
        f.write(b"RWO1" + bytes(20))  # a record cut short by kill -9
    record = read_journal(journal, live=False)
    assert record is not None and record.objects == [asdict(ref)]


def test_live_journal_unterminated_last_line_is_not_reported(journal: Path) -> None:
    writer(journal).close()
    (journal / STEPS_FILE).write_bytes(GOOD + GOOD[:30])
    rows, skipped = read_jsonl(journal / STEPS_FILE, lambda r: check_step(r, SID), live=True)
    assert [r["step"] for r in rows] == [1] and skipped == []
    rows, skipped = read_jsonl(journal / STEPS_FILE, lambda r: check_step(r, SID), live=False)
    assert [r["step"] for r in rows] == [1] and [s.line for s in skipped] == [2]


def test_finished_journal_reports_its_torn_last_line(journal: Path) -> None:
    w = writer(journal)
    w.write_end(SessionEnd(0, 1.0))
    w.close()
    (journal / STEPS_FILE).write_bytes(GOOD + GOOD[:30])
    record = read_journal(journal, live=True)  # end.json: not live any more, whatever was asked
    assert record is not None and [s.line for s in record.skipped] == [2]


# -- liveness ------------------------------------------------------------------------------------

HOLDER = r"""
import sys, time
from pathlib import Path
from rewind.store.journal import JournalWriter
from rewind.store.models import SessionStart

start = SessionStart(id="abcdef012345", name=None, mode="record", started_at=1.0, command=(), cwd="/")
w = JournalWriter(Path(sys.argv[1]), start)
print("holding", flush=True)
sys.stdin.readline()
w.close()
print("released", flush=True)
time.sleep(60)
"""


def test_is_live_while_the_writer_holds_its_lock(journal: Path) -> None:
    w = writer(journal)
    assert is_live(journal)
    w.write_end(SessionEnd(0, 1.0))
    assert is_live(journal)  # still holding the lock until close
    w.close()
    assert not is_live(journal)
    assert (journal / LIVE_LOCK).exists()


def test_no_lock_file_is_not_live(tmp_path: Path) -> None:
    assert not is_live(tmp_path)


def hold_in_child(journal: Path, children: list[subprocess.Popen[str]]) -> subprocess.Popen[str]:
    """A child process holding ``journal``'s lock (it says "holding" once it does)."""
    journal.parent.mkdir(parents=True)
    children.append(
        proc := subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(journal)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
    )
    wait_for_line(proc, "holding")
    return proc


def test_is_live_across_processes(journal: Path, children: list[subprocess.Popen[str]]) -> None:
    proc = hold_in_child(journal, children)
    assert is_live(journal)
    assert proc.stdin is not None
    proc.stdin.write("\n")
    proc.stdin.flush()
    wait_for_line(proc, "released")
    assert not is_live(journal)


def test_lock_of_a_killed_process_is_released(journal: Path, children: list[subprocess.Popen[str]]) -> None:
    proc = hold_in_child(journal, children)
    proc.kill()
    proc.wait()
    assert not is_live(journal)


def test_a_step_journalled_again_counts_by_its_last_line_in_first_order(journal: Path) -> None:
    w = writer(journal)
    w.append_step(step(1))
    w.append_step(step(2))
    w.append_step(step(1, meaning="m1:" + "0" * 64, input_tokens=7))  # step 1, described
    w.close()
    record = read_journal(journal, live=True)
    assert record is not None
    assert [(r["step"], r["meaning"], r["input_tokens"]) for r in record.steps] == [
        (1, "m1:" + "0" * 64, 7), (2, None, None)]
