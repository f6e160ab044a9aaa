"""Factories for store tests: a home in tmp_path, session starts, steps, and damage."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rewind.store.blobs import BlobRef, iter_objects
from rewind.store.home import Home
from rewind.store.ids import new_session_id
from rewind.store.journal import SessionRecord
from rewind.store.models import SessionStart, StepRecord
from rewind.store.sealed import Lookup, read_pointer, read_sealed
from rewind.store.writer import SessionWriter

Record = Callable[..., SessionWriter]


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home(tmp_path / "rewind-home")


def make_start(
    name: str | None = "demo", started_at: float | None = None, session_id: str | None = None,
    pid: int = 0,
) -> SessionStart:
    """A SessionStart as `rewind record` would write it."""
    return SessionStart(
        id=session_id or new_session_id(), name=name, mode="record",
        started_at=time.time() if started_at is None else started_at,
        command=("python", "agent.py"), cwd="/work", pid=pid,
        upstreams={"openai": "https://api.openai.com/v1"}, routes={"example.com": "http://x"},
    )


def make_step(session_id: str, step: int, request_sha: str, response_sha: str | None) -> StepRecord:
    """One LLM step referring to the given blobs."""
    return StepRecord(
        session_id=session_id, step=step, kind="llm", method="POST",
        url="https://api.openai.com/v1/chat/completions", started_at=1000.0 + step,
        fingerprint=f"v1:{step:064x}", request_headers=(("content-type", "application/json"),),
        request_sha=request_sha, provider="openai", model="gpt-4o", status=200,
        reason="OK", response_headers=(("content-type", "text/event-stream"),),
        response_sha=response_sha, latency_ms=12.5, ttft_ms=3.0, streamed=True,
        chunks=((3.0, 8), (9.5, 10)), input_tokens=10, output_tokens=5,
    )


def request_body(step: int) -> bytes:
    return b'{"model":"gpt-4o","messages":[{"role":"user","content":"%d"}]}' % step


def response_body(step: int) -> bytes:
    return b"data: reply %d\n\n" % step


def record_step(
    writer: SessionWriter, step: int, body: bytes = b"", response: bytes | None = None
) -> StepRecord:
    """Put a request and a response blob and add one LLM step using them."""
    request_sha = writer.put_blob(body or request_body(step))
    response_sha = writer.put_blob(response_body(step) if response is None else response)
    rec = make_step(writer.session_id, step, request_sha, response_sha)
    writer.add_step(rec)
    return rec


@pytest.fixture
def record(home: Home) -> Record:
    """Record a finished session of ``steps`` steps; returns its (closed) writer."""

    def record(steps: int = 2, name: str | None = "demo", started_at: float | None = None,
               exit_code: int = 0, finish: bool = True, session_id: str | None = None,
               bodies: list[bytes] | None = None) -> SessionWriter:
        writer = SessionWriter(home, make_start(name, started_at, session_id))
        for n in range(1, steps + 1):
            record_step(writer, n, (bodies or [])[n - 1] if bodies else b"")
        if finish:
            writer.finish(exit_code, b"out\n", b"err\n", ended_at=time.time())
        return writer

    return record


def object_of(home: Home, sha: str) -> BlobRef:
    """The first copy of ``sha`` in any pack."""
    for ref in iter_objects(home.root):
        if ref.sha == sha:
            return ref
    raise AssertionError(f"no object {sha}")


def scan_lookup(home: Home) -> Lookup:
    """Object locations from the packs as they are now (as the writer and doctor find them)."""

    def lookup(sha: str) -> BlobRef | None:
        return next((r for r in iter_objects(home.root) if r.sha == sha), None)

    return lookup


def sealed(home: Home, sid: str) -> SessionRecord:
    """A sealed session's record, read from its pointer and its object."""
    return read_sealed(home, home.sealed_record(sid), scan_lookup(home))


def record_object(home: Home, sid: str) -> BlobRef:
    """The object holding a sealed session's record."""
    return object_of(home, read_pointer(home.sealed_record(sid)).record)


def flip_byte(path: Path, offset: int) -> None:
    raw = bytearray(path.read_bytes())
    raw[offset] ^= 0xFF
    path.write_bytes(bytes(raw))


def damage_object(home: Home, ref: BlobRef) -> None:
    """Flip a byte near the end of one object's compressed data."""
    flip_byte(home.root / ref.pack, ref.data_offset + ref.data_length - 2)


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture
def children() -> Iterator[list[subprocess.Popen[str]]]:
    """Child processes, killed and reaped after the test."""
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def wait_for_line(proc: subprocess.Popen[str], wanted: str) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.strip() == wanted:
            return
    raise AssertionError(f"child ended before printing {wanted!r}")
