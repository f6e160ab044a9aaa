"""The fold: journals and sealed records into the index; sealing; backfill of old stores."""

from __future__ import annotations

import errno
import json
import shutil
from dataclasses import replace
from pathlib import Path

import duckdb
import pytest

from rewind.store import fold
from rewind.store import sealed as sealed_module
from rewind.store.blobs import sha256_hex
from rewind.store.home import Home
from rewind.store.index import Store
from rewind.store.journal import END_FILE, STEPS_FILE, line, step_row
from rewind.store.migrations import MIGRATIONS, applied_versions
from rewind.store.writer import SessionWriter

from .conftest import Record, make_start, make_step, record_object, record_step, sealed
from .test_blobs import write_legacy_pack


class Warnings(list[str]):
    def __call__(self, message: str) -> None:
        self.append(message)


@pytest.fixture
def warnings() -> Warnings:
    return Warnings()


def test_finished_session_is_sealed_and_loads(home: Home, record: Record) -> None:
    writer = record(steps=3, exit_code=4)
    sid = writer.session_id
    assert not home.session_journal(sid).exists()
    assert home.sealed_record(sid).is_file()
    record = sealed(home, sid)
    assert (record.status, len(record.steps), record.end and record.end.exit_code) == ("complete", 3, 4)
    info, steps, blobs = Store(home).load(sid)
    assert (info.status, info.exit_code, info.steps) == ("complete", 4, 3)
    assert blobs[steps[2].response_sha or ""] == b"data: reply 3\n\n"
    assert sorted(p.name for p in home.sessions_dir.iterdir()) == [f"{sid}.rws"]


def test_steps_round_trip_through_the_index(home: Home) -> None:
    writer = SessionWriter(home, make_start())
    recs = [record_step(writer, n) for n in (1, 2)]
    writer.finish(0, b"", b"")
    assert Store(home).steps(writer.session_id) == recs


def test_undecodable_header_bytes_round_trip_through_the_index(home: Home) -> None:
    odd = b"\xff\xfe".decode("utf-8", "surrogateescape")
    writer = SessionWriter(home, make_start())
    sha = writer.put_blob(b"{}")
    rec = make_step(writer.session_id, 1, sha, None)
    rec.request_headers = (("x-raw", odd),)
    rec.response_headers = (("set-cookie", "a=" + odd),)
    writer.add_step(rec)
    writer.finish(0)
    step = Store(home).steps(writer.session_id)[0]
    assert step.request_headers == (("x-raw", odd),)
    assert step.response_headers[0][1].encode("utf-8", "surrogateescape") == b"a=\xff\xfe"


def test_live_journal_is_refolded_without_duplicates(home: Home) -> None:
    writer = SessionWriter(home, make_start())
    record_step(writer, 1)
    assert Store(home).session(writer.session_id).status == "recording"
    record_step(writer, 2)
    store = Store(home)
    store.fold()
    assert [s.step for s in store.steps(writer.session_id)] == [1, 2]
    assert store.session(writer.session_id).steps == 2
    assert home.session_journal(writer.session_id).is_dir()
    assert not home.sealed_record(writer.session_id).exists()
    writer.finish(0)
    assert Store(home).session(writer.session_id).steps == 2


def test_dead_recorder_folds_as_interrupted(home: Home) -> None:
    writer = SessionWriter(home, make_start())
    record_step(writer, 1)
    writer.close()  # nobody holds live.lock, and there is no end.json
    info = Store(home).session(writer.session_id)
    assert (info.status, info.steps, info.exit_code) == ("interrupted", 1, None)
    assert not home.session_journal(writer.session_id).exists()
    assert sealed(home, writer.session_id).status == "interrupted"


