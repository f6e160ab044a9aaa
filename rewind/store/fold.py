"""The fold: per-session records into the DuckDB index, and the sealing of finished ones.

Run by whoever opens the index, with ``index.lock`` held. For every journal directory
``sessions/<sid>/``: decide the status first (``complete`` if ``end.json`` exists, else
``recording`` while a recorder holds ``live.lock``, else ``interrupted``), read and
validate its lines (bad ones are skipped with a warning naming file and line), replace
the session's rows in one transaction, and, once it is over, seal it into
``sessions/<sid>.rws`` and delete the directory. A sealed record that the index does
not know (a rebuilt or restored index) is loaded too; a session the index knows but that
has no record on disk (a store written by an older Rewind) gets one written from the
index, so that everything the index holds can be rebuilt from the files.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import duckdb

from rewind.store.blobs import BlobRef, iter_objects
from rewind.store.home import Home
from rewind.store.journal import (
    GAP_COLUMNS,
    OBJECT_COLUMNS,
    SEALED_SUFFIX,
    STEP_COLUMNS,
    SessionEnd,
    SessionRecord,
    is_live,
    line,
    read_journal,
)
from rewind.store.models import SessionStart
from rewind.store.sealed import Lookup, read_sealed, seal_record
from rewind.store.sqlargs import ANY_TEXT, joined

Conn = duckdb.DuckDBPyConnection
Warn = Callable[[str], None]
TRASH_PREFIX = "."
_TMP = itertools.count()
ALIKE_LIMIT = 20  # the newest sessions of a job read to find its previous sealed recording


def fold_all(conn: Conn, home: Home, warn: Warn) -> None:
    """Fold every per-session record under ``home`` into the index ``conn`` uses."""
    known = {row[0] for row in conn.execute("SELECT id FROM sessions").fetchall()}
    on_disk: set[str] = set()
    for entry in _entries(home.sessions_dir):
        path, sid = Path(entry.path), entry.name.removesuffix(SEALED_SUFFIX)
        on_disk.add(sid)
        if entry.name.startswith(TRASH_PREFIX):
            _remove(path)
        elif entry.is_dir():  # known from the listing: no stat for each of thousands
            fold_journal(conn, home, path, warn)
        elif entry.name.endswith(SEALED_SUFFIX) and sid not in known:
            fold_sealed(conn, home, path, warn)
    backfill(conn, home, known - on_disk)


def _entries(directory: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(directory) as entries:
            return sorted(entries, key=lambda entry: entry.name)
    except FileNotFoundError:
        return []


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def fold_journal(conn: Conn, home: Home, journal: Path, warn: Warn) -> str | None:
    """Fold one journal; seal it if its session is over. Returns the status folded."""
    live = is_live(journal)
    record = read_journal(journal, live)
    if record is None:
        return None
    record.status = "complete" if record.end is not None else "recording" if live else "interrupted"
    for skipped in record.skipped:
        warn(f"journal {skipped.text()}")
    load_record(conn, home, record)
    if unlocated(conn, record):  # deduplicated against a pack the index never learnt of
        locate_objects(conn, home)
    if record.status != "recording":
        _seal_or_keep(conn, home, journal, record, warn)
    return record.status


def _seal_or_keep(conn: Conn, home: Home, journal: Path, record: SessionRecord, warn: Warn) -> None:
    """Seal a finished journal; if the store cannot be written, keep the journal (its
    rows are in the index already) and say so: the next fold tries again."""
    try:
        seal(conn, home, journal, record)
    except OSError as e:
        warn(f"session {record.start.id} cannot be sealed ({e.strerror}: {e.filename}); "
             f"its journal {journal} is kept")


def fold_sealed(conn: Conn, home: Home, path: Path, warn: Warn) -> None:
    """Load a sealed record the index does not have; an unreadable one is reported."""
    try:
        record = read_sealed(home, path, index_lookup(conn, home))
    except (OSError, ValueError) as e:
        warn(f"the session record {path} is unreadable ({e}); run `rewind doctor`")
        return
    load_record(conn, home, record)
    if unlocated(conn, record):
        locate_objects(conn, home)


def object_refs(conn: Conn, shas: list[str]) -> dict[str, BlobRef]:
    """References for ``shas`` and, transitively, for the bases they are coded against."""
    names = ", ".join(OBJECT_COLUMNS)
    refs: dict[str, BlobRef] = {}
    wanted = set(shas)
    while wanted:
        sql = f"SELECT {names} FROM objects WHERE sha = {ANY_TEXT}"
        rows = conn.execute(sql, [joined(sorted(wanted))]).fetchall()
        found = {row[0]: BlobRef(*row) for row in rows}
        refs.update(found)
        wanted = {r.base for r in found.values() if r.base is not None and r.base not in refs}
    return refs


def index_lookup(conn: Conn, home: Home) -> Lookup:
    """Object locations from the index; the packs are scanned (once) for one it lacks."""
    scanned: list[bool] = []

    def lookup(sha: str) -> BlobRef | None:
        ref = object_refs(conn, [sha]).get(sha)
        if ref is None and not scanned:
            scanned.append(True)
            locate_objects(conn, home)
            ref = object_refs(conn, [sha]).get(sha)
        return ref

    return lookup


def unlocated(conn: Conn, record: SessionRecord) -> bool:
    """Whether some blob of ``record`` has no location in the index."""
    shas = {row["request_sha"] for row in record.steps}
    shas |= {row["response_sha"] for row in record.steps if row.get("response_sha")}
    if not shas:
        return False
    sql = f"SELECT count(*) FROM objects WHERE sha = {ANY_TEXT}"
    found = conn.execute(sql, [joined(sorted(shas))]).fetchone()
    return found is None or found[0] < len(shas)


def locate_objects(conn: Conn, home: Home) -> None:
    """Add the location of every object in every pack that the index lacks."""
    rows = [asdict(ref) for ref in iter_objects(home.root)]
    with transaction(conn):
        bulk_insert(conn, home, "objects", rows, OBJECT_COLUMNS, ("sha",), replace=False)


def seal(conn: Conn, home: Home, journal: Path, record: SessionRecord) -> None:
    """Store the record and its pointer, then delete the journal (renamed away first, so
    a deletion cut short never leaves half a journal to be folded again)."""
    store_record(conn, home, record)
    trash = journal.with_name(f"{TRASH_PREFIX}{journal.name}.sealed")
    try:
        os.rename(journal, trash)
    except OSError:
        return
    shutil.rmtree(trash, ignore_errors=True)


# -- loading rows ---------------------------------------------------------------------------


def load_record(conn: Conn, home: Home, record: SessionRecord) -> None:
    """Replace everything the index holds about one session by what ``record`` says."""
    sid = record.start.id
    with transaction(conn):
        upsert_session(conn, record.start, record.status, record.end)
        conn.execute("DELETE FROM steps WHERE session_id = ?", [sid])
        conn.execute("DELETE FROM gaps WHERE session_id = ?", [sid])
        bulk_insert(conn, home, "steps", record.steps, STEP_COLUMNS, ("session_id", "step"))
        bulk_insert(conn, home, "gaps", record.gaps, GAP_COLUMNS, ("session_id", "step"))
        # A session's own rows win: it wrote (or verified) those copies after any it did
        # not trust, so the index stops pointing at an earlier, damaged copy.
        bulk_insert(conn, home, "objects", record.objects, OBJECT_COLUMNS, ("sha",))


@contextlib.contextmanager
def transaction(conn: Conn) -> Iterator[None]:
    conn.execute("BEGIN TRANSACTION")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def upsert_session(conn: Conn, start: SessionStart, status: str, end: SessionEnd | None) -> None:
    row = session_row(start, status, end)
    names = ", ".join(row)
    marks = ", ".join("?" for _ in row)
    conn.execute(f"INSERT OR REPLACE INTO sessions ({names}) VALUES ({marks})", list(row.values()))


def session_row(start: SessionStart, status: str, end: SessionEnd | None) -> dict[str, Any]:
    row: dict[str, Any] = dict(vars(start), status=status)
    for key in ("command", "upstreams", "routes"):
        row[key] = json.dumps(row[key])
    row.update(vars(end) if end is not None else {})
    return row


def bulk_insert(
    conn: Conn, home: Home, table: str, rows: list[dict[str, Any]], columns: dict[str, str],
    key: tuple[str, ...], replace: bool = True,
) -> None:
    """Insert validated rows in one statement, through a temporary JSON-lines file
    (row-by-row inserts cost milliseconds a row). The last row of a key wins."""
    if not rows:
        return
    with temp_lines(home, rows) as path:
        verb = "INSERT OR REPLACE" if replace else "INSERT OR IGNORE"
        conn.execute(
            f"{verb} INTO {table} BY NAME SELECT * EXCLUDE (_n) FROM ("
            f"SELECT *, row_number() OVER () AS _n FROM {read_lines(path, columns)}) "
            f"QUALIFY row_number() OVER (PARTITION BY {', '.join(key)} ORDER BY _n DESC) = 1",
        )


def read_lines(path: Path, columns: dict[str, str]) -> str:
    """The SQL reading a ``temp_lines`` file as rows of these columns (name: type)."""
    spec = "{" + ", ".join(f"'{name}': '{kind}'" for name, kind in columns.items()) + "}"
    return f"read_json({sql_string(str(path))}, format = 'newline_delimited', columns = {spec})"


def sql_string(text: str) -> str:
    """A SQL string literal for ``text`` (where DuckDB takes no parameters)."""
    return "'" + text.replace("'", "''") + "'"


@contextlib.contextmanager
def temp_lines(home: Home, rows: list[dict[str, Any]]) -> Iterator[Path]:
    """``rows`` as a private JSON-lines file under the home's tmp/, removed after."""
    home.tmp_dir.mkdir(mode=0o700, exist_ok=True)
    path = home.tmp_dir / f"fold-{os.getpid()}-{next(_TMP)}.jsonl"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.writelines(line(row) for row in rows)
        yield path
    finally:
        path.unlink(missing_ok=True)


