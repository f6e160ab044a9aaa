"""``--since``: dates, date-times and ages."""

from __future__ import annotations

import datetime

import pytest

from rewind.cli.since import parse_since

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("7d", NOW - 7 * 86400),
        ("12h", NOW - 12 * 3600),
        ("30m", NOW - 1800),
        ("2w", NOW - 14 * 86400),
        ("2024-05-01T09:30:00+00:00", datetime.datetime(2024, 5, 1, 9, 30, tzinfo=datetime.UTC).timestamp()),
        ("2024-05-01", datetime.datetime(2024, 5, 1).timestamp()),  # local midnight
        ("2024-05-01 09:30", datetime.datetime(2024, 5, 1, 9, 30).timestamp()),
    ],
)
def test_valid_values(value: str, expected: float) -> None:
    assert parse_since(value, NOW) == expected


@pytest.mark.parametrize("value", ["yesterday", "7", "d7", "7y", "2024-13-01", ""])
def test_invalid_values(value: str) -> None:
    assert parse_since(value, NOW) is None
