"""Tests of rewind.canon.jsonget: values of the wrong type read as empty, never raise."""

from __future__ import annotations

from rewind.canon.jsonget import as_dict, as_text, dicts, nonempty_str


def test_values_of_the_expected_type_pass_through() -> None:
    assert as_dict({"a": 1}) == {"a": 1} and dicts([{"a": 1}, 2, None, {}]) == [{"a": 1}, {}]
    assert nonempty_str("x") == "x" and as_text("x") == "x"


def test_anything_else_reads_as_empty() -> None:
    for value in (None, 1, "s", [1], 2.5, True):
        assert as_dict(value) == {} or isinstance(value, dict)
        assert dicts(value) == []
    assert nonempty_str("") is None and nonempty_str(3) is None and as_text(None) == ""