# -- records written from the index (stores from before sealed records) ---------------------------


def store_record(conn: Conn, home: Home, record: SessionRecord) -> None:
    """Seal ``record`` (its object and pointer) and tell the index where the object is."""
    # A new record is never indexed yet: asking the scanning lookup would read every pack
    # of the home for each session sealed (quadratic in the number of sessions).
    ref = seal_record(
        home, record, index_lookup(conn, home), lambda sha: object_refs(conn, [sha]).get(sha),
        lambda start: alike_ids(conn, start),
    )  # fmt: skip
    if ref is not None:
        row = {k: getattr(ref, k) for k in OBJECT_COLUMNS}
        bulk_insert(conn, home, "objects", [row], OBJECT_COLUMNS, ("sha",))


def alike_ids(conn: Conn, start: SessionStart, limit: int = ALIKE_LIMIT) -> list[str]:
    """The newest sessions that may be recordings of the same job as ``start`` (same
    name; unnamed: same command and directory), other than itself, newest first. In a
    home of thousands of sessions this reads a few rows instead of every pointer."""
    if start.name:
        where, params = "name = ?", [start.name]
    else:
        where = "coalesce(name, '') = '' AND cwd = ? AND CAST(command AS VARCHAR) = ?"
        params = [start.cwd, json.dumps(start.command)]  # as ``session_row`` wrote it
    sql = f"SELECT id FROM sessions WHERE {where} AND id <> ? ORDER BY started_at DESC LIMIT {int(limit)}"
    return [row[0] for row in conn.execute(sql, [*params, start.id]).fetchall()]


