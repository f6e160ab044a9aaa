"""Sealed session records: the record as bytes, its pointer, and its object in the shared
store, delta-coded against the previous recording of the same job."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from rewind.store.blobs import BlobRef, sha256_hex
from rewind.store.home import Home, ensure_home
from rewind.store.journal import (
    JOURNAL_VERSION,
    SessionEnd,
    SessionRecord,
    Skipped,
    chain_key,
    check_step,
    line,
    step_row,
)
from rewind.store.models import SessionStart
from rewind.store.sealed import (
    SEALED_VERSION,
    chain_positions,
    earlier_blobs,
    newest_alike,
    parse_record,
    read_pointer,
    read_sealed,
    record_bytes,
    seal_record,
    write_pointer,
)

from .conftest import damage_object, make_start, make_step, record_object, scan_lookup

SID = "abcdef012345"
ODD = "tok " + b"\xff\xfe".decode("utf-8", "surrogateescape")
URL = "https://api.openai.com/v1/chat/completions"


@pytest.fixture
def home(home: Home) -> Home:
    """The conftest home, created (sealing happens in a store that exists)."""
    ensure_home(home)
    return home


def sha(text: str) -> str:
    return sha256_hex(text.encode())


def session(
    start: SessionStart, steps: int = 3, url: str = URL, tag: str = "", **changes: object
) -> SessionRecord:
    """A finished session's record: ``steps`` LLM steps whose bodies are named by ``tag``."""
    sid = start.id
    steps_ = [make_step(sid, n, sha(f"req {tag}{n}"), sha(f"resp {tag}{n}")) for n in range(1, steps + 1)]
    rows = [check_step(step_row(replace(s, url=url)), sid) for s in steps_]
    record = SessionRecord(start, steps=rows, end=SessionEnd(0, start.started_at + 5, sha("out"), None),
                           status="complete")
    for key, value in changes.items():
        setattr(record, key, value)
    return record


def seal(home: Home, record: SessionRecord) -> BlobRef | None:
    return seal_record(home, record, scan_lookup(home))


# -- the record as bytes ---------------------------------------------------------------------


def full_record() -> SessionRecord:
    return SessionRecord(
        make_start(session_id=SID),
        steps=[check_step(step_row(make_step(SID, 1, "a" * 64, None)), SID),
               check_step(step_row(replace(make_step(SID, 3, "b" * 64, "c" * 64),
                                           request_headers=(("x", ODD),))), SID)],
        gaps=[{"session_id": SID, "step": 2, "reason": "disk full"}],
        end=SessionEnd(1, 9.5, "d" * 64, None),
        skipped=[Skipped("sessions/x/steps.jsonl", 7, "not JSON (torn or garbage)")],
        status="complete",
    )


def test_record_bytes_round_trip() -> None:
    record = full_record()
    data = record_bytes(record)
    assert [json.loads(r)["record"] for r in data.splitlines()] == [
        "start", "step", "step", "gap", "skipped", "end", "status"]
    assert parse_record(data, "here") == record


def test_record_without_end_or_status_reads_as_interrupted() -> None:
    record = SessionRecord(make_start(session_id=SID), status="recording")
    parsed = parse_record(record_bytes(record), "here")
    assert (parsed.status, parsed.end, parsed.steps) == ("interrupted", None, [])
    status_less = b"".join(r + b"\n" for r in record_bytes(record).splitlines()[:-1])
    assert parse_record(status_less, "here").status == "interrupted"


def test_bad_row_of_a_record_is_kept_as_skipped() -> None:
    start = {"record": "start", "journal_version": JOURNAL_VERSION, **asdict(make_start(session_id=SID))}
    rows = [start, {"record": "step", "step": "x"}, {"record": "gap", "step": "x"},
            {"record": "status", "status": "complete"}]
    record = parse_record(b"".join(line(r) for r in rows), "where")
    assert record.status == "complete" and record.steps == [] and record.gaps == []
    assert [(s.file, s.line) for s in record.skipped] == [("where", 2), ("where", 3)]


@pytest.mark.parametrize("data", [b"", b"\n", line({"record": "step"}), line({"record": "start", "id": "x"})])
def test_record_without_a_readable_start_is_a_value_error(data: bytes) -> None:
    with pytest.raises(ValueError, match="where"):
        parse_record(data, "where")


# -- pointers ----------------------------------------------------------------------------------


def test_pointer_round_trips_atomically(tmp_path: Path) -> None:
    start = make_start(session_id=SID)
    path = tmp_path / f"{SID}.rws"
    write_pointer(path, start, "e" * 64)
    write_pointer(path, start, "f" * 64)  # replaced whole
    pointer = read_pointer(path)
    assert (pointer.start, pointer.record) == (start, "f" * 64)
    assert os.stat(path).st_mode & 0o077 == 0
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left


