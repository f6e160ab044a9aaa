from __future__ import annotations

import pytest

from rewind.errors import ConfigError
from rewind.replay.pace import FAST, ORIGINAL, Pace, parse_pace


def test_fast_is_the_default_and_never_waits() -> None:
    assert Pace() == FAST
    assert parse_pace("fast").delay_s(0, 5000) == 0.0


def test_original_keeps_recorded_gaps() -> None:
    assert parse_pace("original").delay_s(100, 350) == pytest.approx(0.25)


@pytest.mark.parametrize(
    ("text", "delay"), [("2x", 0.5), ("2", 0.5), ("0.5x", 2.0), ("4X", 0.25), (" 1x ", 1.0)]
)
def test_factor_is_times_faster_than_recorded(text: str, delay: float) -> None:
    assert parse_pace(text).delay_s(1000, 2000) == pytest.approx(delay)


def test_one_x_is_original() -> None:
    assert parse_pace("1x") == ORIGINAL


def test_out_of_order_chunk_times_do_not_wait_negative() -> None:
    assert ORIGINAL.delay_s(500, 400) == 0.0


@pytest.mark.parametrize(
    ("text", "shown"), [("FAST", "fast"), ("original", "original"), ("2", "2x"), ("0.5x", "0.5x")]
)
def test_str_names_the_pace(text: str, shown: str) -> None:
    assert str(parse_pace(text)) == shown


@pytest.mark.parametrize("text", ["", "x", "slow", "0", "0x", "-2x", "inf", "nan", "2xx", "x2"])
def test_bad_pace_lists_valid_forms(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_pace(text)
    message = str(info.value)
    assert "'fast', 'original'" in message and "'2x'" in message
