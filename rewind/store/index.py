"""The DuckDB index, opened briefly under a lock, and what it answers.

Every open of ``index.duckdb`` happens while holding an exclusive ``flock`` on
``index.lock``, lasts one short operation, and is closed at once; recorders never open
it. Each open first applies pending migrations, then folds the per-session records
(``rewind.store.fold``). The index is a cache of the files: when it is missing (while
sealed sessions exist) or damaged, every command says so and names
``rewind doctor --repair``, which rebuilds it from the files.

A home that does not exist yet is read from an empty in-memory index, and nothing is
folded into that.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import os
import sys
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
from rewind.store.blobs import BlobReader, BlobRef
from rewind.store.fold import Warn, alike_ids, fold_all, object_refs, sql_string
from rewind.store.home import Home
from rewind.store.journal import OBJECT_COLUMNS, SEALED_SUFFIX, STEP_COLUMNS, decode_headers
from rewind.store.migrations import migrate
from rewind.store.models import Gap, SessionInfo, SessionStart, StepRecord
from rewind.store.stats import Aggregates, By, aggregate, session_aggregates

LOCK_TIMEOUT = 30.0
REPAIR = "rewind doctor --repair"
Conn = duckdb.DuckDBPyConnection
# What DuckDB raises for a wrong query (our bug), as opposed to a damaged file.
QUERY_ERRORS = (duckdb.ProgrammingError, duckdb.DataError, duckdb.IntegrityError)

SESSIONS_SQL = """
SELECT s.* EXCLUDE (pid), coalesce(t.steps, 0) AS steps,
       coalesce(t.input_tokens, 0) AS input_tokens, coalesce(t.output_tokens, 0) AS output_tokens,
       coalesce(g.lost, 0) AS lost
