from __future__ import annotations

import pytest

from rewind.errors import ConfigError
from rewind.replay.modes import OnMiss, parse_on_miss


@pytest.mark.parametrize(
    ("text", "mode"), [("error", OnMiss.ERROR), ("live", OnMiss.LIVE), (" LIVE ", OnMiss.LIVE)]
)
def test_parse_on_miss_accepts_valid_values(text: str, mode: OnMiss) -> None:
    assert parse_on_miss(text) is mode


def test_parse_on_miss_passes_a_mode_through() -> None:
    assert parse_on_miss(OnMiss.LIVE) is OnMiss.LIVE


def test_on_miss_is_a_str_enum() -> None:
    assert isinstance(OnMiss.ERROR, str) and OnMiss.ERROR.value == "error"
    assert str(OnMiss.LIVE) == "live"


@pytest.mark.parametrize("text", ["", "strict", "record", "errors"])
def test_parse_on_miss_rejects_others_listing_valid_values(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_on_miss(text)
    assert "'error', 'live'" in str(info.value)
    assert info.value.exit_code == 2
