"""doctor, doctor --repair, rm and gc: the files are the truth, the index is rebuilt."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from typing import Any

import pytest

from rewind.errors import StoreBusy, StoreCorrupt
from rewind.store import maintain
from rewind.store.blobs import BlobRef, iter_objects
from rewind.store.home import Home
from rewind.store.index import Store, open_index
from rewind.store.maintain import collect_garbage, doctor, remove_sessions
from rewind.store.writer import SessionWriter

from .conftest import (
    Record,
    damage_object,
    make_start,
    object_of,
    record_object,
    record_step,
    request_body,
)


def snapshot(home: Home) -> dict[str, tuple[str, int, dict[str, bytes]]]:
    """Every session as a user sees it: status, steps and every blob."""
    store = Store(home)
    out = {}
    for info in store.sessions():
        _, steps, blobs = store.load(info.id)
        out[info.id] = (info.status, len(steps), blobs)
    return out


def test_doctor_on_a_healthy_store(home: Home, record: Record) -> None:
    sids = {record(steps=2).session_id, record(steps=1).session_id}
    report = doctor(home)
    assert report.healthy and report.index == "ok" and report.bad_objects == 0
    assert {s.id for s in report.sessions} == sids and all(s.healthy for s in report.sessions)
    # the second session's bodies and output are the first's; each has its record object
    assert report.objects == 6 + 2
    assert all(p["torn_tail_bytes"] == 0 for p in report.packs)
    assert report.to_json()["healthy"] is True


def test_doctor_on_a_new_home(home: Home) -> None:
    report = doctor(home)
    assert report.healthy and report.index == "none" and report.sessions == []
    assert not home.root.exists()


def test_corrupt_object_makes_exactly_its_sessions_unhealthy(home: Home, record: Record) -> None:
    shared = b'{"prompt": "shared by a and b"}' + bytes(range(256))
    a = record(steps=2, bodies=[shared, b""]).session_id
    b = record(steps=1, bodies=[shared]).session_id
    c = record(steps=2).session_id
    ref = object_of(home, next(s.request_sha for s in Store(home).steps(a) if s.step == 1))
    damage_object(home, ref)
    report = doctor(home)
    health = {s.id: s for s in report.sessions}
    assert not report.healthy and report.bad_objects == 1
    assert (health[a].healthy, health[b].healthy, health[c].healthy) == (False, False, True)
    assert [(x["what"], x["sha"]) for x in health[a].corrupt] == [("step 1 request body", ref.sha)]
    assert [x["what"] for x in health[b].corrupt] == ["step 1 request body"]
    assert health[a].missing == [] and health[a].to_json()["healthy"] is False


def test_doctor_reports_a_missing_pack(home: Home, record: Record) -> None:
    sid = record(steps=1).session_id
    other = record(steps=1, name="other", bodies=[b"other request"]).session_id
    record_sha = record_object(home, sid).sha
    (home.objects_dir / f"{sid}.pack").unlink()
    health = {s.id: s for s in doctor(home).sessions}
    # its record was in that pack too: the session cannot be read at all
    assert not health[sid].healthy and health[sid].unreadable is not None
    assert f"{sid}.rws" in health[sid].unreadable and record_sha[:12] in health[sid].unreadable
    # the second session wrote only its request and its record: the rest was the first one's
    output = {"recorded stdout", "recorded stderr"}
    assert {x["what"] for x in health[other].missing} == {"step 1 response body"} | output
    assert health[other].corrupt == [] and health[other].unreadable is None


def test_doctor_reports_a_corrupt_record_object_as_unreadable(home: Home, record: Record) -> None:
    bad = record(steps=2, name="bad").session_id
    good = record(steps=2, name="good", bodies=[b"good 1", b"good 2"]).session_id
    ref = record_object(home, bad)
    damage_object(home, ref)
    report = doctor(home)
    health = {s.id: s for s in report.sessions}
    assert not report.healthy and report.bad_objects == 1
    assert health[bad].unreadable is not None and ref.sha[:12] in health[bad].unreadable
    assert health[good].healthy and health[good].steps == 2
    assert {x["what"] for x in health[bad].to_json()["missing"]} == set()


def test_doctor_reports_skipped_lines_and_unreadable_records(home: Home, record: Record) -> None:
    record(steps=1)
    bad = home.sessions_dir / "0123456789ab.rws"
    bad.write_bytes(b"garbage")
    health = {s.id: s for s in doctor(home).sessions}
    assert health["0123456789ab"].unreadable and not health["0123456789ab"].healthy


@pytest.mark.parametrize("damage", ["delete", "random bytes"])
def test_repair_rebuilds_a_lost_index(home: Home, record: Record, damage: str) -> None:
    record(steps=3, name="first")
    record(steps=2, name="second")
    live = SessionWriter(home, make_start(name="live"))
    record_step(live, 1)
    before = snapshot(home)
    if damage == "delete":
        home.index_path.unlink()
    else:
        home.index_path.write_bytes(os.urandom(32 * 1024))
    with pytest.raises(StoreCorrupt):
        Store(home).sessions()
    report = doctor(home, repair=True)
    assert report.index == "rebuilt" and report.healthy
    assert snapshot(home) == before
    aside = [p.name for p in home.root.iterdir() if p.name.startswith("index.duckdb.damaged-")]
    assert len(aside) == (1 if damage == "random bytes" else 0)
    live.close()


def test_repair_of_a_healthy_index_changes_nothing(home: Home, record: Record) -> None:
    record(steps=2)
    before = snapshot(home)
    assert doctor(home, repair=True).index == "ok"
    assert snapshot(home) == before


def test_repair_repoints_to_an_intact_duplicate(home: Home, record: Record) -> None:
    body = b'{"prompt": "recorded twice"}' + bytes(range(256))
    a = record(steps=1, bodies=[body]).session_id
    first_copy = object_of(home, Store(home).steps(a)[0].request_sha)
    damage_object(home, first_copy)
    b = record(steps=1, bodies=[body]).session_id  # the writer does not trust the damaged copy
    second_copy = [r for r in _copies(home, first_copy.sha) if r.pack != first_copy.pack]
    assert [r.pack for r in second_copy] == [f"objects/{b}.pack"]
    doctor(home, repair=True)
    for sid in (a, b):
        _, steps, blobs = Store(home).load(sid)
        assert blobs[steps[0].request_sha] == body


def _copies(home: Home, sha: str) -> list[BlobRef]:
    return [r for r in iter_objects(home.root) if r.sha == sha]


# -- rm and gc ----------------------------------------------------------------------------------


def pack_bytes(home: Home) -> int:
    return sum(p.stat().st_size for p in home.objects_dir.glob("*.pack"))


def test_rm_keeps_shared_bodies_and_gc_frees_only_the_rest(home: Home, record: Record) -> None:
    shared = b'{"system": "a long shared prompt"}' * 20
    removed = record(steps=3, bodies=[shared, b"", b""]).session_id
    survivor = record(steps=1, bodies=[shared]).session_id
    before = snapshot(home)[survivor]
    assert object_of(home, Store(home).steps(survivor)[0].request_sha).pack == f"objects/{removed}.pack"
    assert record_object(home, survivor).base == record_object(home, removed).sha

    infos = remove_sessions(home, [removed])
    assert [i.id for i in infos] == [removed]
    assert not home.sealed_record(removed).exists()
    assert [s.id for s in Store(home).sessions()] == [survivor]
    assert snapshot(home)[survivor] == before  # its bodies are still in the removed one's pack

    size = pack_bytes(home)
    report = collect_garbage(home)
    # 2 requests, 2 responses; its record stays: the survivor's (same name) is coded against it
    assert report.objects_removed == 4 and report.packs_rewritten == 1
    assert report.bytes_freed == size - pack_bytes(home) > 0
    assert snapshot(home)[survivor] == before
    assert doctor(home).healthy


def test_gc_removes_a_pack_nobody_refers_to(home: Home, record: Record) -> None:
    keep = record(steps=1, bodies=[b"kept"]).session_id
    sid = record(steps=2, bodies=[b"only mine 1", b"only mine 2"]).session_id
    remove_sessions(home, [sid])
    report = collect_garbage(home)
    assert report.packs_removed == 1 and not (home.objects_dir / f"{sid}.pack").exists()
    assert snapshot(home)[keep][1] == 1
    assert collect_garbage(home).bytes_freed == 0  # nothing left to do


def test_a_body_gc_removed_can_be_recorded_again(home: Home, record: Record) -> None:
    sid = record(steps=1, bodies=[b"recorded, removed, recorded again"]).session_id
    remove_sessions(home, [sid])
    collect_garbage(home)
    again = record(steps=1, bodies=[b"recorded, removed, recorded again"]).session_id
    _, steps, blobs = Store(home).load(again)
    assert blobs[steps[0].request_sha] == b"recorded, removed, recorded again"


def test_gc_keeps_the_bodies_of_an_aborted_sessions_successor(home: Home) -> None:
    aborted = SessionWriter(home, make_start())
    record_step(aborted, 1)
    aborted.abort()
    writer = SessionWriter(home, make_start())
    record_step(writer, 1)  # the same bodies: already in the aborted session's pack
    writer.finish(0)
    collect_garbage(home)
    _, steps, blobs = Store(home).load(writer.session_id)
    assert blobs[steps[0].request_sha] == request_body(1)


def test_gc_refuses_while_a_recording_runs(home: Home, record: Record) -> None:
    record(steps=1)
    writer = SessionWriter(home, make_start())
    with pytest.raises(StoreBusy, match="recording"):
        collect_garbage(home)
    writer.close()
    collect_garbage(home)


@pytest.mark.parametrize("damage", ["pointer", "record object"])
def test_gc_refuses_when_a_session_record_is_unreadable(home: Home, record: Record, damage: str) -> None:
    sid = record(steps=1, name="kept").session_id
    remove_sessions(home, [record(steps=1, bodies=[b"gone"]).session_id])
    if damage == "pointer":
        home.sealed_record(sid).write_bytes(b"damaged")
    else:
        damage_object(home, record_object(home, sid))
    size = pack_bytes(home)
    with pytest.raises(StoreCorrupt, match=sid):
        collect_garbage(home)
    assert pack_bytes(home) == size


def test_gc_keeps_a_removed_record_a_later_one_is_coded_against(home: Home, record: Record) -> None:
    first = record(steps=2).session_id
    second = record(steps=2).session_id  # a re-run: the same name, the same bodies
    first_record = record_object(home, first)
    assert record_object(home, second).base == first_record.sha
    before = snapshot(home)[second]
    remove_sessions(home, [first])
    report = collect_garbage(home)
    assert report.objects_removed == 0  # its bodies are the second's, its record the base
    assert object_of(home, first_record.sha) == first_record
    home.index_path.unlink()
    assert doctor(home, repair=True).healthy
    assert [s.id for s in Store(home).sessions()] == [second]
    assert snapshot(home)[second] == before


def test_gc_removes_a_removed_record_nothing_refers_to(home: Home, record: Record) -> None:
    shared = b'{"system": "a long shared prompt"}' * 20
    removed = record(steps=1, name="gone", bodies=[shared]).session_id
    survivor = record(steps=1, name="kept", bodies=[shared]).session_id  # not coded against it
    removed_record = record_object(home, removed).sha
    remove_sessions(home, [removed])
    report = collect_garbage(home)
    # only its record: its bodies and output are the survivor's too
    assert (report.objects_removed, report.packs_rewritten) == (1, 1)
    assert removed_record not in {r.sha for r in iter_objects(home.root)}
    assert doctor(home).healthy and [s.id for s in Store(home).sessions()] == [survivor]


def test_gc_on_a_new_home_does_nothing(home: Home) -> None:
    assert collect_garbage(home).to_json() == {
        "bytes_freed": 0, "packs_removed": 0, "packs_rewritten": 0, "objects_removed": 0}
    assert not home.root.exists()


def test_rm_refuses_a_live_recording(home: Home) -> None:
    writer = SessionWriter(home, make_start())
    record_step(writer, 1)
    with pytest.raises(StoreBusy, match=writer.session_id):
        remove_sessions(home, [writer.session_id])
    assert Store(home).session(writer.session_id).status == "recording"
    writer.finish(0)
    remove_sessions(home, [writer.session_id])
    assert Store(home).sessions() == []


def test_rm_by_name_and_gc_lock_released(home: Home, record: Record) -> None:
    record(steps=1, name="throwaway")
    remove_sessions(home, ["throwaway"])
    assert Store(home).sessions() == []
    fd = os.open(home.gc_lock_path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # nobody holds it after gc/rm
    finally:
        os.close(fd)


def test_a_fold_right_after_rm_does_not_bring_the_session_back(
    home: Home, record: Record, monkeypatch: pytest.MonkeyPatch
) -> None:
    sid = record(steps=1).session_id
    real = open_index

    @contextlib.contextmanager
    def then_another_reader(*args: Any, **kwargs: Any) -> Iterator[Any]:
        with real(*args, **kwargs) as conn:
            yield conn
        Store(home).fold()  # another process, as soon as the lock is free

    monkeypatch.setattr(maintain, "open_index", then_another_reader)
    remove_sessions(home, [sid])
    monkeypatch.undo()
    assert Store(home).sessions() == []
