"""How a replay went, compared with its recording, and the exit code that says so.

Exit codes of ``rewind replay`` (the most serious applies):

    0  every request matched, every recorded step was used, output identical
    3  at least one request missed (had no recorded answer)
    4  no misses, but the command's stdout or exit code differs from the recording
       (never for a session recorded without a command: there is no output to compare)
    5  everything matched and output is identical, but some recorded steps were unused

(1 and 2 are Rewind's general error and bad-option codes, ``rewind.errors``.)
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rewind.replay.explain import MissReport
from rewind.store.models import StepRecord

__all__ = [
    "EXIT_MISS",
    "EXIT_OK",
    "EXIT_OUTPUT_DIFFERS",
    "EXIT_UNUSED_STEPS",
    "OutputComparison",
    "ReplaySummary",
    "compare_output",
]

EXIT_OK = 0
EXIT_MISS = 3
EXIT_OUTPUT_DIFFERS = 4
EXIT_UNUSED_STEPS = 5


# Session modes recorded without a command (``rewind proxy``, mitmdump with
# addons/record.py): there is no recorded output to compare a replay's with.
NO_OUTPUT_MODES = {"proxy": "`rewind proxy`", "mitmdump": "mitmdump"}


@dataclass(frozen=True)
class OutputComparison:
    """Whether the replayed command printed what the recorded one did; a diff if not.

    ``missing`` says why there was nothing to compare with (then ``identical`` means
    nothing and never fails the replay)."""

    identical: bool
    diff: str = ""
    missing: str = ""


def compare_output(
    recorded_stdout: bytes,
    replayed_stdout: bytes,
    recorded_exit: int | None,
    replayed_exit: int,
    recorded_by: str = "record",
) -> OutputComparison:
    """Compare stdout (unified diff) and exit codes (when the recorded one is known),
    unless the session's mode ``recorded_by`` kept no output."""
    if recorded_by in NO_OUTPUT_MODES:
        why = f"the session was recorded by {NO_OUTPUT_MODES[recorded_by]}, which runs no command"
        return OutputComparison(identical=True, missing=why)
    diff = _unified(recorded_stdout, replayed_stdout)
    if recorded_exit is not None and recorded_exit != replayed_exit:
        diff += f"exit code: {replayed_exit} vs recorded {recorded_exit}\n"
    return OutputComparison(identical=not diff, diff=diff)


def _unified(recorded: bytes, replayed: bytes) -> str:
    if recorded == replayed:
        return ""
    lines = difflib.unified_diff(_lines(recorded), _lines(replayed), "recorded", "replayed")
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def _lines(data: bytes) -> list[str]:
    return data.decode("utf-8", "replace").splitlines(keepends=True)


@dataclass
class ReplaySummary:
    """The end of a replay: steps served, misses, unused steps, output comparison."""

    total_recorded: int
    served: int
    misses: list[MissReport] = field(default_factory=list)
    unused: list[StepRecord] = field(default_factory=list)
    output: OutputComparison | None = None  # None when no command was run

    def exit_code(self) -> int:
        """The documented exit code; see the module docstring."""
        if self.misses:
            return EXIT_MISS
        if self.output is not None and not self.output.identical:
            return EXIT_OUTPUT_DIFFERS
        return EXIT_UNUSED_STEPS if self.unused else EXIT_OK

    def lines(self) -> list[str]:
        """The human summary, one line per item."""
        lines = [f"Replayed {self.served}/{self.total_recorded} steps"]
        lines += _miss_lines(self.misses)
        lines += _output_lines(self.output)
        if self.unused:
            lines.append(f"Unused recorded steps: {_step_list(self.unused)}")
        return lines

    def to_json(self) -> dict[str, Any]:
        compared = None if self.output is None or self.output.missing else self.output
        return {
            "replayed": self.served,
            "recorded": self.total_recorded,
            "misses": [m.to_json() for m in self.misses],
            "unused_steps": [s.step for s in self.unused],
            "output_identical": None if compared is None else compared.identical,
            "output_diff": None if compared is None else compared.diff,
            "output_not_compared": (self.output.missing or None) if self.output else None,
            "exit_code": self.exit_code(),
        }


def _miss_lines(misses: Sequence[MissReport]) -> list[str]:
    """Every miss in full; advice that every miss ends with is given once, at the end."""
    if not misses:
        return []
    texts = [miss.text().splitlines() for miss in misses]
    shared = {tuple(text[-1:]) for text in texts}
    advice = texts[0][-1:] if len(texts) > 1 and len(shared) == 1 else []
    lines = [f"Missed requests: {len(misses)}"]
    for text in texts:
        lines += ["  " + line for line in text[: len(text) - len(advice)]]
    return lines + ["  " + line for line in advice]


def _output_lines(output: OutputComparison | None) -> list[str]:
    if output is None:
        return []
    if output.missing:
        return [f"Output not compared: {output.missing}."]
    if output.identical:
        return ["Output identical."]
    return ["Output differs:", *output.diff.splitlines()]


def _step_list(steps: Sequence[StepRecord]) -> str:
    return ", ".join(str(s.step) for s in sorted(steps, key=lambda s: s.step))
