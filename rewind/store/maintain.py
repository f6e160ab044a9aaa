"""Keeping a store healthy: ``rm`` sessions, ``gc`` unreferenced objects, ``doctor`` checks
every pack and every hash, and ``doctor --repair`` rebuilds the index from the files.

The files are the truth (sealed records under ``sessions/``, journals of live or crashed
recordings, packs under ``objects/``); the index is rebuilt from them. Nothing that is
still readable is dropped by a repair.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rewind.errors import BlobCorrupt, BlobMissing, StoreBusy, StoreCorrupt
from rewind.store.blobs import (
    HEADER,
    LEGACY_HEADER,
    BlobReader,
    BlobRef,
    list_packs,
    scan_pack,
    write_all,
)
from rewind.store.fold import bulk_insert, index_lookup, object_refs, transaction
from rewind.store.home import Home
from rewind.store.ids import new_session_id
from rewind.store.index import (
    Store,
    open_index,
    resolve,
    session_infos,
)
from rewind.store.journal import (
    OBJECT_COLUMNS,
    SEALED_SUFFIX,
    SessionRecord,
    is_live,
    read_journal,
)
from rewind.store.models import SessionInfo
from rewind.store.sealed import Lookup, pointers, read_sealed
from rewind.store.sqlargs import ANY_TEXT, joined

# -- the objects on disk ----------------------------------------------------------------------


@dataclass
class ObjectScan:
    """Every record of every pack, verified: the good copy of each sha, and the bad ones."""

    good: dict[str, BlobRef] = field(default_factory=dict)
    bad: dict[str, str] = field(default_factory=dict)  # sha -> why no copy is readable
    packs: list[dict[str, Any]] = field(default_factory=list)


def scan_objects(root: Path) -> ObjectScan:
    """Read and verify every object of every pack (bases first, any good copy of each)."""
    copies: dict[str, list[BlobRef]] = {}
    result = ObjectScan()
    for pack in list_packs(root):
        scan = scan_pack(root, pack)
        result.packs.append({"pack": pack, "objects": len(scan.refs), "bytes": scan.size,
                             "torn_tail_bytes": scan.torn_bytes})
        for ref in scan.refs:
            copies.setdefault(ref.sha, []).append(ref)
    _verify_all(root, copies, result)
    return result


def _verify_all(root: Path, copies: dict[str, list[BlobRef]], result: ObjectScan) -> None:
    reader = BlobReader(root, lambda sha: _first_good(root, sha, copies, result))
    for sha in copies:
        _first_good(root, sha, copies, result, reader)


def _first_good(
    root: Path, sha: str, copies: dict[str, list[BlobRef]], result: ObjectScan,
    reader: BlobReader | None = None,
) -> BlobRef | None:
    if sha in result.good or sha in result.bad:
        return result.good.get(sha)
    reader = reader or BlobReader(root, lambda s: _first_good(root, s, copies, result))
    result.bad[sha] = "no copy in any pack"
    for ref in copies.get(sha, []):
        try:
            reader.get(ref)
        except (BlobMissing, BlobCorrupt) as e:
            result.bad[sha] = str(e)
            continue
        result.good[sha] = ref
        del result.bad[sha]
        return ref
    return None


# -- doctor -----------------------------------------------------------------------------------


@dataclass
class SessionHealth:
    id: str
    name: str | None
    status: str
    steps: int
    missing: list[dict[str, Any]] = field(default_factory=list)
    corrupt: list[dict[str, Any]] = field(default_factory=list)
    skipped_lines: list[str] = field(default_factory=list)
    unreadable: str | None = None

    @property
    def healthy(self) -> bool:
        return not (self.missing or self.corrupt or self.unreadable)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "status": self.status, "steps": self.steps,
                "healthy": self.healthy, "missing": self.missing, "corrupt": self.corrupt,
                "skipped_lines": self.skipped_lines, "unreadable": self.unreadable}


@dataclass
class DoctorReport:
    index: str  # "ok", "missing", "damaged: ...", "rebuilt"
    sessions: list[SessionHealth]
    packs: list[dict[str, Any]]
    objects: int
    bad_objects: int

    @property
    def healthy(self) -> bool:
        return self.index in ("ok", "rebuilt", "none") and all(s.healthy for s in self.sessions)

    def to_json(self) -> dict[str, Any]:
        return {"healthy": self.healthy, "index": self.index, "objects": self.objects,
                "bad_objects": self.bad_objects, "packs": self.packs,
                "sessions": [s.to_json() for s in self.sessions]}


def doctor(home: Home, repair: bool = False) -> DoctorReport:
    """Check every pack, every hash and every session record; rebuild the index if asked."""
    state = index_state(home)
    if repair:
        state = rebuild_index(home, state)
    objects = scan_objects(home.root)
    sessions = [_health(rec, objects) for rec in session_records(home, objects.good.get)]
    total = len(objects.good) + len(objects.bad)
    return DoctorReport(state, sessions, objects.packs, total, len(objects.bad))


def index_state(home: Home) -> str:
    """How the index is: none (new home), ok, missing, or damaged (with the reason)."""
    if not home.root.is_dir():
        return "none"
    try:
        Store(home, warn=lambda _m: None).fold()
    except StoreCorrupt as e:
        return "missing" if not home.index_path.exists() else f"damaged: {e}"
    return "ok" if home.index_path.exists() else "none"


Loaded = tuple[str, SessionRecord | None, str | None]  # id, record, why unreadable


def session_records(home: Home, lookup: Lookup) -> Iterator[Loaded]:
    """Every session's record from the files: sealed ones (their record objects found
    with ``lookup``) and journals."""
    entries = sorted(home.sessions_dir.glob("*")) if home.sessions_dir.is_dir() else []
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            record = read_journal(entry, is_live(entry))
            if record is not None:
                yield entry.name, record, None
        elif entry.suffix == SEALED_SUFFIX:
            yield _sealed(home, entry, lookup)


def _sealed(home: Home, path: Path, lookup: Lookup) -> Loaded:
    try:
        return path.stem, read_sealed(home, path, lookup), None
    except (OSError, ValueError) as e:
        return path.stem, None, str(e)


def _health(loaded: Loaded, objects: ObjectScan) -> SessionHealth:
    sid, record, why = loaded
    if record is None:
        return SessionHealth(sid, None, "unknown", 0, unreadable=why)
    health = SessionHealth(sid, record.start.name, record.status, len(record.steps),
                           skipped_lines=[s.text() for s in record.skipped])
    for sha, label in _uses(record):
        _check_use(health, sha, label, objects)
    return health


def _uses(record: SessionRecord) -> Iterator[tuple[str, str]]:
    for row in record.steps:
        yield row["request_sha"], f"step {row['step']} request body"
        if row.get("response_sha"):
            yield row["response_sha"], f"step {row['step']} response body"
    if record.end is not None:
        for sha, label in ((record.end.stdout_sha, "stdout"), (record.end.stderr_sha, "stderr")):
            if sha:
                yield sha, f"recorded {label}"


def _check_use(health: SessionHealth, sha: str, label: str, objects: ObjectScan) -> None:
    if sha in objects.good:
        return
    entry = {"what": label, "sha": sha, "why": objects.bad.get(sha, "not in any pack")}
    (health.corrupt if sha in objects.bad else health.missing).append(entry)


# -- repair -----------------------------------------------------------------------------------


def rebuild_index(home: Home, state: str) -> str:
    """A new index from the files when it is missing or damaged; object locations
    re-pointed at verified copies in any case."""
    if not home.root.is_dir():
        return state
    if state.startswith("damaged") or state == "missing":
        _move_aside(home.index_path)
    objects = scan_objects(home.root)
    with open_index(home, warn=lambda _m: None, rebuild=True) as conn, transaction(conn):
        conn.execute("DELETE FROM objects")
        rows = [_object_row(ref) for ref in objects.good.values()]
        bulk_insert(conn, home, "objects", rows, OBJECT_COLUMNS, ("sha",))
    return "rebuilt" if state != "ok" else "ok"


def _object_row(ref: BlobRef) -> dict[str, Any]:
    return {"sha": ref.sha, "pack": ref.pack, "data_offset": ref.data_offset,
            "data_length": ref.data_length, "raw_size": ref.raw_size, "base": ref.base}


def _move_aside(index: Path) -> None:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for path in (index, index.with_name(index.name + ".wal")):
        if path.exists():
            os.replace(path, path.with_name(f"{path.name}.damaged-{stamp}"))


# -- rm ------------------------------------------------------------------------------------------


def remove_sessions(home: Home, refs: list[str]) -> list[SessionInfo]:
    """Delete sessions: their index rows first, then their records (objects wait for gc)."""
    with open_index(home) as conn:
        infos = [session_infos(conn, "WHERE s.id = ?", [resolve(conn, ref)])[0] for ref in refs]
        _refuse_live(infos)
        ids = sorted({i.id for i in infos})
        with transaction(conn):
            for table, column in (("steps", "session_id"), ("gaps", "session_id"), ("sessions", "id")):
                conn.execute(f"DELETE FROM {table} WHERE {column} = {ANY_TEXT}", [joined(ids)])
        for sid in ids:  # under the lock: a fold in between would load the record again
            home.sealed_record(sid).unlink(missing_ok=True)
    return infos


def _refuse_live(infos: list[SessionInfo]) -> None:
    live = [i.id for i in infos if i.status == "recording"]
    if live:
        raise StoreBusy(f"session {', '.join(live)} is being recorded right now",
                          hint="stop that recording first, then remove it")


# -- gc ------------------------------------------------------------------------------------------


@dataclass
class GcReport:
    bytes_freed: int = 0
    packs_removed: int = 0
    packs_rewritten: int = 0
    objects_removed: int = 0

    def to_json(self) -> dict[str, int]:
        return dict(vars(self))


def collect_garbage(home: Home) -> GcReport:
    """Remove every object no session refers to; rewrite packs that hold some."""
    report = GcReport()
    if not home.root.is_dir():
        return report
    with _exclusive_gc(home), open_index(home) as conn:
        _refuse_unreadable(home, index_lookup(conn, home))
        live = _live_objects(conn, home)
        for pack in list_packs(home.root):
            _collect_pack(conn, home, pack, live, report)
    return report


def _refuse_unreadable(home: Home, lookup: Lookup) -> None:
    bad = [sid for sid, record, _ in session_records(home, lookup) if record is None]
    if bad:
        raise StoreCorrupt(f"session record(s) {', '.join(bad)} cannot be read, so what they "
                           "refer to is unknown; gc removes nothing",
                           hint="run `rewind doctor`, then remove or restore those sessions")


def _live_objects(conn: Any, home: Home) -> dict[str, BlobRef]:
    """Every object a session refers to — its bodies, its output, its record — and,
    transitively, the bases they are coded against."""
    rows = conn.execute(
        "SELECT request_sha FROM steps UNION SELECT response_sha FROM steps "
        "UNION SELECT stdout_sha FROM sessions UNION SELECT stderr_sha FROM sessions"
    ).fetchall()
    records = [pointer.record for _, pointer, _ in pointers(home) if pointer is not None]
    return object_refs(conn, [r[0] for r in rows if r[0]] + records)


def _collect_pack(conn: Any, home: Home, pack: str, live: dict[str, BlobRef], report: GcReport) -> None:
    scan = scan_pack(home.root, pack)
    keep = [ref for ref in scan.refs if live.get(ref.sha) == ref]
    if len(keep) == len(scan.refs) and not scan.torn_bytes:
        return
    report.objects_removed += len(scan.refs) - len(keep)
    _forget(conn, pack, {r.sha for r in scan.refs} - {r.sha for r in keep})
    path = home.root / pack
    if not keep:
        path.unlink()
        report.packs_removed += 1
        report.bytes_freed += scan.size
        return
    new_size = _rewrite(conn, home, pack, keep)
    report.packs_rewritten += 1
    report.bytes_freed += scan.size - new_size


def _forget(conn: Any, pack: str, removed: set[str]) -> None:
    """Drop the index rows of removed objects, so a later copy of one is not shadowed."""
    if removed:
        sql = f"DELETE FROM objects WHERE pack = ? AND sha = {ANY_TEXT}"
        conn.execute(sql, [pack, joined(sorted(removed))])


def _rewrite(conn: Any, home: Home, pack: str, keep: list[BlobRef]) -> int:
    """Copy the kept records to a new pack, point the index at it, delete the old one."""
    new_pack = f"{pack.rpartition('/')[0]}/gc-{new_session_id()}.pack"  # same directory, same format
    moved = _copy_records(home.root, pack, new_pack, keep)
    with transaction(conn):
        for ref in moved:
            conn.execute("UPDATE objects SET pack = ?, data_offset = ? WHERE sha = ?",
                         [ref.pack, ref.data_offset, ref.sha])
    (home.root / pack).unlink()
    return (home.root / new_pack).stat().st_size


def _copy_records(root: Path, pack: str, new_pack: str, keep: list[BlobRef]) -> list[BlobRef]:
    header = LEGACY_HEADER.size if pack.startswith("packs/") else HEADER.size
    moved, offset = [], 0
    fd = os.open(root / new_pack, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with (root / pack).open("rb") as src:
            for ref in keep:
                src.seek(ref.data_offset - header)
                write_all(fd, src.read(header + ref.data_length))
                start = offset + header
                moved.append(BlobRef(ref.sha, new_pack, start, ref.data_length, ref.raw_size, ref.base))
                offset += header + ref.data_length
        os.fsync(fd)
    finally:
        os.close(fd)
    return moved


@contextlib.contextmanager
def _exclusive_gc(home: Home) -> Iterator[None]:
    fd = os.open(home.gc_lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StoreBusy("a recording is running in this home; gc runs only when none is",
                            hint="run `rewind gc` again when the recordings have finished") from None
        yield
    finally:
        os.close(fd)
