"""SessionWriter: dedup across the store, delta chains, gaps, finish and abort, and the
guarantees across processes.

The cross-process tests run a real recorder in a child process: a reader sees its live
steps, ``kill -9`` loses no completed step, and two recorders run at once.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import signal
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from rewind.errors import ConfigError, StoreError
from rewind.store import sealed as sealed_module
from rewind.store import writer as writer_module
from rewind.store.blobs import MAX_DEPTH, iter_objects, scan_pack
from rewind.store.home import Home
from rewind.store.index import Store
from rewind.store.journal import chain_key
from rewind.store.sealed import earlier_blobs, read_pointer
from rewind.store.writer import SessionWriter

from .conftest import Record, damage_object, make_start, make_step, object_of, record_step, wait_for_line

CHILD = r"""
import sys, time
from pathlib import Path
from rewind.store import Home, SessionStart, SessionWriter, StepRecord

home, sid, steps, then = Home(Path(sys.argv[1])), sys.argv[2], int(sys.argv[3]), sys.argv[4]
start = SessionStart(id=sid, name="child", mode="record", started_at=time.time(),
                     command=("agent",), cwd="/")
writer = SessionWriter(home, start)
n = 0
while then == "forever" or n < steps:
    n += 1
    request = writer.put_blob(b"request %d " % n * 20 + sid.encode(), chain="req")
    response = writer.put_blob(b"response %d " % n * 50)
    writer.add_step(StepRecord(sid, n, "http", "GET", "https://example.com/%d" % n,
                               time.time(), "v1:00", (), request, status=200,
                               response_sha=response, input_tokens=1))
    print(n, flush=True)
if then == "finish":
    writer.finish(0, b"done", b"")
    print("finished", flush=True)
else:
    time.sleep(60)
"""

READER = r"""
import sys
from pathlib import Path
from rewind.store import Home, Store

home, stop = Home(Path(sys.argv[1])), Path(sys.argv[2])
while not stop.exists():
    Store(home).sessions()
"""


def spawn(home: Home, sid: str, steps: int, then: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(home.root), sid, str(steps), then],
        stdout=subprocess.PIPE, text=True,
    )


def objects_in(home: Home, sid: str) -> int:
    """How many objects a session's pack holds, besides its sealed record."""
    path = home.objects_dir / f"{sid}.pack"
    if not path.exists():
        return 0
    record = home.sealed_record(sid)
    mine = read_pointer(record).record if record.exists() else None
    return len([r for r in scan_pack(home.root, f"objects/{sid}.pack").refs if r.sha != mine])


def test_put_blob_returns_sha_and_stores_each_blob_once(home: Home) -> None:
    writer = SessionWriter(home, make_start())
    assert writer.put_blob(b"same") == writer.put_blob(b"same")
    writer.close()
    assert objects_in(home, writer.session_id) == 1


def test_body_in_another_sessions_pack_is_not_written_again(home: Home, record: Record) -> None:
    first = record(steps=2).session_id
    size = (home.objects_dir / f"{first}.pack").stat().st_size
    second = record(steps=2).session_id  # the very same bodies and output
    assert objects_in(home, second) == 0  # its record only
    assert len(scan_pack(home.root, f"objects/{second}.pack").refs) == 1
    assert (home.objects_dir / f"{first}.pack").stat().st_size == size
    _, steps, blobs = Store(home).load(second)
    assert len(blobs) == 6 and steps[0].request_sha in blobs


def test_damaged_existing_copy_is_not_trusted(home: Home, record: Record) -> None:
    body = b'{"prompt": "recorded twice"}' + bytes(range(256))
    first = record(steps=1, bodies=[body]).session_id
    damage_object(home, object_of(home, Store(home).steps(first)[0].request_sha))
    second = record(steps=1, bodies=[body]).session_id
    assert objects_in(home, second) == 1  # its own copy of the damaged body only
    _, steps, blobs = Store(home).load(second)  # no repair needed
    assert blobs[steps[0].request_sha] == body


def test_damaged_copy_is_not_what_gc_keeps(home: Home, record: Record) -> None:
    from rewind.store.maintain import collect_garbage, remove_sessions

    body = b'{"prompt": "recorded twice"}' + bytes(range(256))
    first = record(steps=1, bodies=[body]).session_id
    damage_object(home, object_of(home, Store(home).steps(first)[0].request_sha))
    second = record(steps=1, bodies=[body]).session_id
    remove_sessions(home, [first])
    collect_garbage(home)
    _, steps, blobs = Store(home).load(second)
    assert blobs[steps[0].request_sha] == body


