"""The Store API: listing and filters, references, reads across packs, and a bad or busy index."""

from __future__ import annotations

import fcntl
import os
import time

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
from rewind.store.home import Home
from rewind.store.index import REPAIR, Store
from rewind.store.migrations import migrate
from rewind.store.writer import SessionWriter

from .conftest import (
    Record,
    damage_object,
    make_start,
    make_step,
    object_of,
    record_step,
    response_body,
)


def test_no_home_reads_as_empty_and_creates_nothing(home: Home) -> None:
    assert Store(home).sessions() == []
    Store(home).fold()
    assert not home.root.exists()


def test_new_home_without_records_just_works(home: Home) -> None:
    home.root.mkdir()
    assert Store(home).sessions() == []
    assert home.index_path.is_file()
    assert os.stat(home.index_path).st_mode & 0o077 == 0


def test_session_info_totals(home: Home, record: Record) -> None:
    writer = record(steps=3, exit_code=4)
    info = Store(home).session(writer.session_id)
    assert (info.status, info.exit_code, info.steps, info.lost) == ("complete", 4, 3, 0)
    assert (info.input_tokens, info.output_tokens, info.total_tokens) == (30, 15, 45)
    assert info.command == ("python", "agent.py") and info.routes == {"example.com": "http://x"}
    assert info.upstreams == {"openai": "https://api.openai.com/v1"}


def test_sessions_are_newest_first(home: Home, record: Record) -> None:
    old = record(started_at=100.0).session_id
    new = record(started_at=200.0).session_id
    assert [s.id for s in Store(home).sessions()] == [new, old]


def test_sessions_filters(home: Home, record: Record) -> None:
    a = record(name="nightly", started_at=100.0, steps=0).session_id
    b = record(name="adhoc", started_at=200.0, steps=0).session_id
    c = record(name="nightly", started_at=300.0, steps=0).session_id
    store = Store(home)
    assert [s.id for s in store.sessions(limit=2)] == [c, b]
    assert [s.id for s in store.sessions(name="nightly")] == [c, a]
    assert [s.id for s in store.sessions(since=200.0)] == [c, b]
    assert [s.id for s in store.sessions(name="nightly", since=150.0, limit=5)] == [c]
    assert store.sessions(name="nobody") == []


def test_gaps_are_listed_and_counted(home: Home) -> None:
    writer = SessionWriter(home, make_start())
    record_step(writer, 1)
    writer.add_gap(2, "request body over the size limit")
    record_step(writer, 3)
    writer.add_gap(4, "disk full")
    writer.finish(0)
    store = Store(home)
    assert [(g.step, g.reason) for g in store.gaps(writer.session_id)] == [
        (2, "request body over the size limit"), (4, "disk full")]
    info = store.session(writer.session_id)
    assert (info.steps, info.lost) == (2, 2)


def test_reference_by_id_prefix_and_name(home: Home, record: Record) -> None:
    older = record(name="nightly", started_at=100.0).session_id
    newer = record(name="nightly", started_at=200.0).session_id
    store = Store(home)
    assert store.session(older).id == older
    assert store.session(older[:8]).id == older
    assert store.session("nightly").id == newer


def test_name_wins_over_id_prefix(home: Home, record: Record) -> None:
    named = record(name="ab").session_id
    record(name=None, session_id="ab" + "0" * 10, steps=0)
    assert Store(home).session("ab").id == named


def test_ambiguous_prefix_lists_candidates(home: Home, record: Record) -> None:
    for sid in ("abc000000001", "abc000000002"):
        record(session_id=sid, steps=0)
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
    assert blobs[steps[1].response_sha or ""] == response_body(2)
    assert blobs[info.stdout_sha or ""] == b"out\n" and blobs[info.stderr_sha or ""] == b"err\n"


