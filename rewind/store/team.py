"""Push sessions to a team store, pull them back, and read it like the local index.

**Push** (``push``): every session is read from the local store with each body verified,
and refused as a whole if anything in it still looks like a secret (the check that
guards ``rewind export``). On the remote: the sessions it has already are skipped (ids
are global); the bodies it lacks are uploaded as bundles (``rewind.store.bundles``; a
body already there is not sent again); then the sessions' rows and the bodies' places
are published in **one** catalog transaction. A reader never sees a session whose bodies
are not all there; a push killed before its commit leaves only unreferenced objects,
and the next push completes it. Two machines pushing the same session at once both
append identical rows; the catalog's views show each once.

**Pull** (``pull``): the sessions named (ids, unique id prefixes or names: the newest of
that name on the remote), or all of a ``name``, or all since a time. Each body is
downloaded once per bundle and checked against its sha256; a session with any body
that fails is refused (named, with the reason) and nothing of it is written. The others
are written through the store's own writer (as ``rewind import`` does), keeping their
ids, so pulling twice adds nothing.

**Reading** (``RemoteStore``): the same methods, and the same queries, as the local
``Store``, on the catalog; bodies are fetched only when one is asked for.
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from rewind.errors import RemoteError, SessionNotFound, StoreError
from rewind.store.bundles import BlobPlace, BundleReader, make_bundles, upload
from rewind.store.fold import read_lines, temp_lines
from rewind.store.home import Home, ensure_home
from rewind.store.index import (
    SESSIONS_SQL,
    Store,
    blob_uses,
    resolve,
    session_filters,
    session_gaps,
    session_infos,
    step_from_row,
    step_rows,
)
from rewind.store.lake import Conn, open_lake, remote_errors
from rewind.store.models import Gap, SessionInfo, StepRecord
from rewind.store.remotes import Remote
from rewind.store.transfer import checked_session, refuse_secrets, session_json, write_session

__all__ = ["Compacted", "Pulled", "Pushed", "RemoteStore", "compact", "pull", "push"]

Progress = Callable[[int, int], None]
SESSION_TABLES = ("sessions", "steps", "gaps")


@dataclass
class Pushed:
    added: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)
    bodies_sent: int = 0
    bodies_skipped: int = 0  # already on the remote
    raw_bytes: int = 0  # the bodies' own size
    sent_bytes: int = 0  # what was uploaded (compressed)


@dataclass
class Pulled:
    added: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (session id, why)
    received_bytes: int = 0


# --- push ------------------------------------------------------------------------------


@dataclass
class _Local:
    info: SessionInfo
    steps: list[StepRecord]
    blobs: dict[str, bytes]


def push(
    home: Home, remote: Remote, refs: Iterable[str], env: Mapping[str, str],
    literals: Iterable[bytes] = (), progress: Progress | None = None,
) -> Pushed:
    """Publish the sessions ``refs`` names on ``remote`` (see module)."""
    store = Store(home)
    ids = list(dict.fromkeys(store.resolve(list(refs))))
    result = Pushed()
    with open_lake(remote, env) as conn:
        present = _ids_present(conn, ids)
        result.present = [sid for sid in ids if sid in present]
        result.added = [sid for sid in ids if sid not in present]
        if not result.added:
            return result
        local = _load(store, result.added)  # every body verified; then no secret may remain
        all_blobs = {sha: data for s in local.values() for sha, data in s.blobs.items()}
        refuse_secrets([session_json(s.info, s.steps) for s in local.values()], all_blobs, tuple(literals),
                       what="pushed")  # fmt: skip
        have = set(_places(conn, list(all_blobs)))
        result.bodies_skipped = len(have)
        places = _upload(conn, remote, _new_bodies(local, have), result, progress)
        _publish(conn, home, store.rows(result.added), places)
    return result


def _new_bodies(local: dict[str, _Local], have: set[str]) -> list[list[tuple[str, bytes]]]:
    """Each session's bodies the remote lacks (a body two sessions share: with the first)."""
    seen = set(have)
    groups = []
    for session in local.values():
        group = [(sha, data) for sha, data in session.blobs.items() if sha not in seen]
        seen.update(sha for sha, _ in group)
        groups.append(group)
    return groups


