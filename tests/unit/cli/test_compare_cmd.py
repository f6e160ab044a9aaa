"""``rewind diff`` and ``rewind bisect`` in-process, on sessions written by the store's writer."""

from __future__ import annotations

import json

from rewind.store.home import Home
from tests.unit.cli.conftest import Invoke, write_session


def test_diff_and_bisect_of_two_equal_sessions(home: Home, rewind: Invoke) -> None:
    a, b = write_session(home, name="a"), write_session(home, name="b")
    diff = rewind("diff", a, b, "--json")
    assert diff.exit_code == 0, diff.output
    doc = json.loads(diff.stdout)
    assert doc["identical"] is True and doc["steps"] == [{"status": "same", "a": 1, "b": 1}]
    found = json.loads(rewind("bisect", a, b, "--json").stdout)
    assert found["identical"] is True and found["first_divergence"] is None
    assert (found["matched"], found["total"]) == (1, 1)
    text = rewind("bisect", "a", "b").stdout
    assert "Identical" in text and "Steps matched: 1 / 1" in text


def test_unknown_session_is_one_line_on_stderr(home: Home, rewind: Invoke) -> None:
    a = write_session(home, name="a")
    result = rewind("diff", a, "nosuch")
    assert result.exit_code == 1 and result.stdout == "" and "nosuch" in result.stderr
