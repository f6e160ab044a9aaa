"""Many values as one DuckDB parameter: the same rows as a list would select."""

from __future__ import annotations

import duckdb
import pytest

from rewind.store.sqlargs import ANY_INTEGER, ANY_TEXT, joined


def test_text_and_integer_lists_select_what_they_name() -> None:
    conn = duckdb.connect()
    conn.execute("CREATE TABLE t (sha VARCHAR, step INTEGER)")
    conn.execute("INSERT INTO t VALUES ('aa', 1), ('bb', 2), ('cc', 3)")
    wanted = joined(["cc", "aa", "zz"])
    texts = conn.execute(f"SELECT sha FROM t WHERE sha = {ANY_TEXT} ORDER BY sha", [wanted])
    assert texts.fetchall() == [("aa",), ("cc",)]
    steps = conn.execute(f"SELECT step FROM t WHERE step = {ANY_INTEGER} ORDER BY step", [joined([3, 2])])
    assert steps.fetchall() == [(2,), (3,)]


def test_a_value_with_a_comma_is_refused() -> None:
    with pytest.raises(ValueError, match="comma"):
        joined(["a,b"])