def _load(store: Store, ids: list[str]) -> dict[str, _Local]:
    local: dict[str, _Local] = {}
    for info, steps, blobs in store.load_many(ids):  # every body verified
        if info.status == "recording":
            raise RemoteError(f"session {info.id} is still recording: nothing was pushed",
                              hint="push it once it has finished (`rewind record --push` does)")  # fmt: skip
        local.setdefault(info.id, _Local(info, steps, blobs))
    return local


def _ids_present(conn: Conn, ids: list[str]) -> set[str]:
    rows = conn.execute("SELECT id FROM sessions WHERE list_contains(?, id)", [ids]).fetchall()
    return {row[0] for row in rows}


def _upload(
    conn: Conn, remote: Remote, groups: list[list[tuple[str, bytes]]], result: Pushed,
    progress: Progress | None,
) -> list[BlobPlace]:
    total = sum(len(data) for group in groups for _, data in group)
    places: list[BlobPlace] = []
    for bundle in (b for group in groups for b in make_bundles(group)):
        upload(conn, remote.data, bundle)
        places.extend(bundle.places)
        result.bodies_sent += len(bundle.places)
        result.raw_bytes += bundle.raw_bytes
        result.sent_bytes += len(bundle.data)
        if progress is not None:
            progress(result.raw_bytes, total)
    return places


def _publish(conn: Conn, home: Home, rows: dict[str, list[dict[str, Any]]], places: list[BlobPlace]) -> None:
    """Every row of the pushed sessions and every new body's place, in one transaction."""
    for table in SESSION_TABLES:
        _stage(conn, home, f"memory.{table}", rows[table])
    conn.execute("CREATE OR REPLACE TEMPORARY TABLE staged_blobs (sha VARCHAR, raw_size BIGINT, "
                 "bundle VARCHAR, data_offset BIGINT, data_length BIGINT)")  # fmt: skip
    _stage(conn, home, "staged_blobs", [dataclasses.asdict(p) for p in places])
    conn.execute("BEGIN")
    try:
        conn.execute("INSERT INTO team.blob_rows BY NAME SELECT * FROM staged_blobs")
        conn.execute("INSERT INTO team.gap_rows BY NAME SELECT * FROM memory.gaps")
        conn.execute("INSERT INTO team.step_rows BY NAME SELECT * FROM memory.steps")
        conn.execute(
            "INSERT INTO team.session_rows BY NAME SELECT * REPLACE (NULL::INTEGER AS pid), "
            "?::DOUBLE AS pushed_at, ?::VARCHAR AS pushed_by FROM memory.sessions",
            [time.time(), socket.gethostname()],
        )
        conn.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(Exception):
            conn.execute("ROLLBACK")
        raise


def _stage(conn: Conn, home: Home, table: str, rows: list[dict[str, Any]]) -> None:
    """``table`` holding exactly ``rows``, loaded in one statement through a JSON-lines file
    (DuckDB's ``executemany`` inserts a row at a time: milliseconds each)."""
    conn.execute(f"DELETE FROM {table}")
    if not rows:
        return
    kinds = conn.execute(f"SELECT * FROM {table} LIMIT 0").description or ()
    columns = {name: _read_type(kind) for name, kind, *_ in kinds}
    with temp_lines(home, rows) as path:
        conn.execute(f"INSERT INTO {table} BY NAME SELECT * FROM {read_lines(path, columns)}")


def _read_type(kind: Any) -> str:
    """How a column is read from the lines: JSON columns hold JSON text, kept as text."""
    name = str(kind)
    return "VARCHAR" if name.upper() == "JSON" else name


# --- pull ------------------------------------------------------------------------------


