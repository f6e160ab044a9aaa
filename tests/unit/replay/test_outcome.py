from __future__ import annotations

import pytest

from rewind.replay.explain import MissReport, Neighbour
from rewind.replay.outcome import (
    EXIT_MISS,
    EXIT_OK,
    EXIT_OUTPUT_DIFFERS,
    EXIT_UNUSED_STEPS,
    OutputComparison,
    ReplaySummary,
    compare_output,
)
from rewind.store.models import StepRecord

from .factories import make_step

SAME = OutputComparison(identical=True)
DIFFERENT = compare_output(b"Paris\n", b"London\n", 0, 0)
MISS = MissReport(
    "POST",
    "https://api.openai.com/v1/chat/completions",
    "v1:ff",
    [Neighbour(make_step(2), ["model: 'a' != recorded 'b'"])],
)


def test_identical_output() -> None:
    assert compare_output(b"ok\n", b"ok\n", 0, 0) == OutputComparison(True, "")


def test_differing_stdout_is_a_unified_diff() -> None:
    result = compare_output(b"one\ntwo\nthree\n", b"one\nTWO\nthree\n", 0, 0)
    assert not result.identical
    assert result.diff == ("--- recorded\n+++ replayed\n@@ -1,3 +1,3 @@\n one\n-two\n+TWO\n three\n")


def test_missing_final_newline_still_gives_whole_lines() -> None:
    assert compare_output(b"a", b"b", 0, 0).diff.endswith("-a\n+b\n")


def test_invalid_utf8_is_replaced() -> None:
    assert "\ufffd" in compare_output(b"\xff\n", b"x\n", 0, 0).diff


def test_exit_codes_that_differ_are_reported() -> None:
    result = compare_output(b"same", b"same", 0, 1)
    assert not result.identical
    assert result.diff == "exit code: 1 vs recorded 0\n"


def test_unknown_recorded_exit_code_is_not_compared() -> None:
    assert compare_output(b"x", b"x", None, 1).identical


@pytest.mark.parametrize(
    ("misses", "unused", "output", "code"),
    [
        ([], [], SAME, EXIT_OK),
        ([], [], None, EXIT_OK),
        ([MISS], [], SAME, EXIT_MISS),
        ([MISS], [make_step(3)], DIFFERENT, EXIT_MISS),
        ([], [make_step(3)], DIFFERENT, EXIT_OUTPUT_DIFFERS),
        ([], [make_step(3)], SAME, EXIT_UNUSED_STEPS),
    ],
)
def test_exit_code(
    misses: list[MissReport], unused: list[StepRecord], output: OutputComparison | None, code: int
) -> None:
    assert ReplaySummary(4, 4 - len(unused), misses, unused, output).exit_code() == code


def test_exit_codes_are_the_documented_ones() -> None:
    assert (EXIT_OK, EXIT_MISS, EXIT_OUTPUT_DIFFERS, EXIT_UNUSED_STEPS) == (0, 3, 4, 5)


def test_lines_for_a_clean_replay() -> None:
    assert ReplaySummary(3, 3, [], [], SAME).lines() == ["Replayed 3/3 steps", "Output identical."]


def test_lines_for_a_troubled_replay() -> None:
    summary = ReplaySummary(5, 3, [MISS], [make_step(5), make_step(3)], DIFFERENT)
    assert summary.lines() == [
        "Replayed 3/5 steps",
        "Missed requests: 1",
        *("  " + line for line in MISS.text().splitlines()),
        "Output differs:",
        "--- recorded",
        "+++ replayed",
        "@@ -1 +1 @@",
        "-Paris",
        "+London",
        "Unused recorded steps: 3, 5",
    ]
    assert "    - model: 'a' != recorded 'b'" in MISS.text()


def test_to_json() -> None:
    data = ReplaySummary(2, 1, [MISS], [make_step(2)], SAME).to_json()
    assert data == {
        "replayed": 1,
        "recorded": 2,
        "misses": [MISS.to_json()],
        "unused_steps": [2],
        "output_identical": True,
        "output_diff": "",
        "output_not_compared": None,
        "exit_code": EXIT_MISS,
    }


@pytest.mark.parametrize("mode", ["proxy", "mitmdump"])
def test_a_session_recorded_without_a_command_has_no_output_to_compare(mode: str) -> None:
    output = compare_output(b"", b"Paris\n", None, 0, recorded_by=mode)
    summary = ReplaySummary(1, 1, [], [], output)
    assert summary.exit_code() == EXIT_OK
    recorder = "`rewind proxy`" if mode == "proxy" else "mitmdump"
    assert [line for line in summary.lines() if line.startswith("Output")] == [
        f"Output not compared: the session was recorded by {recorder}, which runs no command."
    ]
    data = summary.to_json()
    assert data["output_identical"] is None and data["output_not_compared"].startswith("the session")


def test_advice_shared_by_several_misses_is_given_once() -> None:
    lines = ReplaySummary(3, 0, [MISS, MISS], [], None).lines()
    advice = MISS.text().splitlines()[-1]
    assert lines.count("  " + advice) == 1 and lines[-1] == "  " + advice
    assert lines.count("  " + MISS.text().splitlines()[0]) == 2
