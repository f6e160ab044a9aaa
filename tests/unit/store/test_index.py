"""The index: fold of journals, session references, reads, and a bad or busy index."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from rewind.errors import (
    AmbiguousSession,
    BlobCorrupt,
    BlobMissing,
    SessionNotFound,
    StoreBusy,
    StoreCorrupt,
)
from rewind.store import index
from rewind.store.blobs import pack_path, read_blob, scan_pack
from rewind.store.home import Home
from rewind.store.index import Store
from rewind.store.journal import END_FILE, STEPS_FILE
from rewind.store.migrations import migrate
from rewind.store.writer import SessionWriter

from .conftest import make_start, record_step

Record = Callable[..., SessionWriter]


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_no_home_reads_as_empty_and_creates_nothing(home: Home) -> None:
    assert Store(home).sessions() == []
    assert not home.root.exists()


def test_finished_session_is_folded_and_its_journal_removed(home: Home, record: Record) -> None:
    writer = record(steps=3, exit_code=4)
    info = Store(home).session(writer.session_id)
    assert (info.status, info.exit_code, info.steps) == ("complete", 4, 3)
    assert (info.input_tokens, info.output_tokens, info.total_tokens) == (30, 15, 45)
    assert info.command == ("python", "agent.py") and info.routes == {"example.com": "http://x"}
    assert not home.session_journal(writer.session_id).exists()


def test_steps_round_trip(home: Home) -> None:
    writer = SessionWriter(home, make_start())
    recs = [record_step(writer, n) for n in (1, 2)]
    writer.finish(0, b"", b"")
    assert Store(home).steps(writer.session_id) == recs


def test_live_journal_is_kept_and_refolded_without_duplicates(home: Home) -> None:
    writer = SessionWriter(home, make_start())
    record_step(writer, 1)
    assert Store(home).session(writer.session_id).status == "recording"
    record_step(writer, 2)
    store = Store(home)
    assert [s.step for s in store.steps(writer.session_id)] == [1, 2]
    assert store.session(writer.session_id).steps == 2
    assert home.session_journal(writer.session_id).is_dir()


def test_torn_last_line_is_skipped(home: Home) -> None:
    writer = SessionWriter(home, make_start())
    record_step(writer, 1)
    with (home.session_journal(writer.session_id) / STEPS_FILE).open("ab") as f:
        f.write(b'{"session_id": "%s", "step": 2, "kind": "ll' % writer.session_id.encode())
    assert [s.step for s in Store(home).steps(writer.session_id)] == [1]


def test_dead_recorder_folds_as_interrupted(home: Home) -> None:
    writer = SessionWriter(home, make_start(pid=dead_pid()))
    record_step(writer, 1)
    writer.close()
    info = Store(home).session(writer.session_id)
    assert (info.status, info.steps, info.exit_code) == ("interrupted", 1, None)
    assert not home.session_journal(writer.session_id).exists()


def test_a_home_created_while_a_reader_looks_loses_no_session(
    home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A reader found no home; before it went on, a recorder created the home, finished,
    # and had not folded its journal yet. The reader used to fold that journal into its
    # throwaway in-memory index, with no lock, and delete it: the session was lost.
    finished: list[str] = []

    def migrate_while_a_session_finishes(conn: index.Conn) -> list[int]:
        monkeypatch.setattr(index, "migrate", migrate)
        writer = SessionWriter(home, make_start())
        monkeypatch.setattr(writer, "_fold", lambda: None)
        record_step(writer, 1)
        writer.finish(0, b"out", b"")
        finished.append(writer.session_id)
        return migrate(conn)

    monkeypatch.setattr(index, "migrate", migrate_while_a_session_finishes)
    assert Store(home).sessions() == []
    assert home.session_journal(finished[0]).is_dir()
    info = Store(home).session(finished[0])
    assert (info.status, info.steps) == ("complete", 1)


class Killed(BaseException):
    pass


def test_a_fold_killed_while_deleting_a_journal_keeps_the_session_complete(
    home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = SessionWriter(home, make_start(pid=dead_pid()))
    monkeypatch.setattr(writer, "_fold", lambda: None)
    record_step(writer, 1)
    writer.finish(3, b"", b"")

    def killed_half_way(path: Path, ignore_errors: bool = False) -> None:
        (Path(path) / END_FILE).unlink()
        raise Killed

    monkeypatch.setattr(shutil, "rmtree", killed_half_way)
    with pytest.raises(Killed):
        Store(home).fold()
    monkeypatch.undo()
    info = Store(home).session(writer.session_id)
    assert (info.status, info.exit_code, info.steps) == ("complete", 3, 1)
    assert list(home.journal_dir.iterdir()) == []


def test_sessions_are_newest_first(home: Home, record: Record) -> None:
    old = record(started_at=100.0).session_id
    new = record(started_at=200.0).session_id
    assert [s.id for s in Store(home).sessions()] == [new, old]


def test_reference_by_id_prefix_and_name(home: Home, record: Record) -> None:
    older = record(name="nightly", started_at=100.0).session_id
    newer = record(name="nightly", started_at=200.0).session_id
    store = Store(home)
    assert store.session(older).id == older
    assert store.session(older[:8]).id == older
    assert store.session("nightly").id == newer


def test_name_wins_over_id_prefix(home: Home, record: Record) -> None:
    named = record(name="ab").session_id
    writer = SessionWriter(home, make_start(name=None, session_id="ab" + "0" * 10))
    writer.finish(0)
    assert Store(home).session("ab").id == named


def test_ambiguous_prefix_lists_candidates(home: Home) -> None:
    for sid in ("abc000000001", "abc000000002"):
        SessionWriter(home, make_start(session_id=sid)).finish(0)
    with pytest.raises(AmbiguousSession) as info:
        Store(home).session("abc")
    assert "abc000000001" in str(info.value) and "abc000000002" in str(info.value)


@pytest.mark.parametrize("ref", ["nope", ""])
def test_unknown_reference(home: Home, record: Record, ref: str) -> None:
    record()
    with pytest.raises(SessionNotFound) as info:
        Store(home).session(ref)
    assert "rewind list" in (info.value.hint or "")


def test_load_returns_every_blob(home: Home, record: Record) -> None:
    writer = record(steps=2)
    info, steps, blobs = Store(home).load(writer.session_id)
    assert [s.step for s in steps] == [1, 2]
    assert blobs[steps[1].response_sha or ""] == b"data: reply 2\n\n"
    assert blobs[info.stdout_sha or ""] == b"out\n" and blobs[info.stderr_sha or ""] == b"err\n"


def test_load_names_the_step_of_a_corrupt_blob(home: Home, record: Record) -> None:
    writer = record(steps=2)
    steps = Store(home).steps(writer.session_id)
    ref_offset = find_offset(home, writer.session_id, b"data: reply 2")
    with pytest.raises(BlobCorrupt, match="step 2 .response body."):
        flip_pack_byte(home, writer.session_id, ref_offset)
        Store(home).load(writer.session_id)
    assert steps[1].response_sha


def test_load_names_the_step_of_a_missing_blob(home: Home, record: Record) -> None:
    writer = record(steps=1)
    pack_path(home.packs_dir, writer.session_id).unlink()
    with pytest.raises(BlobMissing, match="step 1"):
        Store(home).load(writer.session_id)


def test_blob_by_sha(home: Home, record: Record) -> None:
    writer = record(steps=1)
    step = Store(home).steps(writer.session_id)[0]
    assert Store(home).blob(step.response_sha or "") == b"data: reply 1\n\n"
    with pytest.raises(BlobMissing):
        Store(home).blob("0" * 64)


def test_corrupt_index_is_a_clear_error(home: Home, record: Record) -> None:
    record()
    home.index_path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreCorrupt) as info:
        Store(home).sessions()
    assert str(home.index_path) in str(info.value)
    assert "move it aside" in (info.value.hint or "")


def test_missing_index_is_recreated_from_remaining_journals(home: Home) -> None:
    writer = SessionWriter(home, make_start())
    record_step(writer, 1)
    Store(home).sessions()
    home.index_path.unlink()
    assert [s.id for s in Store(home).sessions()] == [writer.session_id]


def test_busy_index(home: Home, record: Record) -> None:
    record()
    fd = os.open(home.lock_path, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        started = time.monotonic()
        with pytest.raises(StoreBusy):
            Store(home, lock_timeout=0.2).sessions()
        assert time.monotonic() - started < 2
    finally:
        os.close(fd)


def find_offset(home: Home, sid: str, needle: bytes) -> int:
    for ref in scan_pack(pack_path(home.packs_dir, sid)):
        if read_blob(home.packs_dir, ref).startswith(needle):
            return ref.data_offset + ref.data_length - 2
    raise AssertionError(needle)


def flip_pack_byte(home: Home, sid: str, offset: int) -> None:
    path: Path = pack_path(home.packs_dir, sid)
    raw = bytearray(path.read_bytes())
    raw[offset] ^= 0xFF
    path.write_bytes(bytes(raw))


def test_public_api_is_pinned() -> None:
    import rewind.store

    assert sorted(rewind.store.__all__) == [
        "BlobRef", "BlobStore", "Home", "SessionInfo", "SessionStart", "SessionWriter",
        "StepRecord", "Store", "exchange_to_step", "new_session_id", "resolve_home",
    ]
    assert all(hasattr(rewind.store, name) for name in rewind.store.__all__)


def test_journal_that_cannot_be_folded_is_named(home: Home) -> None:
    writer = SessionWriter(home, make_start())
    record_step(writer, 1)
    with (home.session_journal(writer.session_id) / STEPS_FILE).open("ab") as f:
        f.write(b'{"session_id": "%s", "step": 2}\n' % writer.session_id.encode())
    with pytest.raises(StoreCorrupt, match=writer.session_id) as info:
        Store(home).sessions()
    assert "move" in (info.value.hint or "")