def pull(
    home: Home, remote: Remote, refs: Iterable[str], env: Mapping[str, str], *,
    name: str | None = None, since: float | None = None, progress: Callable[[int], None] | None = None,
) -> Pulled:
    """Copy the sessions named (or all of ``name``, or all since ``since``) into this store."""
    result = Pulled()
    with open_lake(remote, env) as conn:
        ids = _chosen(conn, list(refs), name, since)
        here = _local_ids(home)
        result.present = [sid for sid in ids if sid in here]
        reader = BundleReader(conn, remote.data, _counting(result, progress))
        for sid in (sid for sid in ids if sid not in result.present):
            try:
                info, steps, gaps, blobs = _fetch(conn, reader, sid)
            except RemoteError as exc:
                result.refused.append((sid, str(exc)))
                continue
            _write(home, info, steps, gaps, blobs)
            result.added.append(sid)
    return result


def _counting(result: Pulled, progress: Callable[[int], None] | None) -> Callable[[int], None]:
    def count(size: int) -> None:
        result.received_bytes += size
        if progress is not None:
            progress(result.received_bytes)

    return count


def _chosen(conn: Conn, refs: list[str], name: str | None, since: float | None) -> list[str]:
    ids = [resolve(conn, ref) for ref in refs]
    if name is not None or since is not None:
        where, params = session_filters(name, since)
        rows = conn.execute(f"SELECT s.id FROM sessions s {where} ORDER BY s.started_at", params).fetchall()
        ids += [row[0] for row in rows]
        if not rows and not refs:
            raise SessionNotFound("no session on the remote matches", hint="`rewind list --remote NAME`")
    return list(dict.fromkeys(ids))


def _fetch(
    conn: Conn, reader: BundleReader, sid: str
) -> tuple[SessionInfo, list[StepRecord], list[Gap], dict[str, bytes]]:
    info = session_infos(conn, "WHERE s.id = ?", [sid])[0]
    steps = [step_from_row(row) for row in step_rows(conn, sid)]
    gaps = session_gaps(conn, sid)
    uses = blob_uses(info, steps)
    places = _places(conn, list(uses))
    blobs: dict[str, bytes] = {}
    for sha, label in uses.items():
        if sha not in places:
            raise RemoteError(f"session {sid}: {label}: body {sha} is not on the remote")
        blobs[sha] = reader.get(places[sha], f"session {sid}: {label}")
    return info, steps, gaps, blobs


def _places(conn: Conn, shas: list[str]) -> dict[str, BlobPlace]:
    rows = conn.execute(
        "SELECT sha, raw_size, bundle, data_offset, data_length FROM blobs WHERE list_contains(?, sha)",
        [shas],
    ).fetchall()
    return {row[0]: BlobPlace(*row) for row in rows}


def _local_ids(home: Home) -> set[str]:
    """The sessions this store has (a store with no index and no session: none, and it is
    left untouched)."""
    if not home.index_path.exists() and not home.sessions_dir.exists():
        return set()
    return {info.id for info in Store(home).sessions()}


def _write(
    home: Home, info: SessionInfo, steps: list[StepRecord], gaps: list[Gap], blobs: dict[str, bytes]
) -> None:
    try:
        (start, _), end, checked = checked_session(session_json(info, steps), set(blobs))
    except StoreError as exc:  # a CassetteError: the rows do not make a valid session
        raise RemoteError(f"session {info.id} on the remote is not valid: {exc}") from None
    ensure_home(home)
    write_session(home, start, end, checked, blobs, [(g.step, g.reason) for g in gaps])


# --- compaction ------------------------------------------------------------------------

LAKE_TABLES = ("session_rows", "step_rows", "gap_rows", "blob_rows")


@dataclass
class Compacted:
    files_before: int
    files_after: int
    inlined_rows: int  # rows moved out of the catalog into Parquet
    unreferenced_bundles: int  # bundle objects no published body is in (interrupted pushes)
    unreferenced_bytes: int


