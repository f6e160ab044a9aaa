"""Per-session records: how a recording reaches disk without ever opening DuckDB.

While a session is recorded, ``sessions/<sid>/`` holds (written by its recorder only):

    session.json   the ``SessionStart`` (and ``journal_version``), written atomically
    live.lock      flock'ed by the recorder for as long as it records
    steps.jsonl    one JSON object per step, the columns of the ``steps`` table
    gaps.jsonl     one JSON object per exchange that could not be stored (step, reason)
    end.json       exit code, end time, stdout/stderr shas, written atomically last

The objects the session wrote are its pack's (``objects/<sid>.pack``) complete records:
a pack describes itself, so no list of them is kept. Each line is one ``write()`` on an
``O_APPEND`` descriptor, so a ``kill -9`` leaves at most a torn last line. Once the
session is over (``end.json``, or nobody holds ``live.lock``) the next fold *seals* it
(``rewind.store.sealed``): its validated records become one object in the shared store
and ``sessions/<sid>.rws`` points to it. Sealed records are what the index is rebuilt
from (``rewind doctor --repair``).

Reading validates every line: a torn, garbage, incomplete or wrongly typed line is
skipped and reported (file and line number), never loaded.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from rewind.core.exchange import Headers
from rewind.store.blobs import scan_pack, write_all
from rewind.store.home import session_pack
from rewind.store.models import Gap, SessionStart, StepRecord

JOURNAL_VERSION = 2
SESSION_FILE = "session.json"
LIVE_LOCK = "live.lock"
STEPS_FILE = "steps.jsonl"
GAPS_FILE = "gaps.jsonl"
END_FILE = "end.json"
SEALED_SUFFIX = ".rws"

# Column name -> DuckDB type of a step line, in StepRecord order.
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
    "meaning": "VARCHAR",
    "finish_reason": "VARCHAR",
    "error_type": "VARCHAR",
    "response_model": "VARCHAR",
    "tag": "VARCHAR",
}
OBJECT_COLUMNS: dict[str, str] = {
    "sha": "VARCHAR",
    "pack": "VARCHAR",
    "data_offset": "BIGINT",
    "data_length": "BIGINT",
    "raw_size": "BIGINT",
    "base": "VARCHAR",
}
GAP_COLUMNS: dict[str, str] = {"session_id": "VARCHAR", "step": "INTEGER", "reason": "VARCHAR"}
_SHA = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class SessionEnd:
    """How a recording ended: what end.json holds."""

    exit_code: int | None
    ended_at: float
    stdout_sha: str | None = None
    stderr_sha: str | None = None


@dataclass(frozen=True)
class Skipped:
    """A line that could not be read, and why."""

    file: str
    line: int
    reason: str

    def text(self) -> str:
        return f"{self.file}, line {self.line}: {self.reason}; skipped"


@dataclass
class SessionRecord:
    """Everything one session's files say, validated."""

    start: SessionStart
    steps: list[dict[str, Any]] = field(default_factory=list)  # step rows, JSON-ready
    objects: list[dict[str, Any]] = field(default_factory=list)
    gaps: list[dict[str, Any]] = field(default_factory=list)
    end: SessionEnd | None = None
    skipped: list[Skipped] = field(default_factory=list)
    status: str = "recording"


# -- lossless text ------------------------------------------------------------------------


def encode_text(value: str) -> str | dict[str, str]:
    """A header name or value for JSON: itself if it is UTF-8, else its bytes in base64.

    Headers arrive as text with undecodable bytes kept as surrogate escapes; those bytes
    go back out unchanged on replay.
    """
    if value.isascii():  # most headers: nothing to check
        return value
    raw = value.encode("utf-8", "surrogateescape")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return {"b64": base64.b64encode(raw).decode("ascii")}