def test_bad_lines_block_neither_other_steps_nor_other_sessions(
    home: Home, record: Record, warnings: Warnings
) -> None:
    # The old bug: one step line without its fields failed the bulk insert (NOT NULL),
    # and every command failed with it.
    healthy = record(steps=1).session_id
    writer = SessionWriter(home, make_start())
    record_step(writer, 1)
    steps = home.session_journal(writer.session_id) / STEPS_FILE
    with steps.open("ab") as f:
        f.write(b'{"session_id": "%s", "step": 2}\n' % writer.session_id.encode())
        f.write(b"\x00garbage\xff\n")
    record_step(writer, 3)
    writer.close()
    store = Store(home, warn=warnings)
    assert [s.step for s in store.steps(writer.session_id)] == [1, 3]
    assert {s.id for s in store.sessions()} == {healthy, writer.session_id}
    assert warnings == [f"journal {steps}, line 2: field 'kind' is missing; skipped",
                        f"journal {steps}, line 3: not JSON (torn or garbage); skipped"]


def test_bad_lines_are_warned_once(home: Home, warnings: Warnings) -> None:
    writer = SessionWriter(home, make_start())
    record_step(writer, 1)
    with (home.session_journal(writer.session_id) / STEPS_FILE).open("ab") as f:
        f.write(b"[]\n")
    writer.finish(0)  # folds with the default warn; the journal is sealed then
    store = Store(home, warn=warnings)
    store.sessions()
    store.load(writer.session_id)
    assert warnings == []
    assert len(sealed(home, writer.session_id).skipped) == 1


def test_live_torn_last_line_is_not_warned(home: Home, warnings: Warnings) -> None:
    writer = SessionWriter(home, make_start())
    record_step(writer, 1)
    with (home.session_journal(writer.session_id) / STEPS_FILE).open("ab") as f:
        f.write(b'{"session_id": "%s", "step": 2, "kind": "ll' % writer.session_id.encode())
    assert [s.step for s in Store(home, warn=warnings).steps(writer.session_id)] == [1]
    assert warnings == []
    writer.close()


def test_journal_without_session_json_is_left_alone(home: Home, record: Record) -> None:
    record(steps=1)
    stray = home.sessions_dir / "0123456789ab"
    stray.mkdir()
    assert len(Store(home).sessions()) == 1
    assert stray.is_dir()