def test_chain_is_delta_coded_per_key(home: Home) -> None:
    writer = SessionWriter(home, make_start())
    turns = [hashlib.sha256(b"%d" % n).hexdigest() for n in range(60)]
    history = b'{"messages": [' + ", ".join(f'"{t}"' for t in turns).encode() + b", "
    a1 = writer.put_blob(history + b'"a1"]}', chain="a")
    b1 = writer.put_blob(b"other endpoint " * 50, chain="b")
    a2 = writer.put_blob(history + b'"a1", "a2"]}', chain="a")
    b2 = writer.put_blob(b"other endpoint " * 50 + b"more", chain="b")
    plain = writer.put_blob(history + b'"unchained"]}')
    writer.finish(0)
    refs = {r.sha: r for r in iter_objects(home.root)}
    assert (refs[a1].base, refs[a2].base, refs[b1].base, refs[b2].base) == (None, a1, None, b1)
    assert refs[plain].base is None
    assert refs[a2].data_length * 4 < refs[a1].data_length
    for sha in (a1, a2, b1, b2, plain):
        assert Store(home).blob(sha)


@pytest.mark.parametrize("how", ["on first use", "prepared", "prepared from the index"])
def test_a_re_run_is_delta_coded_against_the_previous_recording(
    home: Home, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Also when the writer was prepared (packs scanned, previous run read) beforehand,
    as `rewind record` does in a thread while the agent starts; and in a home of many
    packs, where the index names the previous run and no pointer is read but its own."""
    url = "https://api.openai.com/v1/chat/completions"
    request_chain, response_chain = chain_key("request", "POST", url), chain_key("response", "POST", url)
    filler = b" ".join(hashlib.sha256(b"%d" % n).hexdigest().encode() for n in range(40))
    shas: list[list[str]] = []
    for run, started_at in enumerate((100.0, 200.0)):
        if run and how == "prepared from the index":
            monkeypatch.setattr(writer_module, "SCAN_PACKS_MAX", 0)
            monkeypatch.setattr(sealed_module, "pointers", every_pointer_read)
        writer = SessionWriter(home, make_start(started_at=started_at))
        if how != "on first use":
            writer.prepare()
        for n in (1, 2):
            request = writer.put_blob(b'{"turn": %d, "history": "%s"}' % (n, filler), chain=request_chain)
            response = writer.put_blob(b"data: %s reply %d of run %d\n\n" % (filler, n, run),
                                       chain=response_chain, near=request)
            writer.add_step(replace(make_step(writer.session_id, n, request, response), url=url))
            shas.append([request, response])
        writer.finish(0)
    refs = {r.sha: r for r in iter_objects(home.root)}
    first, second = shas[:2], shas[2:]
    assert [s[0] for s in first] == [s[0] for s in second]  # the same requests: stored once
    for n in (0, 1):  # each response against the first recording's n-th response
        assert refs[second[n][1]].base == first[n][1]
        assert refs[second[n][1]].data_length * 20 < refs[second[n][1]].raw_size
    monkeypatch.undo()
    assert earlier_blobs(home, make_start(started_at=300.0), refs.get)[(response_chain, 1)] == second[1][1]
    for sha in (s for pair in shas for s in pair):
        assert Store(home).blob(sha)


def every_pointer_read(home: Home) -> None:
    raise AssertionError("every pointer of the home was read")


def test_chains_are_bounded_by_max_depth(home: Home) -> None:
    writer = SessionWriter(home, make_start())
    shas = [writer.put_blob(b"turn %d " % n * 80, chain="c") for n in range(MAX_DEPTH + 3)]
    writer.finish(0)
    refs = {r.sha: r for r in iter_objects(home.root)}

    def depth(sha: str) -> int:
        base = refs[sha].base
        return 0 if base is None else 1 + depth(base)

    assert max(depth(s) for s in shas) == MAX_DEPTH - 1
    assert Store(home).blob(shas[-1]) == b"turn %d " % (MAX_DEPTH + 2) * 80


def test_small_bodies_are_compressed_on_their_own_and_the_chain_goes_on(home: Home) -> None:
    writer = SessionWriter(home, make_start())
    small = [writer.put_blob(b'{"turn": %d}' % n, chain="c") for n in range(3)]
    large = writer.put_blob(b'{"turn": 2}' + b" and what it adds" * 40, chain="c")
    writer.finish(0)
    refs = {r.sha: r for r in iter_objects(home.root)}
    assert [refs[s].base for s in small] == [None, None, None]
    assert refs[large].base == small[-1]  # a large body still deltas against the chain's last
    assert Store(home).blob(small[1]) == b'{"turn": 1}'


def test_prepare_after_an_abort_reads_nothing(home: Home) -> None:
    first = SessionWriter(home, make_start())
    first.put_blob(b"an object in the store")
    first.finish(0)
    writer = SessionWriter(home, make_start())
    writer.abort()  # the proxy could not start; the preparing thread comes late
    writer.prepare()
    assert writer._known is None  # noqa: SLF001 - no pack (or index) was read


def test_gaps_are_journaled_and_counted(home: Home) -> None:
    writer = SessionWriter(home, make_start())
    writer.add_gap(1, "body too large")
    writer.finish(0)
    assert [g.step for g in writer.gaps] == [1]
    assert Store(home).session(writer.session_id).lost == 1


def test_counts_steps_and_tokens(home: Home) -> None:
    writer = SessionWriter(home, make_start())
    record_step(writer, 1)
    record_step(writer, 2)
    assert (writer.step_count, writer.total_tokens) == (2, 30)
    writer.close()


def test_records_its_own_pid(home: Home) -> None:
    writer = SessionWriter(home, make_start())
    assert writer.start.pid == os.getpid()
    writer.close()


def test_finish_keeps_output_and_folds(home: Home) -> None:
    writer = SessionWriter(home, make_start())
    writer.finish(3, b"stdout bytes", b"stderr bytes", ended_at=123.0)
    assert not home.session_journal(writer.session_id).exists()
    info, _, blobs = Store(home).load(writer.session_id)
    assert (info.status, info.exit_code, info.ended_at) == ("complete", 3, 123.0)
    assert blobs[info.stdout_sha or ""] == b"stdout bytes"


def test_finish_with_busy_index_leaves_the_fold_to_the_next_reader(home: Home) -> None:
    writer = SessionWriter(home, make_start())
    writer.fold_timeout = 0.05
    fd = os.open(home.lock_path, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        writer.finish(0, b"", b"")
    finally:
        os.close(fd)
    assert home.session_journal(writer.session_id).is_dir()
    assert Store(home).session(writer.session_id).status == "complete"


def test_abort_leaves_no_journal(home: Home) -> None:
    writer = SessionWriter(home, make_start())
    record_step(writer, 1)
    writer.abort()
    assert not home.session_journal(writer.session_id).exists()
    assert Store(home).sessions() == []
    assert not home.sealed_record(writer.session_id).exists()


def test_abort_after_a_reader_saw_it_live(home: Home) -> None:
    writer = SessionWriter(home, make_start())
    record_step(writer, 1)
    assert Store(home).session(writer.session_id).status == "recording"
    writer.abort()
    assert [s.status for s in Store(home).sessions()] in ([], ["interrupted"])  # not "recording"
    from rewind.store.maintain import remove_sessions

    remove_sessions(home, [writer.session_id])  # and so it can be removed
    assert Store(home).sessions() == []


def test_closed_writer_refuses_more(home: Home) -> None:
    with SessionWriter(home, make_start()) as writer:
        pass
    with pytest.raises(StoreError, match="closed"):
        writer.put_blob(b"x")


def test_threads_add_steps_concurrently(home: Home) -> None:
    writer = SessionWriter(home, make_start())

    def add_range(first: int) -> None:
        for n in range(first, first + 25):
            record_step(writer, n)

    threads = [threading.Thread(target=add_range, args=(1 + 25 * i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    writer.finish(0)
    assert [s.step for s in Store(home).steps(writer.session_id)] == list(range(1, 101))


def test_home_that_is_a_file_is_a_config_error_and_nothing_is_created(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(ConfigError, match="is a file"):
        SessionWriter(Home(tmp_path / "file"), make_start())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_home_under_a_file_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(StoreError, match="cannot create"):
        SessionWriter(Home(tmp_path / "file" / "home"), make_start())
    assert (tmp_path / "file").read_text() == "not a directory"


def test_unwritable_home_is_a_store_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = Home(tmp_path / "home")
    home.root.mkdir()
    monkeypatch.setattr(os, "access", lambda *_a, **_k: False)  # as a non-root user would meet
    with pytest.raises(StoreError, match="not writable"):
        SessionWriter(home, make_start())
    assert list(home.root.iterdir()) == []


# -- across processes -------------------------------------------------------------------------


def test_reader_sees_live_steps_of_a_recording_in_another_process(
    home: Home, children: list[subprocess.Popen[str]]
) -> None:
    children.append(spawn(home, "aaaa00000001", 5, "hang"))
    wait_for_line(children[0], "5")
    info, steps, blobs = Store(home).load("aaaa00000001")
    assert (info.status, info.steps, len(steps)) == ("recording", 5, 5)
    assert blobs[steps[4].request_sha] == b"request 5 " * 20 + b"aaaa00000001"
    assert home.session_journal("aaaa00000001").is_dir()


def test_kill_9_keeps_every_completed_step(
    home: Home, children: list[subprocess.Popen[str]]
) -> None:
    children.append(proc := spawn(home, "bbbb00000001", 0, "forever"))
    wait_for_line(proc, "40")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    info, steps, blobs = Store(home).load("bbbb00000001")
    assert info.status == "interrupted" and info.exit_code is None
    assert [s.step for s in steps] == list(range(1, len(steps) + 1)) and len(steps) >= 40
    assert blobs[steps[39].response_sha or ""] == b"response 40 " * 50
    assert home.sealed_record("bbbb00000001").is_file()


def test_two_recordings_at_once_with_a_reader_folding(
    home: Home, children: list[subprocess.Popen[str]]
) -> None:
    sids = ["cccc00000001", "cccc00000002"]
    children.extend(spawn(home, sid, 40, "finish") for sid in sids)
    while any(child.poll() is None for child in children):
        Store(home).sessions()
    assert [child.returncode for child in children] == [0, 0]
    store = Store(home)
    infos = {info.id: info for info in store.sessions()}
    assert [(infos[s].status, infos[s].steps) for s in sids] == [("complete", 40)] * 2
    for sid in sids:
        _, steps, blobs = store.load(sid)
        assert blobs[steps[-1].request_sha] == b"request 40 " * 20 + sid.encode()
    assert sorted(p.name for p in home.sessions_dir.iterdir()) == [f"{s}.rws" for s in sids]


def test_kill_9_mid_step_while_another_process_folds(
    home: Home, tmp_path: Path, children: list[subprocess.Popen[str]]
) -> None:
    stop = tmp_path / "stop"
    children.append(writer := spawn(home, "dddd00000001", 0, "forever"))
    wait_for_line(writer, "1")
    children.append(reader := subprocess.Popen(
        [sys.executable, "-c", READER, str(home.root), str(stop)], text=True))
    wait_for_line(writer, "30")
    os.kill(writer.pid, signal.SIGKILL)  # steps go as fast as they can: mid-step, likely
    writer.wait()
    while home.session_journal("dddd00000001").exists():
        assert reader.poll() is None, "the reader failed"
        Store(home).sessions()
    stop.touch()
    assert reader.wait(timeout=30) == 0
    info, steps, blobs = Store(home).load("dddd00000001")
    assert info.status == "interrupted" and len(steps) >= 30
    assert [s.step for s in steps] == list(range(1, len(steps) + 1))
    assert blobs[steps[-1].response_sha or ""] == b"response %d " % len(steps) * 50
    assert [p.name for p in home.sessions_dir.iterdir()] == ["dddd00000001.rws"]


def test_step_without_a_put_blob_fails_nothing_else(home: Home) -> None:
    writer = SessionWriter(home, make_start())
    writer.add_step(make_step(writer.session_id, 1, "f" * 64, None))  # a caller bug
    record_step(writer, 2)
    writer.finish(0)
    store = Store(home)
    assert store.session(writer.session_id).steps == 2
    assert store.blob(store.steps(writer.session_id)[1].request_sha)


def test_in_a_home_of_many_packs_the_objects_come_from_the_index(
    home: Home, record: Record, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading every pack of a big home cost each recording O(objects in the home)."""
    first = record(steps=2)
    monkeypatch.setattr(writer_module, "SCAN_PACKS_MAX", 0)

    def no_scan(root: Path) -> None:
        raise AssertionError("the packs were scanned")

    monkeypatch.setattr(writer_module, "iter_objects", no_scan)
    second = SessionWriter(home, make_start("again"))
    record_step(second, 1)  # the same bodies as the first session's step 1
    second.finish(0, b"out\n", b"err\n")
    assert objects_in(home, second.session_id) == 0, "a body the store had was written again"
    _, steps, blobs = Store(home).load(second.session_id)
    assert len(steps) == 1 and blobs[steps[0].request_sha] and first.session_id != second.session_id