def decode_text(value: Any) -> str:
    """The inverse of ``encode_text``; ``ValueError`` for anything else."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("b64"), str):
        return base64.b64decode(value["b64"], validate=True).decode("utf-8", "surrogateescape")
    raise ValueError("not a header text")


def encode_headers(headers: Headers) -> list[list[Any]]:
    return [[encode_text(k), encode_text(v)] for k, v in headers]


def decode_headers(value: Any) -> Headers:
    if not isinstance(value, list):
        raise ValueError("headers are not a list")
    return tuple((decode_text(pair[0]), decode_text(pair[1])) for pair in value if _is_pair(pair))


def _is_pair(pair: Any) -> bool:
    if not isinstance(pair, list) or len(pair) != 2:
        raise ValueError("a header is not a [name, value] pair")
    return True


def plain_text(value: str | None) -> str | None:
    """Text DuckDB can hold: undecodable bytes (surrogate escapes) shown as ``\\xNN``."""
    if value is None:
        return None
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


# -- lines ---------------------------------------------------------------------------------


_STEP_FIELDS = tuple(f.name for f in fields(StepRecord))


def step_row(rec: StepRecord) -> dict[str, Any]:
    """A step as a JSON-ready row: headers lossless, chunks as [t_ms, length] pairs."""
    row = {name: getattr(rec, name) for name in _STEP_FIELDS}
    row["request_headers"] = encode_headers(rec.request_headers)
    row["response_headers"] = encode_headers(rec.response_headers)
    row["chunks"] = None if rec.chunks is None else [list(c) for c in rec.chunks]
    for key in ("url", "reason", "error"):
        row[key] = plain_text(row[key])
    return row


def line(row: dict[str, Any]) -> bytes:
    return (json.dumps(row, separators=(",", ":")) + "\n").encode()


# -- validation ------------------------------------------------------------------------------

_NUMBER = (int, float)
_REQUIRED_STEP: dict[str, tuple[type, ...]] = {
    "session_id": (str,), "step": (int,), "kind": (str,), "method": (str,), "url": (str,),
    "started_at": _NUMBER, "fingerprint": (str,), "request_headers": (list,),
    "request_sha": (str,), "streamed": (bool,),
}
_OPTIONAL_STEP: dict[str, tuple[type, ...]] = {
    "provider": (str,), "model": (str,), "status": (int,), "reason": (str,), "error": (str,),
    "response_headers": (list,), "response_sha": (str,), "latency_ms": _NUMBER,
    "ttft_ms": _NUMBER, "chunks": (list,), "input_tokens": (int,), "output_tokens": (int,),
    "cache_read_tokens": (int,), "cache_write_tokens": (int,), "meaning": (str,),
    "finish_reason": (str,), "error_type": (str,), "response_model": (str,), "tag": (str,),
}


def check_step(row: Any, session_id: str) -> dict[str, Any]:
    """A valid step row (unknown keys dropped), or ``ValueError`` saying what is wrong."""
    if not isinstance(row, dict):
        raise ValueError("not a JSON object")
    out = {k: _typed(row, k, kinds, required=True) for k, kinds in _REQUIRED_STEP.items()}
    out.update({k: _typed(row, k, kinds, required=False) for k, kinds in _OPTIONAL_STEP.items()})
    if out["session_id"] != session_id:
        raise ValueError(f"belongs to session {out['session_id']!r}")
    _check_step_values(out)
    return out


def _typed(row: dict[str, Any], key: str, kinds: tuple[type, ...], required: bool) -> Any:
    value = row.get(key)
    if value is None:
        if required:
            raise ValueError(f"field {key!r} is missing")
        return None
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        raise ValueError(f"field {key!r} has the wrong type")
    return value


def _check_step_values(row: dict[str, Any]) -> None:
    if row["step"] < 1:
        raise ValueError("step numbers start at 1")
    for key in ("request_sha", "response_sha"):
        if row[key] is not None and not _SHA.fullmatch(row[key]):
            raise ValueError(f"field {key!r} is not a sha256")
    decode_headers(row["request_headers"])
    decode_headers(row["response_headers"] or [])
    for pair in row["chunks"] or []:
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, _NUMBER) for x in pair)):
            raise ValueError("field 'chunks' is not a list of [t_ms, length]")


def check_gap(row: Any, session_id: str) -> dict[str, Any]:
    if not isinstance(row, dict) or not isinstance(row.get("step"), int) or isinstance(row.get("step"), bool):
        raise ValueError("not a gap record")
    return {"session_id": session_id, "step": row["step"], "reason": str(row.get("reason") or "")}


Rows = list[dict[str, Any]]


def read_jsonl(path: Path, check: Callable[[Any], dict[str, Any]], live: bool) -> tuple[Rows, list[Skipped]]:
    """The valid rows of a JSON-lines file and the lines skipped. A live journal's
    unterminated last line is being written right now: not an error."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return [], []
    lines = data.split(b"\n")
    if live and lines and lines[-1]:
        lines = lines[:-1]
    rows: list[dict[str, Any]] = []
    skipped: list[Skipped] = []
    for number, raw in enumerate(lines, 1):
        _parse_line(raw, number, str(path), check, rows, skipped)
    return rows, skipped


def _parse_line(
    raw: bytes, number: int, where: str, check: Callable[[Any], dict[str, Any]],
    rows: list[dict[str, Any]], skipped: list[Skipped],
) -> None:
    if not raw.strip():
        return
    try:
        rows.append(check(json.loads(raw)))
    except (ValueError, TypeError, KeyError, RecursionError) as e:
        skipped.append(Skipped(where, number, reason_of(e)))


def reason_of(e: Exception) -> str:
    if isinstance(e, (json.JSONDecodeError, UnicodeDecodeError)):  # bytes json cannot decode
        return "not JSON (torn or garbage)"
    return str(e) or type(e).__name__


def parse_start(raw: Any) -> SessionStart | None:
    """A ``SessionStart`` from its JSON; ``None`` if torn, foreign or of another version."""
    if not isinstance(raw, dict) or raw.get("journal_version") != JOURNAL_VERSION:
        return None
    values = {f.name: raw[f.name] for f in fields(SessionStart) if f.name in raw}
    try:
        start = SessionStart(**{**values, "command": tuple(values.get("command", ()))})
    except TypeError:
        return None
    return start if _start_ok(start) else None


