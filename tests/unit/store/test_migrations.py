"""Numbered migrations: applied once, recorded, refused when newer; the docs match them."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import duckdb
import pytest

from rewind.errors import FormatVersionError
from rewind.store.journal import GAP_COLUMNS, OBJECT_COLUMNS, STEP_COLUMNS, SessionEnd
from rewind.store.migrations import (
    BOOKKEEPING_SQL,
    LATEST,
    MIGRATIONS,
    Migration,
    _apply,
    applied_versions,
    describe_schema,
    migrate,
)
from rewind.store.models import SessionStart

DOCS = Path(__file__).parents[3] / "docs" / "store.md"


@pytest.fixture
def conn(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(tmp_path / "index.duckdb"))


def columns(conn: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    rows = conn.execute(
        "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = ? "
        "ORDER BY column_index", [table]).fetchall()
    return dict(rows)


def test_migrations_are_numbered_from_one_without_gaps() -> None:
    assert [m.version for m in MIGRATIONS] == list(range(1, LATEST + 1))


def test_migrate_applies_and_records_each_once(conn: duckdb.DuckDBPyConnection) -> None:
    assert migrate(conn) == [m.version for m in MIGRATIONS]
    assert migrate(conn) == []
    rows = conn.execute("SELECT version, applied_at FROM _migrations").fetchall()
    assert [r[0] for r in rows] == [m.version for m in MIGRATIONS] and all(r[1] > 0 for r in rows)


def test_migrations_survive_reopening(tmp_path: Path) -> None:
    first = duckdb.connect(str(tmp_path / "i.duckdb"))
    migrate(first)
    first.close()
    again = duckdb.connect(str(tmp_path / "i.duckdb"))
    assert migrate(again) == [] and applied_versions(again) == set(range(1, LATEST + 1))


def test_index_from_a_newer_rewind_is_refused(conn: duckdb.DuckDBPyConnection) -> None:
    migrate(conn)
    conn.execute("INSERT INTO _migrations VALUES (?, 0)", [LATEST + 1])
    with pytest.raises(FormatVersionError, match="upgrade|knows up to"):
        migrate(conn)


def test_tables_match_the_journal_columns(conn: duckdb.DuckDBPyConnection) -> None:
    migrate(conn)
    assert columns(conn, "steps") == STEP_COLUMNS
    assert columns(conn, "objects") == OBJECT_COLUMNS
    assert columns(conn, "gaps") == GAP_COLUMNS
    assert columns(conn, "blobs") == {}  # replaced by objects in migration 2


def test_migration_2_carries_version_1_blob_locations(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(BOOKKEEPING_SQL)
    _apply(conn, MIGRATIONS[0])
    conn.execute("INSERT INTO blobs VALUES (?, 'abc123abc123', 44, 10, 12)", ["a" * 64])
    assert migrate(conn) == [2, 3, 4]
    assert conn.execute("SELECT * FROM objects").fetchall() == [
        ("a" * 64, "packs/abc123abc123.pack", 44, 10, 12, None)]


def test_a_failed_migration_leaves_nothing_applied(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(BOOKKEEPING_SQL)
    broken = Migration(1, "broken", "CREATE TABLE t (x INTEGER); SELECT * FROM no_such_table;")
    with pytest.raises(duckdb.Error):
        _apply(conn, broken)
    assert applied_versions(conn) == set() and columns(conn, "t") == {}


def test_sessions_table_holds_start_status_and_end(conn: duckdb.DuckDBPyConnection) -> None:
    migrate(conn)
    expected = [f.name for f in fields(SessionStart)] + ["status"]
    expected += [f.name for f in fields(SessionEnd)]
    assert sorted(columns(conn, "sessions")) == sorted(expected)


def test_docs_schema_section_is_generated_from_the_migrations() -> None:
    conn = duckdb.connect(":memory:")
    migrate(conn)
    text = DOCS.read_text()
    found = re.search(r"<!-- schema:begin -->\n(.*)\n<!-- schema:end -->", text, re.S)
    assert found, "docs/store.md lacks the schema markers"
    assert found.group(1).strip() == describe_schema(conn).strip(), (
        "regenerate with: python -m rewind.store.migrations"
    )


def test_every_table_is_documented() -> None:
    conn = duckdb.connect(":memory:")
    migrate(conn)
    tables = [r[0] for r in conn.execute("SELECT table_name FROM duckdb_tables()").fetchall()]
    assert tables and all(f"### `{t}`" in DOCS.read_text() for t in tables)
