"""The index schema, changed only by numbered migrations recorded in ``_migrations``.

Append a new ``Migration`` to ``MIGRATIONS`` to change the schema; never edit one that
has shipped. ``migrate`` applies the pending ones, each in its own transaction, and
refuses an index written by a newer Rewind. ``describe_schema`` renders the resulting
schema as Markdown for docs/store.md (``python -m rewind.store.migrations``), and a test
checks the docs against it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import duckdb

from rewind.errors import FormatVersionError


@dataclass(frozen=True)
class Migration:
    """One numbered, forward-only change to the index schema."""

    version: int
    title: str
    sql: str


M1_SQL = """
CREATE TABLE sessions (
    id VARCHAR PRIMARY KEY,
    name VARCHAR,
    mode VARCHAR NOT NULL,
    started_at DOUBLE NOT NULL,
    command JSON NOT NULL,
    cwd VARCHAR NOT NULL,
    git_commit VARCHAR,
    parent_id VARCHAR,
    upstreams JSON NOT NULL,
    routes JSON NOT NULL,
    fingerprint_version INTEGER NOT NULL,
    pid INTEGER,
    status VARCHAR NOT NULL,
    ended_at DOUBLE,
    exit_code INTEGER,
    stdout_sha VARCHAR,
    stderr_sha VARCHAR
);
CREATE TABLE steps (
    session_id VARCHAR NOT NULL,
    step INTEGER NOT NULL,
    kind VARCHAR NOT NULL,
    method VARCHAR NOT NULL,
    url VARCHAR NOT NULL,
    started_at DOUBLE NOT NULL,
    fingerprint VARCHAR NOT NULL,
    request_headers JSON NOT NULL,
    request_sha VARCHAR NOT NULL,
    provider VARCHAR,
    model VARCHAR,
    status INTEGER,
    reason VARCHAR,
    error VARCHAR,
    response_headers JSON,
    response_sha VARCHAR,
    latency_ms DOUBLE,
    ttft_ms DOUBLE,
    streamed BOOLEAN NOT NULL,
    chunks JSON,
    input_tokens BIGINT,
    output_tokens BIGINT,
    cache_read_tokens BIGINT,
    cache_write_tokens BIGINT,
    PRIMARY KEY (session_id, step)
);
CREATE TABLE blobs (
    sha VARCHAR PRIMARY KEY,
    pack VARCHAR NOT NULL,
    data_offset BIGINT NOT NULL,
    data_length BIGINT NOT NULL,
    raw_size BIGINT NOT NULL
);
"""

# Objects are shared by sessions and may be delta-coded against a base; a pack is a path
# under the home ("objects/<name>.pack", or "packs/<sid>.pack" for version 1 packs).
M2_SQL = """
CREATE TABLE objects (
    sha VARCHAR PRIMARY KEY,
    pack VARCHAR NOT NULL,
    data_offset BIGINT NOT NULL,
    data_length BIGINT NOT NULL,
    raw_size BIGINT NOT NULL,
    base VARCHAR
);
INSERT INTO objects
    SELECT sha, 'packs/' || pack || '.pack', data_offset, data_length, raw_size, NULL FROM blobs;
DROP TABLE blobs;
CREATE TABLE gaps (
    session_id VARCHAR NOT NULL,
    step INTEGER NOT NULL,
    reason VARCHAR NOT NULL,
    PRIMARY KEY (session_id, step)
);
"""
M3_SQL = """
ALTER TABLE steps ADD COLUMN meaning VARCHAR;
ALTER TABLE steps ADD COLUMN finish_reason VARCHAR;
ALTER TABLE steps ADD COLUMN error_type VARCHAR;
ALTER TABLE steps ADD COLUMN response_model VARCHAR;
ALTER TABLE steps ADD COLUMN tag VARCHAR;
"""
M4_SQL = """
ALTER TABLE sessions ADD COLUMN fork_step INTEGER;
ALTER TABLE sessions ADD COLUMN fault VARCHAR;
"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "sessions, steps and blob references", M1_SQL),
    Migration(2, "shared, delta-coded objects; gaps (exchanges that could not be stored)", M2_SQL),
    Migration(3, "what each response means to the agent, and its failure tag", M3_SQL),
    Migration(4, "a branch's fork step and the fault injected there", M4_SQL),
)
LATEST = MIGRATIONS[-1].version
BOOKKEEPING_SQL = """
CREATE TABLE IF NOT EXISTS _migrations (version INTEGER PRIMARY KEY, applied_at DOUBLE NOT NULL)
"""


def migrate(conn: duckdb.DuckDBPyConnection) -> list[int]:
    """Apply every pending migration; return the versions applied now."""
    conn.execute(BOOKKEEPING_SQL)
    done = applied_versions(conn)
    if done and max(done) > LATEST:
        raise FormatVersionError(
            f"the index is at schema version {max(done)}; this Rewind knows up to {LATEST}",
            hint="upgrade Rewind to read this store",
        )
    pending = [m for m in MIGRATIONS if m.version not in done]
    for migration in pending:
        _apply(conn, migration)
    return [m.version for m in pending]


def applied_versions(conn: duckdb.DuckDBPyConnection) -> set[int]:
    """The versions recorded in ``_migrations``."""
    return {row[0] for row in conn.execute("SELECT version FROM _migrations").fetchall()}


def _apply(conn: duckdb.DuckDBPyConnection, migration: Migration) -> None:
    conn.execute("BEGIN TRANSACTION")
    try:
        conn.execute(migration.sql)
        conn.execute("INSERT INTO _migrations VALUES (?, ?)", [migration.version, time.time()])
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def describe_schema(conn: duckdb.DuckDBPyConnection) -> str:
    """The migrated schema as Markdown: one table of columns per database table."""
    return "\n\n".join(_describe_table(conn, name) for name in _tables(conn))


def _tables(conn: duckdb.DuckDBPyConnection) -> list[str]:
    rows = conn.execute(
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' ORDER BY table_name"
    ).fetchall()
    return [row[0] for row in rows]


def _describe_table(conn: duckdb.DuckDBPyConnection, table: str) -> str:
    head = [f"### `{table}`", "", f"Primary key: {_primary_key(conn, table)}", "",
            "| column | type | null |", "| --- | --- | --- |"]
    return "\n".join(head + [f"| `{c}` | {t} | {n} |" for c, t, n in _columns(conn, table)])


def _columns(conn: duckdb.DuckDBPyConnection, table: str) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT column_name, data_type, CASE WHEN is_nullable THEN 'yes' ELSE 'no' END "
        "FROM duckdb_columns() WHERE schema_name = 'main' AND table_name = ? "
        "ORDER BY column_index",
        [table],
    ).fetchall()


def _primary_key(conn: duckdb.DuckDBPyConnection, table: str) -> str:
    row = conn.execute(
        "SELECT constraint_column_names FROM duckdb_constraints() "
        "WHERE schema_name = 'main' AND table_name = ? AND constraint_type = 'PRIMARY KEY'",
        [table],
    ).fetchone()
    return "none" if row is None else "(" + ", ".join(f"`{c}`" for c in row[0]) + ")"


def main() -> None:
    """Print the schema section of docs/store.md."""
    conn = duckdb.connect(":memory:")
    migrate(conn)
    print(describe_schema(conn))


if __name__ == "__main__":
    main()