def _start_ok(start: SessionStart) -> bool:
    return (isinstance(start.id, str) and bool(re.fullmatch(r"[0-9a-f]{6,64}", start.id))
            and isinstance(start.started_at, (int, float)) and isinstance(start.mode, str)
            and all(isinstance(a, str) for a in start.command) and isinstance(start.cwd, str)
            and (start.fork_step is None or type(start.fork_step) is int)
            and (start.fault is None or isinstance(start.fault, str)))


def parse_end(raw: Any) -> SessionEnd | None:
    if not isinstance(raw, dict):
        return None
    ended_at, code = raw.get("ended_at"), raw.get("exit_code")
    if not isinstance(ended_at, (int, float)) or not (code is None or isinstance(code, int)):
        return None
    out, err = raw.get("stdout_sha"), raw.get("stderr_sha")
    return SessionEnd(code, float(ended_at), _sha_or_none(out), _sha_or_none(err))


def _sha_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and _SHA.fullmatch(value) else None


# -- a live journal ----------------------------------------------------------------------------


def read_journal(journal: Path, live: bool) -> SessionRecord | None:
    """A journal directory's validated contents; ``None`` while ``session.json`` is absent."""
    start = parse_start(_read_json(journal / SESSION_FILE))
    if start is None:
        return None
    record = SessionRecord(start, end=parse_end(_read_json(journal / END_FILE)))
    live = live and record.end is None
    steps, bad = read_jsonl(journal / STEPS_FILE, lambda r: check_step(r, start.id), live)
    record.steps = last_line_of_each(steps)
    record.objects = written_objects(journal.parent.parent, start.id)
    record.gaps, bad2 = read_jsonl(journal / GAPS_FILE, lambda r: check_gap(r, start.id), live)
    record.skipped = [*bad, *bad2]
    return record


def last_line_of_each(rows: Rows) -> Rows:
    """One row per step, in the order steps first appeared: the last line written for a
    step, which completes an earlier one (``SessionWriter.amend_step``)."""
    by_step: dict[int, dict[str, Any]] = {}
    for row in rows:
        by_step[row["step"]] = row
    return list(by_step.values())


def written_objects(home_root: Path, session_id: str) -> list[dict[str, Any]]:
    """The objects a session wrote: the complete records of its own pack."""
    try:
        refs = scan_pack(home_root, session_pack(session_id)).refs
    except (FileNotFoundError, NotADirectoryError):
        return []  # it wrote none (or could not: its steps are gaps)
    return [{k: getattr(ref, k) for k in OBJECT_COLUMNS} for ref in refs]


def is_live(journal: Path) -> bool:
    """Whether a recorder holds this journal's lock (works across PID namespaces)."""
    try:
        fd = os.open(journal / LIVE_LOCK, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


class JournalWriter:
    """Appends to one session's journal; used by one recording process, which holds its
    ``live.lock`` until ``close``."""

    def __init__(self, journal: Path, start: SessionStart) -> None:
        journal.parent.mkdir(mode=0o700, exist_ok=True)
        journal.mkdir(mode=0o700)
        self.dir = journal
        self._lock: int | None = _hold_lock(journal / LIVE_LOCK)
        write_json_atomic(journal / SESSION_FILE, {"journal_version": JOURNAL_VERSION, **asdict(start)})
        self._fds = {name: _open_append(journal / name) for name in (STEPS_FILE, GAPS_FILE)}

    def append_step(self, rec: StepRecord) -> None:
        self._write(STEPS_FILE, line(step_row(rec)))

    def append_gap(self, gap: Gap) -> None:
        self._write(GAPS_FILE, line({"step": gap.step, "reason": plain_text(gap.reason)}))

    def write_end(self, end: SessionEnd) -> None:
        """Mark the recording finished; nothing may be appended afterwards."""
        self._close_files()
        write_json_atomic(self.dir / END_FILE, asdict(end))

    def close(self) -> None:
        """Close the files and release the lock: a reader then sees the session over."""
        self._close_files()
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def _write(self, name: str, data: bytes) -> None:
        fd = self._fds.get(name)
        assert fd is not None, "journal is closed"
        write_all(fd, data)

    def _close_files(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds = {}


def _hold_lock(path: Path) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def write_json_atomic(path: Path, value: dict[str, Any], sync: bool = False) -> None:
    """Write ``value`` to a temporary file next to ``path``, then rename it over; with
    ``sync``, durably (the file fsynced before the rename, the directory after)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        write_all(fd, json.dumps(value).encode())
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    if sync:
        _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None


def _open_append(path: Path) -> int:
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)




def chain_key(part: str, method: str, url: str) -> str:
    """Bodies of one endpoint form a delta chain: ``request POST host/path`` (no query)."""
    parts = urlsplit(url)
    return f"{part} {method} {parts.netloc.lower()}{parts.path}"
