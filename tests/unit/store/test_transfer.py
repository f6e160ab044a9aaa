"""Export, verify and import through the store's own writer and index (no CLI)."""

from __future__ import annotations

import dataclasses
import fcntl
import json
from pathlib import Path

import pytest

from rewind.canon.redact import RedactionPolicy
from rewind.core.exchange import Exchange
from rewind.errors import CassetteError, StoreBusy, StoreError
from rewind.store import transfer
from rewind.store.home import Home
from rewind.store.index import Store
from rewind.store.ingest import exchange_to_step
from rewind.store.writer import SessionWriter

from .conftest import make_start

KEY_SHAPED = "sk-" + "proj" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4"  # built so no key-shaped literal is committed


def record(home: Home, name: str, answer: bytes = b'{"ok": true}', calls: int = 2) -> str:
    writer = SessionWriter(home, make_start(name=name))
    for step in range(1, calls + 1):
        ex = Exchange(step, 1000.0 + step, "POST", "https://api.example.com/v1/run",
                      (("content-type", "application/json"),), b'{"q": %d}' % step, 200, "OK",
                      (("content-type", "application/json"),), answer)
        writer.add_step(exchange_to_step(ex, writer, writer.session_id, RedactionPolicy()))
    writer.finish(0, b"agent output\n", b"", 2000.0)
    return writer.session_id


def test_a_session_round_trips_into_another_home_and_a_second_import_adds_nothing(
    home: Home, tmp_path: Path
) -> None:
    sid = record(home, "one")
    out = tmp_path / "one.rw"
    done = transfer.export(home, ["one"], out)
    assert (done.sessions, done.steps) == (1, 2)
    other = Home(tmp_path / "teammate")
    first = transfer.import_cassette(other, out)
    assert first.added == [sid] and first.present == []
    (info_a, steps_a, blobs_a), (info_b, steps_b, blobs_b) = Store(home).load(sid), Store(other).load(sid)
    assert [s.fingerprint for s in steps_a] == [s.fingerprint for s in steps_b]
    assert blobs_a == blobs_b and info_b.name == "one" and info_b.upstreams == info_a.upstreams
    assert (info_b.exit_code, info_b.command) == (0, info_a.command)
    assert info_b.fingerprint_version == info_a.fingerprint_version and info_b.started_at == info_a.started_at
    again = transfer.import_cassette(other, out)
    assert again.added == [] and again.present == [sid]


def test_a_branch_keeps_its_lineage_through_a_cassette(home: Home, tmp_path: Path) -> None:
    parent = record(home, "parent")
    start = dataclasses.replace(
        make_start(name="child"), mode="mutate", parent_id=parent, fork_step=2, fault="429"
    )
    writer = SessionWriter(home, start)
    writer.finish(0, b"", b"", 2000.0)
    transfer.export(home, ["child"], tmp_path / "child.rw")
    other = Home(tmp_path / "teammate")
    transfer.import_cassette(other, tmp_path / "child.rw")
    info = Store(other).load("child")[0]
    assert (info.mode, info.parent_id, info.fork_step, info.fault) == ("mutate", parent, 2, "429")


def test_export_refuses_a_secret_naming_the_step(home: Home, tmp_path: Path) -> None:
    writer = SessionWriter(home, make_start(name="leaky"))
    ex = Exchange(1, 1.0, "POST", "https://api.example.com/v1/run", (), b"{}", 200, "OK", (), b"{}")
    step = exchange_to_step(ex, writer, writer.session_id, RedactionPolicy())
    leaked = b'{"note": "' + KEY_SHAPED.encode() + b'"}'
    step.response_sha = writer.put_blob(leaked)  # as an older Rewind could have kept it
    writer.add_step(step)
    writer.finish(0, b"", b"")
    with pytest.raises(CassetteError, match=r"step 1 .*secret in its response body"):
        transfer.export(home, ["leaky"], tmp_path / "x.rw")
    assert not (tmp_path / "x.rw").exists()


