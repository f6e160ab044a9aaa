"""The per-session journal: how a recording reaches disk without ever opening DuckDB.

``journal/<sid>/`` holds, written by the recording process only:

    session.json   the ``SessionStart`` (and ``journal_version``), written atomically
    steps.jsonl    one JSON object per step, the columns of the ``steps`` table
    blobs.jsonl    one JSON object per blob, the columns of the ``blobs`` table
    end.json       exit code, end time, stdout/stderr blob shas, written atomically last

Each line is one ``write()`` on an ``O_APPEND`` descriptor, so a ``kill -9`` leaves at
most a torn last line, which the fold skips. A blob's pack record and its blobs.jsonl
line are written before any step line that refers to the blob.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from rewind.store.blobs import BlobRef, write_all
from rewind.store.models import SessionStart, StepRecord

JOURNAL_VERSION = 1
SESSION_FILE = "session.json"
STEPS_FILE = "steps.jsonl"
BLOBS_FILE = "blobs.jsonl"
END_FILE = "end.json"

# Column name -> DuckDB type of a steps.jsonl / blobs.jsonl line, in StepRecord order.
STEP_COLUMNS: dict[str, str] = {
    "session_id": "VARCHAR",
    "step": "INTEGER",
    "kind": "VARCHAR",
    "method": "VARCHAR",
    "url": "VARCHAR",
    "started_at": "DOUBLE",
    "fingerprint": "VARCHAR",
    "request_headers": "JSON",
    "request_sha": "VARCHAR",
    "provider": "VARCHAR",
    "model": "VARCHAR",
    "status": "INTEGER",
    "reason": "VARCHAR",
    "error": "VARCHAR",
    "response_headers": "JSON",
    "response_sha": "VARCHAR",
    "latency_ms": "DOUBLE",
    "ttft_ms": "DOUBLE",
    "streamed": "BOOLEAN",
    "chunks": "JSON",
    "input_tokens": "BIGINT",
    "output_tokens": "BIGINT",
    "cache_read_tokens": "BIGINT",
    "cache_write_tokens": "BIGINT",
}
BLOB_COLUMNS: dict[str, str] = {
    "sha": "VARCHAR",
    "pack": "VARCHAR",
    "data_offset": "BIGINT",
    "data_length": "BIGINT",
    "raw_size": "BIGINT",
}


@dataclass(frozen=True)
class SessionEnd:
    """How a recording ended: what end.json holds."""

    exit_code: int | None
    ended_at: float
    stdout_sha: str | None = None
    stderr_sha: str | None = None


def step_line(rec: StepRecord) -> bytes:
    """One steps.jsonl line: headers and chunks as nested JSON arrays."""
    row = {f.name: getattr(rec, f.name) for f in fields(rec)}
    return _line(row)


def blob_line(ref: BlobRef) -> bytes:
    """One blobs.jsonl line."""
    return _line(asdict(ref))


def read_start(journal: Path) -> SessionStart | None:
    """The session.json of a journal; ``None`` if absent, torn or of an unknown version."""
    raw = _read_json(journal / SESSION_FILE)
    if raw is None or raw.pop("journal_version", None) != JOURNAL_VERSION:
        return None
    try:
        return SessionStart(**{**raw, "command": tuple(raw.get("command", ()))})
    except TypeError:  # fields this Rewind does not know
        return None


def read_end(journal: Path) -> SessionEnd | None:
    """The end.json of a journal, if the recording finished."""
    raw = _read_json(journal / END_FILE)
    try:
        return None if raw is None else SessionEnd(**raw)
    except TypeError:
        return None


class JournalWriter:
    """Appends to one session's journal; used by one recording process."""

    def __init__(self, journal: Path, start: SessionStart) -> None:
        journal.mkdir(parents=True, exist_ok=True)
        self.dir = journal
        head = {"journal_version": JOURNAL_VERSION, **asdict(start)}
        write_json_atomic(journal / SESSION_FILE, head)
        self._steps: int | None = _open_append(journal / STEPS_FILE)
        self._blobs: int | None = _open_append(journal / BLOBS_FILE)

    def append_step(self, rec: StepRecord) -> None:
        assert self._steps is not None, "journal is closed"
        write_all(self._steps, step_line(rec))

    def append_blob(self, ref: BlobRef) -> None:
        assert self._blobs is not None, "journal is closed"
        write_all(self._blobs, blob_line(ref))

    def write_end(self, end: SessionEnd) -> None:
        """Mark the recording finished; nothing may be appended afterwards."""
        self.close()
        write_json_atomic(self.dir / END_FILE, asdict(end))

    def close(self) -> None:
        for fd in (self._steps, self._blobs):
            if fd is not None:
                os.close(fd)
        self._steps = self._blobs = None


def write_json_atomic(path: Path, value: dict[str, Any]) -> None:
    """Write ``value`` to a temporary file next to ``path``, then rename it over."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(value), encoding="utf-8")
    os.replace(tmp, path)


def _line(row: dict[str, Any]) -> bytes:
    return (json.dumps(row, separators=(",", ":")) + "\n").encode()


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_bytes())
    except (FileNotFoundError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _open_append(path: Path) -> int:
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
