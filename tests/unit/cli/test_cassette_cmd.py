"""The cassette commands' progress bar: shown for big exports only, on stderr."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from rewind.cli import cassette_cmd


def test_the_bar_appears_only_for_exports_of_several_mebibytes(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr(cassette_cmd, "_console", lambda: Console(file=out, force_terminal=True, width=80))
    with cassette_cmd._progress() as report:
        report(10, 100)
    assert out.getvalue() == ""
    big = cassette_cmd.PROGRESS_FROM_BYTES * 2
    with cassette_cmd._progress() as report:
        report(big // 2, big)
        report(big, big)
    assert "MB" in out.getvalue()
