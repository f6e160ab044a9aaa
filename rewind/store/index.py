"""The DuckDB index, opened briefly under a lock, and the fold of journals into it.

Every open of ``index.duckdb`` happens while holding an exclusive ``flock`` on
``index.lock``, lasts one short operation, and is closed at once; recorders never open
it. Each open first applies pending migrations, then *folds* every journal:
upserts its session row, bulk-loads its steps and blob references with ``read_json``,
and deletes the journal once the session is over (finished, or its recorder is dead).
Folding is idempotent, so a live journal is simply folded again by the next reader.

A journal is deleted only after its rows are committed to ``index.duckdb`` by the
process holding the lock. A home that does not exist yet is read from an empty
in-memory index, and nothing is folded into that: journals that appear meanwhile (a
recorder creating the home) would be deleted with their rows in no file at all.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb

from rewind.errors import (
    AmbiguousSession,
    BlobCorrupt,
    BlobMissing,
    SessionNotFound,
    StoreBusy,
    StoreCorrupt,
    StoreError,
)
from rewind.store.blobs import BlobRef, read_blob
from rewind.store.home import Home
from rewind.store.journal import (
    BLOB_COLUMNS,
    BLOBS_FILE,
    STEP_COLUMNS,
    STEPS_FILE,
    SessionEnd,
    read_end,
    read_start,
)
from rewind.store.migrations import migrate
from rewind.store.models import SessionInfo, SessionStart, StepRecord

LOCK_TIMEOUT = 30.0
# A folded journal is renamed to journal/.<sid>.folded before it is deleted.
TRASH_PREFIX = "."
Conn = duckdb.DuckDBPyConnection
# What DuckDB raises for a wrong query (our bug), as opposed to a damaged file.
QUERY_ERRORS = (duckdb.ProgrammingError, duckdb.DataError, duckdb.IntegrityError)

SESSIONS_SQL = """
SELECT s.* EXCLUDE (pid), coalesce(t.steps, 0) AS steps,
       coalesce(t.input_tokens, 0) AS input_tokens, coalesce(t.output_tokens, 0) AS output_tokens
