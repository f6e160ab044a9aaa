"""SessionWriter: dedup, finish and abort, and the guarantees across processes.

The cross-process tests run a real recorder in a child process: a reader sees its live
steps, ``kill -9`` loses no completed step, and two recorders run at once.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from rewind.errors import StoreError
from rewind.store.blobs import pack_path, scan_pack
from rewind.store.home import Home
from rewind.store.index import Store
from rewind.store.journal import BLOBS_FILE
from rewind.store.writer import SessionWriter

from .conftest import make_start, record_step

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
    request = writer.put_blob(b"request %d" % n)
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


def wait_for_line(proc: subprocess.Popen[str], wanted: str) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.strip() == wanted:
            return
    raise AssertionError(f"child ended before printing {wanted!r}")


@pytest.fixture
def children() -> Iterator[list[subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_put_blob_returns_sha_and_stores_each_blob_once(home: Home) -> None:
    writer = SessionWriter(home, make_start())
    assert writer.put_blob(b"same") == writer.put_blob(b"same")
    writer.close()
    assert len(list(scan_pack(pack_path(home.packs_dir, writer.session_id)))) == 1
    journal = home.session_journal(writer.session_id) / BLOBS_FILE
    assert len(journal.read_bytes().splitlines()) == 1


def test_counts_steps_and_tokens(home: Home) -> None:
    writer = SessionWriter(home, make_start())
    record_step(writer, 1)
    record_step(writer, 2)
    assert (writer.step_count, writer.total_tokens) == (2, 30)


def test_records_its_own_pid(home: Home) -> None:
    assert SessionWriter(home, make_start()).start.pid == os.getpid()


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


def test_abort_leaves_nothing(home: Home) -> None:
    writer = SessionWriter(home, make_start())
    record_step(writer, 1)
    writer.abort()
    assert Store(home).sessions() == []
    assert not pack_path(home.packs_dir, writer.session_id).exists()


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


def test_reader_sees_live_steps_of_a_recording_in_another_process(
    home: Home, children: list[subprocess.Popen[str]]
) -> None:
    children.append(spawn(home, "aaaa00000001", 5, "hang"))
    wait_for_line(children[0], "5")
    info, steps, blobs = Store(home).load("aaaa00000001")
    assert (info.status, info.steps, len(steps)) == ("recording", 5, 5)
    assert blobs[steps[4].request_sha] == b"request 5"
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


def test_two_recordings_at_once_with_a_reader(
    home: Home, children: list[subprocess.Popen[str]]
) -> None:
    sids = ["cccc00000001", "cccc00000002"]
    children.extend(spawn(home, sid, 60, "finish") for sid in sids)
    while any(child.poll() is None for child in children):
        Store(home).sessions()
    assert [child.returncode for child in children] == [0, 0]
    infos = {info.id: info for info in Store(home).sessions()}
    assert [(infos[s].status, infos[s].steps) for s in sids] == [("complete", 60)] * 2
    assert not any(home.journal_dir.iterdir())


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
    assert not any(home.journal_dir.iterdir())


def test_unwritable_home_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(StoreError, match="cannot write"):
        SessionWriter(Home(tmp_path / "file" / "home"), make_start())