def backfill(conn: Conn, home: Home, session_ids: set[str]) -> None:
    """Write a sealed record for each indexed session that has none on disk."""
    for sid in sorted(session_ids):
        record = record_from_index(conn, sid)
        if record is not None:
            store_record(conn, home, record)
            # "recording" with no journal left (an aborted recording a reader saw live)
            # would otherwise stay "recording" for ever, and `rewind rm` refuse it.
            conn.execute("UPDATE sessions SET status = ? WHERE id = ?", [record.status, sid])


def record_from_index(conn: Conn, sid: str) -> SessionRecord | None:
    from rewind.store.index import session_infos, step_rows  # noqa: PLC0415 (no cycle at import)

    infos = session_infos(conn, "WHERE s.id = ?", [sid])
    if not infos:
        return None
    info = infos[0]
    names = [k for k in SessionStart.__dataclass_fields__ if hasattr(info, k)]
    start = SessionStart(**{k: getattr(info, k) for k in names})
    end = None
    if info.ended_at is not None:
        end = SessionEnd(info.exit_code, info.ended_at, info.stdout_sha, info.stderr_sha)
    status = "interrupted" if info.status == "recording" else info.status
    record = SessionRecord(start, step_rows(conn, sid), [], _gap_rows(conn, sid), end)
    record.status = status
    return record


def _gap_rows(conn: Conn, sid: str) -> list[dict[str, Any]]:
    rows = conn.execute("SELECT step, reason FROM gaps WHERE session_id = ? ORDER BY step", [sid]).fetchall()
    return [{"session_id": sid, "step": s, "reason": r} for s, r in rows]