FROM sessions s LEFT JOIN (
    SELECT session_id, count(*) AS steps, sum(input_tokens) AS input_tokens,
           sum(output_tokens) AS output_tokens
    FROM steps GROUP BY session_id
) t ON t.session_id = s.id
LEFT JOIN (SELECT session_id, count(*) AS lost FROM gaps GROUP BY session_id) g ON g.session_id = s.id
"""


def warn_stderr(message: str) -> None:
    print(f"rewind: warning: {message}", file=sys.stderr, flush=True)


class Store:
    """Read access to the sessions under a home; each call is one short index open."""

    def __init__(self, home: Home, *, lock_timeout: float = LOCK_TIMEOUT, warn: Warn = warn_stderr) -> None:
        self.home = home
        self.lock_timeout = lock_timeout
        self.warn = warn

    def sessions(
        self, *, limit: int | None = None, name: str | None = None, since: float | None = None
    ) -> list[SessionInfo]:
        """Sessions newest first, optionally only ``name``'s, started at or after ``since``."""
        where, params = session_filters(name, since)
        tail = f"{where} {session_order(limit)}"
        with self._open() as conn:
            return session_infos(conn, tail, params)

    def session(self, ref: str) -> SessionInfo:
        """The session ``ref`` names: a full id, a unique id prefix, or a name (newest)."""
        with self._open() as conn:
            return session_infos(conn, "WHERE s.id = ?", [resolve(conn, ref)])[0]

    def steps(self, session_id: str) -> list[StepRecord]:
        """The steps of one session, ordered by step number."""
        with self._open() as conn:
            return [step_from_row(row) for row in step_rows(conn, session_id)]

    def gaps(self, session_id: str) -> list[Gap]:
        """The exchanges of one session that could not be stored."""
        with self._open() as conn:
            return session_gaps(conn, session_id)

    def stats(self, by: By, since: float | None = None) -> Aggregates:
        """Calls, tokens, timings and failures of the steps started since ``since``, by ``by``."""
        with self._open() as conn:
            return aggregate(conn, by, since)

    def sessions_with_stats(
        self, *, limit: int | None = None, name: str | None = None, since: float | None = None
    ) -> tuple[list[SessionInfo], Aggregates]:
        """``sessions(...)``, and the calls, tokens and failures of each, in one open."""
        where, params = session_filters(name, since)
        tail = f"{where} {session_order(limit)}"
        with self._open() as conn:
            infos = session_infos(conn, tail, params)
            return infos, session_aggregates(conn, f"SELECT s.id FROM sessions s {tail}", params)

    def blob(self, sha: str) -> bytes:
        """The raw bytes of blob ``sha``, hash verified."""
        with self._open() as conn:
            refs = object_refs(conn, [sha])
        if sha not in refs:
            raise BlobMissing(f"blob {sha} is not in the store")
        return BlobReader(self.home.root, refs.get).get(refs[sha])

    def load(self, ref: str) -> tuple[SessionInfo, list[StepRecord], dict[str, bytes]]:
        """A session, its steps and every blob they (and its stdout/stderr) refer to."""
        return self.load_many([ref])[0]

    def load_many(self, refs: list[str]) -> list[tuple[SessionInfo, list[StepRecord], dict[str, bytes]]]:
        """``load`` of each session ``refs`` names, the index opened once."""
        found = []
        with self._open() as conn:
            for ref in refs:
                info = session_infos(conn, "WHERE s.id = ?", [resolve(conn, ref)])[0]
                steps = [step_from_row(row) for row in step_rows(conn, info.id)]
                uses = blob_uses(info, steps)
                found.append((info, steps, uses, object_refs(conn, list(uses))))
        return [(info, steps, read_blobs(self.home.root, uses, refs_))
                for info, steps, uses, refs_ in found]  # fmt: skip

    def resolve(self, refs: list[str]) -> list[str]:
        """The ids of the sessions ``refs`` name (see ``session``), the index opened once."""
        with self._open() as conn:
            return [resolve(conn, ref) for ref in refs]

    def rows(self, session_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        """The index rows of these sessions as stored (JSON columns as text), by table:
        ``sessions``, ``steps`` and ``gaps`` (what a team store mirrors)."""
        with self._open() as conn:
            return {table: _dicts(conn.execute(f"SELECT * FROM {table} WHERE list_contains($ids, {key})",
                                               {"ids": session_ids}))
                    for table, key in (("sessions", "id"), ("steps", "session_id"), ("gaps", "session_id"))}

    def for_recording(self, start: SessionStart) -> tuple[dict[str, tuple[Any, ...]], list[str]]:
        """What a new recording of ``start`` learns from the index, in one open: every
        object's row (``BlobRef``'s fields) by sha, so that no pack is read; and the
        sessions that may be earlier recordings of the same job, newest first."""
        with self._open() as conn:
            rows = conn.execute(f"SELECT {', '.join(OBJECT_COLUMNS)} FROM objects").fetchall()
            return {row[0]: row for row in rows}, alike_ids(conn, start)

    def fold(self) -> None:
        """Fold every per-session record into the index now (any open does this first)."""
        with self._open():
            pass

    @contextlib.contextmanager
    def _open(self) -> Iterator[Conn]:
        with open_index(self.home, self.lock_timeout, self.warn) as conn:
            yield conn


def session_order(limit: int | None) -> str:
    """Newest first, at most ``limit``."""
    return "ORDER BY s.started_at DESC, s.id" + ("" if limit is None else f" LIMIT {int(limit)}")


def session_filters(name: str | None, since: float | None) -> tuple[str, list[Any]]:
    """The WHERE clause (on ``sessions s``) choosing ``name``'s sessions started since ``since``."""
    clauses: list[str] = []
    params: list[Any] = []
    if name is not None:
        clauses.append("s.name = ?")
        params.append(name)
    if since is not None:
        clauses.append("s.started_at >= ?")
        params.append(since)
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), params


@contextlib.contextmanager
def open_index(
    home: Home, lock_timeout: float = LOCK_TIMEOUT, warn: Warn = warn_stderr, *, rebuild: bool = False
) -> Iterator[Conn]:
    """The migrated index, open while the lock is held, with every record folded first.

    A missing index is created only for a home with no sealed session (a new home) or
    when ``rebuild`` is asked for (``rewind doctor --repair``).
    """
    if not home.root.is_dir():
        with _attached(":memory:") as conn:
            yield conn
        return
    with _locked(home.lock_path, lock_timeout), _duckdb_errors(home):
        if not rebuild:
            _check_index_present(home)
        with _attached(str(home.index_path)) as conn:
            private_files(home.index_path)
            fold_all(conn, home, warn)
            yield conn


