"""The fast canonical JSON path gives RFC 8785's bytes, and RFC 8785's errors."""

from __future__ import annotations

from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from rewind.canon.canonjson import canonical_json

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
VALUES = st.recursive(
    SCALARS,
    lambda kids: st.lists(kids, max_size=5) | st.dictionaries(st.text(max_size=8), kids, max_size=5),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(VALUES)
def test_same_bytes_as_rfc8785(value: Any) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)


@pytest.mark.parametrize(
    "value",
    [
        {"b": 1, "a": [True, None, "x\u2028\x7f\x01\n\"\\"]},
        {"\ue000": 1, "\U0001f600": 2},  # UTF-16 order differs from code-point order here
        [1e-5, 2.0, 1e16, 0.1, 1e21, 1e-7, -0.0, 0.7, 123.456],
        {"temperature": 0.2, "max_tokens": 2**53 - 1},
        "é日本\U0001f600",
        {"k": (1, 2)},
    ],
)
def test_edge_values(value: Any) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)


@pytest.mark.parametrize("value", [2**53, -(2**53), float("nan"), float("inf"), "\ud800"])
def test_what_rfc8785_refuses_is_refused_alike(value: Any) -> None:
    with pytest.raises(Exception) as expected:
        rfc8785.dumps(value)
    with pytest.raises(type(expected.value)):
        canonical_json(value)


def test_representable_says_what_rfc8785_can_serialise() -> None:
    from rewind.canon.canonjson import representable

    assert representable({"a": [1, 0.5, "x", None, True]})
    assert not representable({"a": 2**53}) and not representable("\ud800") and not representable(float("nan"))