def test_export_refuses_a_secret_of_the_environment(home: Home, tmp_path: Path) -> None:
    record(home, "plain", answer=b'{"echo": "hunter2-but-longer"}')
    with pytest.raises(CassetteError, match="step 1"):
        transfer.export(home, ["plain"], tmp_path / "x.rw", literals=[b"hunter2-but-longer"])


def test_a_failed_import_is_undone(home: Home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    record(home, "a")
    record(home, "b")
    out = tmp_path / "two.rw"
    transfer.export(home, ["a", "b"], out)
    other = Home(tmp_path / "teammate")
    calls: list[str] = []
    real = transfer.write_session

    def disk_full_on_second(*args: object) -> None:
        calls.append("x")
        if len(calls) == 2:
            raise StoreError("disk full")
        real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(transfer, "write_session", disk_full_on_second)
    with pytest.raises(CassetteError, match="undone.*disk full"):
        transfer.import_cassette(other, out)
    assert Store(other).sessions() == []


def test_a_late_second_write_of_a_session_that_fails_leaves_the_first_whole(home: Home) -> None:
    """Two imports (or pulls) of one session at once: both saw it absent; the first
    finished; the second fails half-way. Its undo must not delete the first's pack."""
    sid = record(home, "one", calls=3)
    manifest, blobs = transfer._collect(Store(home), ["one"])
    (start, _), end, steps = transfer.checked_session(manifest.sessions[0], set(blobs))
    partial = {sha: data for sha, data in blobs.items() if sha != steps[-1].response_sha}
    with pytest.raises(KeyError):
        transfer.write_session(home, start, end, steps, partial)
    info, loaded, bodies = Store(home).load(sid)
    assert (info.status, len(loaded)) == ("complete", 3)
    assert bodies[loaded[-1].response_sha or ""] == blobs[steps[-1].response_sha or ""]


def test_a_session_being_written_by_another_process_is_refused_and_left_alone(home: Home) -> None:
    sid = record(home, "one")
    manifest, blobs = transfer._collect(Store(home), ["one"])
    (start, _), end, steps = transfer.checked_session(manifest.sessions[0], set(blobs))
    journal = home.session_journal(sid)
    journal.mkdir()  # as another import of the session holds it
    with pytest.raises(StoreBusy, match=f"session {sid} is being written by another process"):
        transfer.write_session(home, start, end, steps, blobs)
    assert journal.is_dir() and len(Store(home).steps(sid)) == 2
    with home.gc_lock_path.open("rb+") as lock:  # the refused writer does not hold up `rewind gc`
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_a_manifest_with_an_invalid_step_fails_verification(home: Home, tmp_path: Path) -> None:
    record(home, "one")
    manifest, blobs = transfer._collect(Store(home), ["one"])
    manifest.sessions[0]["steps"][0]["request_sha"] = "f" * 64  # a body the cassette lacks
    out = tmp_path / "bad.rw"
    with out.open("wb") as f:
        transfer.cassette.write(f, manifest, blobs.__getitem__)
    with pytest.raises(CassetteError, match="names a body the cassette lacks"):
        transfer.verify(out)
    manifest.sessions[0]["id"] = "../../etc"
    with out.open("wb") as f:
        transfer.cassette.write(f, manifest, blobs.__getitem__)
    with pytest.raises(CassetteError, match="not valid"):
        transfer.verify(out)
    assert json.loads(json.dumps(manifest.sessions))  # still plain JSON


def test_export_reports_its_progress_in_bytes_up_to_the_total(home: Home, tmp_path: Path) -> None:
    record(home, "one", calls=3)
    seen: list[tuple[int, int]] = []
    done = transfer.export(home, ["one"], tmp_path / "one.rw", progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (done.bytes, done.bytes) and len(seen) == done.blobs
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