FROM sessions s LEFT JOIN (
    SELECT session_id, count(*) AS steps, sum(input_tokens) AS input_tokens,
           sum(output_tokens) AS output_tokens
    FROM steps GROUP BY session_id
) t ON t.session_id = s.id
"""


class Store:
    """Read access to the sessions under a home; each call is one short index open."""

    def __init__(self, home: Home, *, lock_timeout: float = LOCK_TIMEOUT) -> None:
        self.home = home
        self.lock_timeout = lock_timeout

    def sessions(self) -> list[SessionInfo]:
        """Every session, newest first, with step counts and token totals."""
        with self._open() as conn:
            return _session_infos(conn, "ORDER BY s.started_at DESC, s.id", [])

    def session(self, ref: str) -> SessionInfo:
        """The session ``ref`` names: a full id, a unique id prefix, or a name (newest)."""
        with self._open() as conn:
            return _session_info(conn, resolve(conn, ref))

    def steps(self, session_id: str) -> list[StepRecord]:
        """The steps of one session, ordered by step number."""
        with self._open() as conn:
            return _steps(conn, session_id)

    def blob(self, sha: str) -> bytes:
        """The raw bytes of blob ``sha``, hash verified."""
        with self._open() as conn:
            refs = _blob_refs(conn, [sha])
        if sha not in refs:
            raise BlobMissing(f"blob {sha} is not in the store")
        return read_blob(self.home.packs_dir, refs[sha])

    def load(self, ref: str) -> tuple[SessionInfo, list[StepRecord], dict[str, bytes]]:
        """A session, its steps and every blob they (and its stdout/stderr) refer to."""
        with self._open() as conn:
            info = _session_info(conn, resolve(conn, ref))
            steps = _steps(conn, info.id)
            uses = blob_uses(info, steps)
            refs = _blob_refs(conn, list(uses))
        return info, steps, _read_blobs(self.home.packs_dir, uses, refs)

    def fold(self) -> None:
        """Fold every journal into the index now (any open does this first)."""
        with self._open():
            pass

    @contextlib.contextmanager
    def _open(self) -> Iterator[Conn]:
        with open_index(self.home, self.lock_timeout) as conn:
            yield conn


@contextlib.contextmanager
def open_index(home: Home, lock_timeout: float = LOCK_TIMEOUT) -> Iterator[Conn]:
    """The migrated index, open while the lock is held, with every journal folded first.

    If there is no home, an empty in-memory index and no fold: the home may appear
    right after we looked, with finished journals in it, and folding those into a
    throwaway database would delete them while their sessions are nowhere on disk.
    """
    if not home.root.is_dir():
        with _attached(":memory:") as conn:
            yield conn
        return
    with _locked(home.lock_path, lock_timeout), _duckdb_errors(home):
        with _attached(str(home.index_path)) as conn:
            fold_all(conn, home)
            yield conn


@contextlib.contextmanager
def _attached(target: str) -> Iterator[Conn]:
    """``target`` attached to this process's DuckDB instance, and detached after.

    Starting a DuckDB instance costs ~30 ms of CPU; attaching a file costs ~3 ms and
    detaching releases it for other processes just as closing would.
    """
    alias = f"index_{next(_ALIASES)}"
    with _instance().cursor() as admin:
        admin.execute(f"ATTACH {sql_string(target)} AS {alias}")  # no parameters in ATTACH
        conn = admin.cursor()
        try:
            conn.execute(f"USE {alias}")
            migrate(conn)
            yield conn
        finally:
            conn.close()  # rolls back anything left open
            admin.execute(f"DETACH {alias}")


def sql_string(text: str) -> str:
    """A SQL string literal for ``text`` (where DuckDB takes no parameters)."""
    return "'" + text.replace("'", "''") + "'"


_ALIASES = itertools.count()
_INSTANCE: dict[int, Conn] = {}
_INSTANCE_LOCK = threading.Lock()


def _instance() -> Conn:
    """An in-memory DuckDB connection for this process (a fresh one after a fork)."""
    with _INSTANCE_LOCK:
        pid = os.getpid()
        if pid not in _INSTANCE:
            _INSTANCE.clear()
            _INSTANCE[pid] = duckdb.connect(":memory:")
        return _INSTANCE[pid]


@contextlib.contextmanager
def _locked(path: Path, timeout: float) -> Iterator[None]:
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as e:
        raise StoreError(f"cannot open the lock file {path}: {e.strerror}") from None
    try:
        _acquire(fd, path, timeout)
        yield
    finally:
        os.close(fd)


def _acquire(fd: int, path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise StoreBusy(
                    f"another Rewind process held {path} for over {timeout:g} s",
                    hint="try again; if it persists, look for a stuck rewind process",
                ) from None
            time.sleep(0.005)


@contextlib.contextmanager
def _duckdb_errors(home: Home) -> Iterator[None]:
    try:
        yield
    except duckdb.Error as e:
        # An internal error can invalidate the whole instance. Close it now, while the
        # lock is still held: left to the garbage collector, a file it still had
        # attached would be checkpointed later, under another process's feet.
        with _INSTANCE_LOCK:
            for instance in _INSTANCE.values():
                with contextlib.suppress(duckdb.Error):
                    instance.close()
            _INSTANCE.clear()
        raise _store_error(e, home) from None


def _store_error(e: duckdb.Error, home: Home) -> StoreError:
    """A lock held by another program, a damaged file, or (anything else) a query failure."""
    detail = _first_line(e)
    if "could not set lock" in detail.lower():
        return StoreBusy(f"{home.index_path} is held by another program: {detail}")
    if isinstance(e, QUERY_ERRORS):
        return StoreError(f"a query on the index {home.index_path} failed: {detail}",
                          hint="this is a bug in Rewind; please report it")
    return StoreCorrupt(
        f"the index {home.index_path} is unreadable: {detail}",
        hint=f"move it aside (mv {home.index_path} {home.index_path}.bad) and run again: "
        f"a new index is created and sessions whose journals remain in "
        f"{home.journal_dir} are folded into it; other sessions stay in the old file",
    )


def _first_line(e: Exception) -> str:
    return str(e).splitlines()[0] if str(e) else type(e).__name__


# -- the fold ---------------------------------------------------------------------------


def fold_all(conn: Conn, home: Home) -> None:
    """Fold every journal under ``home`` into the index file ``conn`` uses.

    Call it only on ``index.duckdb`` with the lock held (``open_index`` does): folding
    deletes the journals of finished sessions.
    """
    if not home.journal_dir.is_dir():
        return
    if _database_path(conn) is None:
        raise StoreError("refusing to fold journals into an in-memory index",
                         hint="this is a bug in Rewind; please report it")
    for journal in sorted(home.journal_dir.iterdir()):
        if journal.name.startswith(TRASH_PREFIX):
            shutil.rmtree(journal, ignore_errors=True)  # a fold killed while deleting
        else:
            fold_journal(conn, journal)


def _database_path(conn: Conn) -> str | None:
    row = conn.execute(
        "SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
    ).fetchone()
    return None if row is None or row[0] is None else str(row[0])


def fold_journal(conn: Conn, journal: Path) -> str | None:
    """Fold one journal; delete it if its session is over. Returns the status folded.

    Only with the lock held on the index ``conn`` uses (see ``fold_all``).
    """
    start = read_start(journal)
    if start is None:
        return None
    end = read_end(journal)
    status = session_status(start, end)
    with _journal_errors(journal), _transaction(conn):
        _upsert_session(conn, start, status, end)
        _bulk_load(conn, "steps", journal / STEPS_FILE, STEP_COLUMNS, ("session_id", "step"))
        _bulk_load(conn, "blobs", journal / BLOBS_FILE, BLOB_COLUMNS, ("sha",))
    if status != "recording":
        _discard(journal)
    return status


def _discard(journal: Path) -> None:
    """Delete a folded journal, renaming it out of the way first.

    ``rmtree`` interrupted half-way (Ctrl-C, ``kill -9``) could leave ``session.json``
    without ``end.json``: the next fold would turn a complete session into an
    interrupted one. A renamed journal is never folded again, only deleted.
    """
    trash = journal.with_name(f"{TRASH_PREFIX}{journal.name}.folded")
    try:
        os.rename(journal, trash)
    except OSError:
        return  # gone already, or a leftover trash of the same name: the next fold retries
    shutil.rmtree(trash, ignore_errors=True)


def session_status(start: SessionStart, end: SessionEnd | None) -> str:
    """complete (end.json written), recording (recorder alive) or interrupted."""
    if end is not None:
        return "complete"
    return "recording" if pid_alive(start.pid) else "interrupted"


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (a zombie counts until it is reaped)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def _journal_errors(journal: Path) -> Iterator[None]:
    try:
        yield
    except duckdb.Error as e:
        raise StoreCorrupt(
            f"the journal {journal} cannot be folded: {_first_line(e)}",
            hint=f"move {journal} out of the store; the other sessions are unaffected",
        ) from None


@contextlib.contextmanager
def _transaction(conn: Conn) -> Iterator[None]:
    conn.execute("BEGIN TRANSACTION")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _upsert_session(conn: Conn, start: SessionStart, status: str, end: SessionEnd | None) -> None:
    row = _session_row(start, status, end)
    names = ", ".join(row)
    marks = ", ".join("?" for _ in row)
    conn.execute(f"INSERT OR REPLACE INTO sessions ({names}) VALUES ({marks})", list(row.values()))


def _session_row(start: SessionStart, status: str, end: SessionEnd | None) -> dict[str, Any]:
    row: dict[str, Any] = dict(vars(start), status=status)
    for key in ("command", "upstreams", "routes"):
        row[key] = json.dumps(row[key])
    row.update(vars(end) if end is not None else {})
    return row


def _bulk_load(
    conn: Conn, table: str, path: Path, columns: dict[str, str], key: tuple[str, ...]
) -> None:
    """``INSERT OR REPLACE`` every whole line of a JSON-lines file; torn lines are skipped."""
    if not path.is_file():
        return
    spec = "{" + ", ".join(f"'{name}': '{kind}'" for name, kind in columns.items()) + "}"
    not_null = " AND ".join(f"{k} IS NOT NULL" for k in key)
    conn.execute(
        f"INSERT OR REPLACE INTO {table} BY NAME SELECT DISTINCT ON ({', '.join(key)}) * "
        f"FROM read_json(?, format = 'newline_delimited', columns = {spec}, "
        f"ignore_errors = true) WHERE {not_null}",
        [str(path)],
    )


# -- reading ----------------------------------------------------------------------------


def resolve(conn: Conn, ref: str) -> str:
    """The id of the session ``ref`` names: full id, then name (newest), then id prefix."""
    rows = conn.execute(
        "SELECT id, name, started_at FROM sessions "
        "WHERE id = $ref OR name = $ref OR starts_with(id, $ref) ORDER BY started_at DESC",
        {"ref": ref},
    ).fetchall()
    return _pick(ref, rows)


def _pick(ref: str, rows: list[tuple[Any, ...]]) -> str:
    for column in (0, 1):
        exact = [row[0] for row in rows if row[column] == ref]
        if exact:
            return str(exact[0])
    if ref and len(rows) == 1:
        return str(rows[0][0])
    if not ref or not rows:
        raise SessionNotFound(f"no session matches {ref!r}", hint="`rewind list` shows them")
    listing = ", ".join(f"{r[0]} ({r[1] or 'unnamed'})" for r in rows[:10])
    raise AmbiguousSession(f"{ref!r} matches {len(rows)} sessions: {listing}",
                           hint="give more characters of the id")


def _session_info(conn: Conn, session_id: str) -> SessionInfo:
    return _session_infos(conn, "WHERE s.id = ?", [session_id])[0]


def _session_infos(conn: Conn, tail: str, params: list[Any]) -> list[SessionInfo]:
    rows = _dicts(conn.execute(f"{SESSIONS_SQL} {tail}", params))
    return [_to_session_info(row) for row in rows]


def _to_session_info(row: dict[str, Any]) -> SessionInfo:
    row["command"] = tuple(json.loads(row["command"]))
    row["upstreams"] = json.loads(row["upstreams"])
    row["routes"] = json.loads(row["routes"])
    return SessionInfo(**row)


def _steps(conn: Conn, session_id: str) -> list[StepRecord]:
    names = ", ".join(STEP_COLUMNS)
    cursor = conn.execute(
        f"SELECT {names} FROM steps WHERE session_id = ? ORDER BY step", [session_id]
    )
    return [step_from_row(row) for row in _dicts(cursor)]


def step_from_row(row: dict[str, Any]) -> StepRecord:
    """A ``StepRecord`` from a steps row (JSON columns still as text)."""
    for key in ("request_headers", "response_headers", "chunks"):
        value = json.loads(row[key]) if row[key] is not None else None
        row[key] = None if value is None else tuple(tuple(pair) for pair in value)
    row["response_headers"] = row["response_headers"] or ()
    return StepRecord(**row)


def _dicts(cursor: Conn) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _blob_refs(conn: Conn, shas: list[str]) -> dict[str, BlobRef]:
    names = ", ".join(BLOB_COLUMNS)
    rows = conn.execute(f"SELECT {names} FROM blobs WHERE sha = ANY(?)", [shas]).fetchall()
    return {row[0]: BlobRef(*row) for row in rows}


def blob_uses(info: SessionInfo, steps: list[StepRecord]) -> dict[str, str]:
    """Every blob a session refers to, with the first use of each (for error messages)."""
    uses: dict[str, str] = {}
    for rec in steps:
        uses.setdefault(rec.request_sha, f"step {rec.step} (request body)")
        if rec.response_sha is not None:
            uses.setdefault(rec.response_sha, f"step {rec.step} (response body)")
    for sha, label in ((info.stdout_sha, "stdout"), (info.stderr_sha, "stderr")):
        if sha is not None:
            uses.setdefault(sha, f"the recorded {label}")
    return uses


def _read_blobs(packs: Path, uses: dict[str, str], refs: dict[str, BlobRef]) -> dict[str, bytes]:
    blobs: dict[str, bytes] = {}
    for sha, label in uses.items():
        if sha not in refs:
            raise BlobMissing(f"{label}: blob {sha} is not in the store")
        try:
            blobs[sha] = read_blob(packs, refs[sha])
        except (BlobMissing, BlobCorrupt) as e:
            raise type(e)(f"{label}: {e}") from None
    return blobs