def test_pointer_of_another_sealed_version_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / f"{SID}.rws"
    write_pointer(path, make_start(session_id=SID), "e" * 64)
    raw = json.loads(path.read_bytes())
    for version in (1, SEALED_VERSION + 1, None):
        path.write_text(json.dumps({**raw, "sealed_version": version}))
        with pytest.raises(ValueError, match="not a sealed session pointer"):
            read_pointer(path)


@pytest.mark.parametrize("data", [
    b"", b"garbage", b"(\xb5/\xfd zstd: the version 1 format", b"[]",
    b'{"sealed_version": 2, "record": "short", "start": {}}',
])
def test_unreadable_pointer_is_a_value_error(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "s.rws"
    path.write_bytes(data)
    with pytest.raises(ValueError):
        read_pointer(path)


def test_pointer_with_a_bad_sha_or_start_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "s.rws"
    write_pointer(path, make_start(session_id=SID), "e" * 64)
    raw = json.loads(path.read_bytes())
    for bad in ({"record": "e" * 63}, {"record": None}, {"start": {"id": SID}}):
        path.write_text(json.dumps({**raw, **bad}))
        with pytest.raises(ValueError, match="unreadable"):
            read_pointer(path)


# -- sealing and reading --------------------------------------------------------------------------


def test_sealed_record_round_trips_through_its_object(home: Home) -> None:
    record = full_record()
    ref = seal(home, record)
    assert ref is not None and ref.pack == f"objects/{SID}.pack" and ref.base is None
    pointer = read_pointer(home.sealed_record(SID))
    assert pointer.record == ref.sha == sha256_hex(record_bytes(record))
    assert read_sealed(home, home.sealed_record(SID), scan_lookup(home)) == record
    assert sorted(p.name for p in home.sessions_dir.iterdir()) == [f"{SID}.rws"]


def test_sealing_an_identical_record_again_writes_no_object(home: Home) -> None:
    record = full_record()
    seal(home, record)
    size = (home.objects_dir / f"{SID}.pack").stat().st_size
    home.sealed_record(SID).unlink()
    assert seal(home, record) is None
    assert (home.objects_dir / f"{SID}.pack").stat().st_size == size
    assert read_sealed(home, home.sealed_record(SID), scan_lookup(home)) == record


def test_record_whose_object_is_missing_is_a_value_error_naming_it(home: Home) -> None:
    seal(home, full_record())
    record_sha = read_pointer(home.sealed_record(SID)).record
    with pytest.raises(ValueError, match=f"{SID}.rws.*{record_sha[:12]}.*in no pack"):
        read_sealed(home, home.sealed_record(SID), lambda _sha: None)
    (home.objects_dir / f"{SID}.pack").unlink()
    with pytest.raises(ValueError, match=f"{SID}.rws"):
        read_sealed(home, home.sealed_record(SID), scan_lookup(home))


def test_record_whose_object_is_damaged_is_a_value_error_naming_it(home: Home) -> None:
    seal(home, full_record())
    damage_object(home, record_object(home, SID))
    with pytest.raises(ValueError, match=f"the record of {SID}.rws is damaged"):
        read_sealed(home, home.sealed_record(SID), scan_lookup(home))


def test_second_recording_of_the_same_name_is_delta_coded_against_the_first(home: Home) -> None:
    first = session(make_start(started_at=100.0), steps=40)
    second = session(make_start(started_at=200.0), steps=40)  # a re-run: new ids and times
    second.steps[-1]["response_sha"] = sha("a different last reply")
    first_ref, second_ref = seal(home, first), seal(home, second)
    assert first_ref is not None and second_ref is not None
    assert first_ref.base is None
    assert second_ref.base == first_ref.sha == read_pointer(home.sealed_record(first.start.id)).record
    assert second_ref.data_length * 3 < first_ref.data_length
    assert read_sealed(home, home.sealed_record(second.start.id), scan_lookup(home)) == second


def test_a_record_is_coded_against_the_newest_alike_only(home: Home) -> None:
    older = session(make_start(started_at=100.0))
    newer = session(make_start(started_at=200.0), tag="n")
    other = session(make_start(name="other", started_at=300.0), tag="o")
    for record in (older, newer, other):
        seal(home, record)
    ref = seal(home, session(make_start(started_at=400.0), tag="latest"))
    assert ref is not None and ref.base == record_object(home, newer.start.id).sha
    assert record_object(home, other.start.id).base is None  # no other "other"


def test_unnamed_sessions_are_alike_only_with_the_same_command_and_directory(home: Home) -> None:
    unnamed = make_start(name=None, started_at=100.0)
    same = session(unnamed)
    other_command = session(replace(make_start(name=None, started_at=200.0), command=("python", "b.py")))
    other_cwd = session(replace(make_start(name=None, started_at=300.0), cwd="/elsewhere"))
    named = session(make_start(name="demo", started_at=400.0))
    for record in (same, other_command, other_cwd, named):
        seal(home, record)
    new = make_start(name=None, started_at=500.0)
    alike = newest_alike(home, new)
    assert alike is not None and alike.start.id == same.start.id
    assert newest_alike(home, unnamed) is None  # itself does not count
    named_alike = newest_alike(home, make_start(name="demo"))
    assert named_alike is not None and named_alike.start.id == named.start.id
    assert newest_alike(home, replace(new, cwd="/nowhere")) is None


def test_candidates_name_the_ids_to_read_newest_first(home: Home) -> None:
    """What the index names in a big home: the first readable one alike wins, and no
    other pointer is read."""
    older, newer = session(make_start(started_at=100.0)), session(make_start(started_at=200.0), tag="n")
    other = session(make_start(name="other", started_at=300.0), tag="o")
    for record in (older, newer, other):
        seal(home, record)
    home.sealed_record(newer.start.id).write_bytes(b"\x00 torn")
    new = make_start(started_at=400.0)
    asked = [new.id, "feedfeedfeed", other.start.id, newer.start.id, older.start.id]
    alike = newest_alike(home, new, lambda start: asked)
    assert alike is not None and alike.start.id == older.start.id  # itself, missing, other, torn: skipped
    assert newest_alike(home, new, lambda start: []) is None  # the index knows none: no scan
    assert newest_alike(home, new) is not None  # without candidates: every pointer is read


def test_a_damaged_earlier_record_means_no_base(home: Home) -> None:
    first = session(make_start(started_at=100.0), steps=10)
    seal(home, first)
    damage_object(home, record_object(home, first.start.id))
    second = session(make_start(started_at=200.0), steps=10, tag="x")
    assert earlier_blobs(home, second.start, scan_lookup(home)) == {}
    ref = seal(home, second)
    assert ref is not None and ref.base is None  # stands alone
    assert read_sealed(home, home.sealed_record(second.start.id), scan_lookup(home)) == second


def test_a_missing_earlier_record_means_no_base(home: Home) -> None:
    first = session(make_start(started_at=100.0))
    seal(home, first)
    (home.objects_dir / f"{first.start.id}.pack").unlink()
    ref = seal(home, session(make_start(started_at=200.0), tag="x"))
    assert ref is not None and ref.base is None


# -- the previous recording's bodies -------------------------------------------------------------


def test_chain_positions_map_chain_and_n_to_shas_in_step_order() -> None:
    start = make_start(session_id=SID)
    other_url = "https://API.example.com/v2/embed?x=1"
    steps = [replace(make_step(SID, 3, sha("r3"), sha("s3")), url=other_url),
             make_step(SID, 2, sha("r2"), None),
             make_step(SID, 4, sha("r4"), sha("s4")),
             make_step(SID, 1, sha("r1"), sha("s1"))]
    record = SessionRecord(start, steps=[check_step(step_row(s), SID) for s in steps])
    req, resp = chain_key("request", "POST", URL), chain_key("response", "POST", URL)
    other_req = chain_key("request", "POST", other_url)
    assert other_req == "request POST api.example.com/v2/embed"
    assert chain_positions(record) == {
        (req, 0): sha("r1"), (resp, 0): sha("s1"),
        (req, 1): sha("r2"),  # step 2 has no response: the response chain does not advance
        (other_req, 0): sha("r3"), (chain_key("response", "POST", other_url), 0): sha("s3"),
        (req, 2): sha("r4"), (resp, 1): sha("s4"),
    }


def test_earlier_blobs_are_those_of_the_newest_alike_recording(home: Home) -> None:
    assert earlier_blobs(home, make_start(), scan_lookup(home)) == {}
    older, newer = session(make_start(started_at=100.0)), session(make_start(started_at=200.0), tag="n")
    for record in (older, newer, session(make_start(name="other", started_at=300.0), tag="o")):
        seal(home, record)
    blobs = earlier_blobs(home, make_start(started_at=400.0), scan_lookup(home))
    resp = chain_key("response", "POST", URL)
    assert blobs == chain_positions(newer)
    assert [blobs[(resp, n)] for n in range(3)] == [sha(f"resp n{n}") for n in (1, 2, 3)]
    assert earlier_blobs(home, make_start(name="nobody"), scan_lookup(home)) == {}