def test_a_fold_killed_while_deleting_a_journal_keeps_the_session_complete(
    home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = SessionWriter(home, make_start())
    monkeypatch.setattr(writer, "_fold", lambda: None)
    record_step(writer, 1)
    writer.finish(3, b"", b"")

    class Killed(BaseException):
        pass

    def killed_half_way(path: Path, ignore_errors: bool = False) -> None:
        (Path(path) / END_FILE).unlink()
        raise Killed

    monkeypatch.setattr(shutil, "rmtree", killed_half_way)
    with pytest.raises(Killed):
        Store(home).fold()
    monkeypatch.undo()
    info = Store(home).session(writer.session_id)
    assert (info.status, info.exit_code, info.steps) == ("complete", 3, 1)
    assert [p.name for p in home.sessions_dir.iterdir()] == [f"{writer.session_id}.rws"]


def test_a_fold_killed_before_sealing_refolds_the_journal(
    home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = SessionWriter(home, make_start())
    monkeypatch.setattr(writer, "_fold", lambda: None)
    record_step(writer, 1)
    writer.finish(0)

    class Killed(BaseException):
        pass

    def killed(*_args: object) -> None:
        raise Killed

    monkeypatch.setattr(fold, "seal_record", killed)
    with pytest.raises(Killed):
        Store(home).fold()
    monkeypatch.undo()
    assert home.session_journal(writer.session_id).is_dir()
    assert Store(home).session(writer.session_id).steps == 1
    assert home.sealed_record(writer.session_id).is_file()
    assert not home.session_journal(writer.session_id).exists()


def test_a_seal_that_cannot_be_written_keeps_the_journal_and_warns(
    home: Home, monkeypatch: pytest.MonkeyPatch, warnings: Warnings
) -> None:
    writer = SessionWriter(home, make_start())
    monkeypatch.setattr(writer, "_fold", lambda: None)
    record_step(writer, 1)
    writer.finish(2)
    sid, journal = writer.session_id, home.session_journal(writer.session_id)
    pack = str(home.objects_dir / f"{sid}.pack")

    def disk_full(*_args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", pack)

    monkeypatch.setattr(fold, "seal_record", disk_full)
    info = Store(home, warn=warnings).session(sid)  # the fold does not fail
    assert (info.status, info.steps, info.exit_code) == ("complete", 1, 2)
    assert warnings == [f"session {sid} cannot be sealed (No space left on device: {pack}); "
                        f"its journal {journal} is kept"]
    assert journal.is_dir() and not home.sealed_record(sid).exists()
    monkeypatch.undo()
    Store(home).fold()  # the next fold seals it
    assert not journal.exists() and sealed(home, sid).status == "complete"
    assert Store(home).session(sid).steps == 1


def test_sealed_record_unknown_to_the_index_is_loaded(home: Home, record: Record) -> None:
    sid = record(steps=2).session_id
    pointer = home.sealed_record(sid).read_bytes()
    other = record(steps=1).session_id
    home.sealed_record(sid).unlink()
    with Store(home)._open() as conn:  # noqa: SLF001 (delete the rows as a restore would)
        conn.execute("DELETE FROM steps WHERE session_id = ?", [sid])
        conn.execute("DELETE FROM sessions WHERE id = ?", [sid])
    home.sealed_record(sid).write_bytes(pointer)
    assert {s.id: s.steps for s in Store(home).sessions()} == {sid: 2, other: 1}


def test_sealed_record_whose_object_the_index_lacks_is_found_in_the_packs(home: Home, record: Record) -> None:
    sid = record(steps=2).session_id
    with Store(home)._open() as conn:  # noqa: SLF001 (an index that never saw this session)
        for table, column in (("steps", "session_id"), ("sessions", "id")):
            conn.execute(f"DELETE FROM {table} WHERE {column} = ?", [sid])
        conn.execute("DELETE FROM objects")
    _, steps, blobs = Store(home).load(sid)
    assert len(steps) == 2 and blobs[steps[1].response_sha or ""] == b"data: reply 2\n\n"


def test_sealed_record_whose_object_is_gone_is_warned(
    home: Home, record: Record, warnings: Warnings
) -> None:
    good = record(steps=1, name="good").session_id
    gone = record(steps=1, name="gone", bodies=[b"gone"]).session_id
    with Store(home)._open() as conn:  # noqa: SLF001
        conn.execute("DELETE FROM sessions WHERE id = ?", [gone])
        conn.execute("DELETE FROM objects WHERE pack = ?", [f"objects/{gone}.pack"])
    (home.objects_dir / f"{gone}.pack").unlink()
    assert [s.id for s in Store(home, warn=warnings).sessions()] == [good]
    assert len(warnings) == 1 and f"{gone}.rws" in warnings[0] and "in no pack" in warnings[0]


def test_unreadable_sealed_record_is_warned_and_others_load(
    home: Home, record: Record, warnings: Warnings
) -> None:
    good = record(steps=1).session_id
    bad = home.sessions_dir / "0123456789ab.rws"
    bad.write_bytes(b"not zstd")
    assert [s.id for s in Store(home, warn=warnings).sessions()] == [good]
    assert len(warnings) == 1 and str(bad) in warnings[0] and "rewind doctor" in warnings[0]


# -- backfill: stores written before sealed records -----------------------------------------


V1_SID = "0a1b2c3d4e5f"


def version_1_store(home: Home) -> list[bytes]:
    """An index at schema version 1 (blobs table, no records on disk) and its legacy pack."""
    bodies = [b'{"messages": ["hi"]}', b"data: hello\n\n", b"stdout of v1"]
    refs = write_legacy_pack(home.root, V1_SID, bodies)
    conn = duckdb.connect(str(home.index_path))
    conn.execute("CREATE TABLE _migrations (version INTEGER PRIMARY KEY, applied_at DOUBLE NOT NULL)")
    conn.execute(MIGRATIONS[0].sql)
    conn.execute("INSERT INTO _migrations VALUES (1, 0)")
    conn.execute(
        "INSERT INTO sessions VALUES (?, 'old', 'record', 100.0, '[\"agent\"]', '/', NULL, NULL, "
        "'{}', '{}', 1, 42, 'complete', 101.0, 0, ?, NULL)", [V1_SID, refs[2].sha])
    row = step_row(make_step(V1_SID, 1, refs[0].sha, refs[1].sha))
    added_later = ("meaning", "finish_reason", "error_type", "response_model", "tag")  # migration 3
    values = [json.dumps(v) if isinstance(v, list) else v for k, v in row.items() if k not in added_later]
    conn.execute(f"INSERT INTO steps VALUES ({', '.join('?' for _ in values)})", values)
    for ref in refs:
        conn.execute("INSERT INTO blobs VALUES (?, ?, ?, ?, ?)",
                     [ref.sha, V1_SID, ref.data_offset, ref.data_length, ref.raw_size])
    conn.close()
    return bodies


def test_version_1_store_is_migrated_and_backfilled(home: Home) -> None:
    home.root.mkdir()
    bodies = version_1_store(home)
    info, steps, blobs = Store(home).load(V1_SID)
    assert (info.name, info.status, info.stdout_sha) == ("old", "complete", sha256_hex(bodies[2]))
    assert blobs[steps[0].request_sha] == bodies[0] and blobs[steps[0].response_sha or ""] == bodies[1]
    record = sealed(home, V1_SID)
    assert (record.status, len(record.steps), record.end and record.end.stdout_sha) == (
        "complete", 1, sha256_hex(bodies[2]))
    with Store(home)._open() as conn:  # noqa: SLF001
        assert applied_versions(conn) == {m.version for m in MIGRATIONS}


def test_backfilled_store_survives_losing_its_index(home: Home) -> None:
    from rewind.store.maintain import doctor

    home.root.mkdir()
    bodies = version_1_store(home)
    Store(home).fold()
    home.index_path.unlink()
    assert doctor(home, repair=True).healthy
    _, steps, blobs = Store(home).load(V1_SID)
    assert blobs[steps[0].request_sha] == bodies[0]


def test_session_line_of_the_journal_is_exactly_a_step_row(home: Home) -> None:
    writer = SessionWriter(home, make_start())
    rec = record_step(writer, 1)
    writer.close()
    data = (home.session_journal(writer.session_id) / STEPS_FILE).read_bytes()
    assert data == line(step_row(rec))


def test_alike_ids_are_the_newest_sessions_of_the_same_job(home: Home, record: Record) -> None:
    named = [record(steps=1, name="job", started_at=float(t)).session_id for t in (100, 300, 200)]
    record(steps=1, name="other", started_at=400.0)
    unnamed = record(steps=1, name=None, started_at=500.0).session_id
    with duckdb.connect(str(home.index_path)) as conn:
        assert fold.alike_ids(conn, make_start("job")) == [named[1], named[2], named[0]]
        assert fold.alike_ids(conn, make_start("job"), limit=1) == [named[1]]
        own = replace(make_start("job"), id=named[1])
        assert fold.alike_ids(conn, own) == [named[2], named[0]]  # not itself
        assert fold.alike_ids(conn, make_start(None)) == [unnamed]  # same command and directory
        assert fold.alike_ids(conn, replace(make_start(None), command=("python", "other.py"))) == []
        assert fold.alike_ids(conn, replace(make_start(None), cwd="/elsewhere")) == []
        assert fold.alike_ids(conn, make_start("nobody")) == []


def test_sealing_reads_the_pointers_the_index_names_not_every_one(
    home: Home, record: Record, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = record(steps=2, started_at=100.0)
    monkeypatch.setattr(sealed_module, "pointers", lambda home: pytest.fail("every pointer was read"))
    second = record(steps=2, started_at=200.0)
    assert record_object(home, second.session_id).base == record_object(home, first.session_id).sha


def test_sealing_a_session_does_not_rescan_every_pack(
    home: Home, record: Record, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new record is never indexed yet; asking the scanning lookup for it read every
    pack of the home for each session sealed (quadratic in the number of sessions)."""
    record(steps=2)
    scans: list[int] = []
    real = fold.locate_objects
    monkeypatch.setattr(fold, "locate_objects", lambda conn, home: scans.append(1) or real(conn, home))
    later = record(steps=2)
    assert scans == []
    assert Store(home).load(later.session_id)[0].status == "complete"
