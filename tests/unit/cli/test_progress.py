"""The progress bar of export, push and pull: shown for big transfers only, on stderr."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from rewind.cli import progress


@pytest.fixture
def out(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    shown = io.StringIO()
    monkeypatch.setattr(progress, "_console", lambda: Console(file=shown, force_terminal=True, width=80))
    return shown


def test_the_bar_appears_only_for_transfers_of_several_mebibytes(out: io.StringIO) -> None:
    with progress.byte_progress("export") as report:
        report(10, 100)
    assert out.getvalue() == ""
    big = progress.PROGRESS_FROM_BYTES * 2
    with progress.byte_progress("export") as report:
        report(big // 2, big)
        report(big, big)
    assert "MB" in out.getvalue()


def test_a_transfer_of_unknown_size_gets_a_bar_once_it_is_big(out: io.StringIO) -> None:
    with progress.byte_progress("pull") as report:
        report(1024, 0)
        assert out.getvalue() == ""
        report(progress.PROGRESS_FROM_BYTES * 3, 0)
    assert "MB" in out.getvalue()