def test_load_resolves_bases_in_another_sessions_pack(home: Home) -> None:
    first = SessionWriter(home, make_start())
    conversation = b'{"messages": ["' + b"long shared history " * 200 + b'"]}'
    first.put_blob(conversation, chain="req")
    first.finish(0)
    second = SessionWriter(home, make_start())
    grown = conversation + b" and one more turn"
    sha = second.put_blob(conversation, chain="req")  # deduplicated: becomes the chain's base
    rec = make_step(second.session_id, 1, second.put_blob(grown, chain="req"), None)
    second.add_step(rec)
    second.finish(0)
    delta = object_of(home, rec.request_sha)
    assert delta.pack == f"objects/{second.session_id}.pack" and delta.base == sha
    assert object_of(home, sha).pack == f"objects/{first.session_id}.pack"
    _, steps, blobs = Store(home).load(second.session_id)
    assert blobs[steps[0].request_sha] == grown


def test_load_names_the_step_of_a_corrupt_blob(home: Home, record: Record) -> None:
    writer = record(steps=2)
    damage_object(home, object_of(home, index_sha(home, writer.session_id, 2)))
    with pytest.raises(BlobCorrupt, match=r"step 2 \(response body\)") as info:
        Store(home).load(writer.session_id)
    assert "rewind doctor" in (info.value.hint or "")


def test_load_names_the_step_of_a_missing_blob(home: Home, record: Record) -> None:
    writer = record(steps=1)
    (home.objects_dir / f"{writer.session_id}.pack").unlink()
    with pytest.raises(BlobMissing, match="step 1"):
        Store(home).load(writer.session_id)


def test_blob_by_sha(home: Home, record: Record) -> None:
    writer = record(steps=1)
    assert Store(home).blob(index_sha(home, writer.session_id, 1)) == response_body(1)
    with pytest.raises(BlobMissing):
        Store(home).blob("0" * 64)


def index_sha(home: Home, sid: str, step: int) -> str:
    return Store(home).steps(sid)[step - 1].response_sha or ""


def test_missing_index_with_sealed_records_names_repair(home: Home, record: Record) -> None:
    record()
    home.index_path.unlink()
    with pytest.raises(StoreCorrupt, match="missing") as info:
        Store(home).sessions()
    assert REPAIR == "rewind doctor --repair" and REPAIR in (info.value.hint or "")
    assert not home.index_path.exists()  # not silently recreated empty


def test_missing_index_with_only_a_live_journal_is_recreated(home: Home) -> None:
    writer = SessionWriter(home, make_start())
    record_step(writer, 1)
    Store(home).sessions()
    home.index_path.unlink()
    assert [s.id for s in Store(home).sessions()] == [writer.session_id]
    writer.close()


def test_garbage_index_names_repair(home: Home, record: Record) -> None:
    record()
    garbage = os.urandom(64 * 1024)
    home.index_path.write_bytes(garbage)
    with pytest.raises(StoreCorrupt) as info:
        Store(home).sessions()
    assert str(home.index_path) in str(info.value)
    assert "rewind doctor --repair" in (info.value.hint or "")
    assert home.index_path.read_bytes() == garbage  # left as it was, for the repair
    with pytest.raises(StoreCorrupt):
        Store(home).sessions()  # and the next command says the same


def test_index_from_a_newer_rewind_is_refused(home: Home, record: Record) -> None:
    from rewind.errors import FormatVersionError

    record()
    with Store(home)._open() as conn:  # noqa: SLF001
        conn.execute("INSERT INTO _migrations VALUES (99, 0)")
    with pytest.raises(FormatVersionError):
        Store(home).sessions()


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


def test_a_home_created_while_a_reader_looks_loses_no_session(
    home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A reader found no home; before it went on, a recorder created the home, finished,
    # and had not folded its journal yet. The reader must not fold that journal into its
    # throwaway in-memory index.
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


def test_public_api_is_pinned() -> None:
    import rewind.store

    assert sorted(rewind.store.__all__) == [
        "BlobRef", "BlobStore", "Gap", "Home", "SessionInfo", "SessionStart", "SessionWriter",
        "StepRecord", "Store", "exchange_to_step", "new_session_id", "resolve_home",
    ]
    assert all(hasattr(rewind.store, name) for name in rewind.store.__all__)