def compact(remote: Remote, env: Mapping[str, str], keep_hours: float = 1.0) -> Compacted:
    """Rows kept in the catalog moved into Parquet, small files merged, and files only
    snapshots older than ``keep_hours`` still use deleted; bundles no body refers to are
    counted (an interrupted push leaves them; they are never deleted here: a push may be
    about to publish them)."""
    with open_lake(remote, env) as conn:
        before = _data_files(conn)
        inlined = _inlined_rows(conn)
        conn.execute("CALL ducklake_flush_inlined_data('team')")
        conn.execute("CALL ducklake_merge_adjacent_files('team')")
        older = f"now() - INTERVAL '{int(keep_hours * 3600)} seconds'"
        conn.execute(f"CALL ducklake_expire_snapshots('team', older_than => {older})")
        conn.execute(f"CALL ducklake_cleanup_old_files('team', older_than => {older})")
        count, size = _unreferenced_bundles(conn, remote)
        return Compacted(before, _data_files(conn), inlined, count, size)


def _data_files(conn: Conn) -> int:
    return sum(_one(conn, f"SELECT count(*) FROM ducklake_list_files('team', '{t}')") for t in LAKE_TABLES)


METADATA = "__ducklake_metadata_team"  # the catalog database DuckLake attaches for ``team``


def _inlined_rows(conn: Conn) -> int:
    """Rows kept in the catalog's own tables (inserts of up to ``lake.INLINE_ROWS`` rows)."""
    sql = f"SELECT DISTINCT table_name FROM {METADATA}.ducklake_inlined_data_tables"
    tables = conn.execute(sql).fetchall()
    return sum(_one(conn, f'SELECT count(*) FROM {METADATA}."{name}"') for (name,) in tables)


def _unreferenced_bundles(conn: Conn, remote: Remote) -> tuple[int, int]:
    listed = conn.execute(
        f"SELECT filename, size FROM read_blob('{remote.data}/bundles/*.rwb') "
        "WHERE NOT list_contains((SELECT list(DISTINCT bundle) FROM blob_rows), "
        f"substr(filename, {len(remote.data) + 2}))"
    ).fetchall() if _any_bundle(conn, remote) else []
    return len(listed), sum(size for _, size in listed)


def _any_bundle(conn: Conn, remote: Remote) -> bool:
    return _one(conn, f"SELECT count(*) FROM glob('{remote.data}/bundles/*.rwb')") > 0


def _one(conn: Conn, sql: str) -> int:
    row = conn.execute(sql).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


# --- reading ---------------------------------------------------------------------------


class RemoteStore(Store):
    """``Store``'s read methods, answered by a team store's catalog: the same queries run
    on one connection to it, opened on first use and kept until ``close``. Bodies are
    downloaded only when one is asked for (``blob``)."""

    def __init__(self, home: Home, remote: Remote, env: Mapping[str, str]) -> None:
        super().__init__(home)
        self.remote, self.env = remote, env
        self._stack = contextlib.ExitStack()
        self._conn: Conn | None = None
        self._reader: BundleReader | None = None

    def blob(self, sha: str) -> bytes:
        """One body, downloaded (its whole bundle, once) and verified."""
        with self._open() as conn:
            places = _places(conn, [sha])
            if sha not in places:
                raise RemoteError(f"body {sha} is not on the remote {self.remote.name!r}")
            assert self._reader is not None
            return self._reader.get(places[sha], f"body {sha}")

    def load_many(self, refs: list[str]) -> list[tuple[SessionInfo, list[StepRecord], dict[str, bytes]]]:
        """Refused (``load`` too): bodies are read from a team store by pulling."""
        raise self._local_only(refs[0] if refs else "SESSION")

    def rows(self, session_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        raise self._local_only(session_ids[0] if session_ids else "SESSION")

    def _local_only(self, ref: str) -> RemoteError:
        hint = f"pull the session first: rewind pull --remote {self.remote.name} {ref}"
        return RemoteError("this command reads the local store only", hint=hint)

    def fold(self) -> None:
        """Nothing to fold: a team store has no per-session records."""

    def close(self) -> None:
        self._stack.close()
        self._conn = None

    @contextlib.contextmanager
    def _open(self) -> Iterator[Conn]:
        if self._conn is None:
            self._conn = self._stack.enter_context(open_lake(self.remote, self.env))
            self._reader = BundleReader(self._conn, self.remote.data)
        with remote_errors(self.remote):
            yield self._conn


assert "FROM sessions s" in SESSIONS_SQL  # the local queries, unchanged, read the remote's views