def _check_index_present(home: Home) -> None:
    if home.index_path.exists() or not any(home.sessions_dir.glob(f"*{SEALED_SUFFIX}")):
        return
    raise StoreCorrupt(
        f"the index {home.index_path} is missing, but {home.sessions_dir} holds recorded sessions",
        hint=f"rebuild it from the files: {REPAIR}",
    )


def private_files(index_path: Path) -> None:
    """The index and its write-ahead log readable by their owner only."""
    for path in (index_path, index_path.with_name(index_path.name + ".wal")):
        with contextlib.suppress(OSError):
            os.chmod(path, 0o600)


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
        close_instance()
        raise _store_error(e, home) from None


def close_instance() -> None:
    with _INSTANCE_LOCK:
        for instance in _INSTANCE.values():
            with contextlib.suppress(duckdb.Error):
                instance.close()
        _INSTANCE.clear()


def _store_error(e: duckdb.Error, home: Home) -> StoreError:
    """A lock held by another program, a damaged file, or (anything else) a query failure."""
    detail = _first_line(e)
    if "could not set lock" in detail.lower():
        return StoreBusy(f"{home.index_path} is held by another program: {detail}")
    if isinstance(e, QUERY_ERRORS):
        return StoreError(f"a query on the index {home.index_path} failed: {detail}",
                          hint="this is a bug in Rewind; please report it")
    return StoreCorrupt(f"the index {home.index_path} is damaged: {detail}",
                        hint=f"rebuild it from the files: {REPAIR}")


def _first_line(e: Exception) -> str:
    return str(e).splitlines()[0] if str(e) else type(e).__name__


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


def session_infos(conn: Conn, tail: str, params: list[Any]) -> list[SessionInfo]:
    rows = _dicts(conn.execute(f"{SESSIONS_SQL} {tail}", params))
    return [_to_session_info(row) for row in rows]


def _to_session_info(row: dict[str, Any]) -> SessionInfo:
    row["command"] = tuple(json.loads(row["command"]))
    row["upstreams"] = json.loads(row["upstreams"])
    row["routes"] = json.loads(row["routes"])
    return SessionInfo(**row)


def step_rows(conn: Conn, session_id: str) -> list[dict[str, Any]]:
    """A session's step rows, JSON columns parsed, as the journal holds them."""
    names = ", ".join(STEP_COLUMNS)
    cursor = conn.execute(f"SELECT {names} FROM steps WHERE session_id = ? ORDER BY step", [session_id])
    rows = _dicts(cursor)
    for row in rows:
        for key in ("request_headers", "response_headers", "chunks"):
            row[key] = None if row[key] is None else json.loads(row[key])
    return rows


def session_gaps(conn: Conn, session_id: str) -> list[Gap]:
    """A session's gaps, by step."""
    rows = conn.execute("SELECT step, reason FROM gaps WHERE session_id = ? ORDER BY step", [session_id])
    return [Gap(step, reason) for step, reason in rows.fetchall()]


def step_from_row(row: dict[str, Any]) -> StepRecord:
    """A ``StepRecord`` from a step row (JSON columns parsed)."""
    row = dict(row)
    row["request_headers"] = decode_headers(row["request_headers"])
    row["response_headers"] = decode_headers(row["response_headers"] or [])
    chunks = row["chunks"]
    row["chunks"] = None if chunks is None else tuple((float(t), int(n)) for t, n in chunks)
    return StepRecord(**row)


def _dicts(cursor: Conn) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


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


def read_blobs(root: Path, uses: dict[str, str], refs: dict[str, BlobRef]) -> dict[str, bytes]:
    """The verified bytes of every blob in ``uses``; an error naming the first bad one."""
    reader = BlobReader(root, refs.get)
    blobs: dict[str, bytes] = {}
    for sha, label in uses.items():
        if sha not in refs:
            raise BlobMissing(f"{label}: blob {sha} is not in the store",
                              hint="`rewind doctor` lists what is damaged")
        try:
            blobs[sha] = reader.get(refs[sha])
        except (BlobMissing, BlobCorrupt) as e:
            raise type(e)(f"{label}: {e}", hint="`rewind doctor` lists what is damaged") from None
    return blobs
