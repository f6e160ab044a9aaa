"""``rewind mutate`` without running agents: which steps are chosen, how runs are
summed up, tabled and turned into an exit code, and what a broken child run reports."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from rich.console import Console

from rewind.cli import mutating
from rewind.cli.mutating import (
    EXIT_NOT_ROBUST,
    MutateReport,
    MutateRequest,
    Run,
    chosen_steps,
    default_timeout,
    faultable,
    one_run,
    parse_steps,
    runs_table,
)
from rewind.errors import ConfigError, RewindError
from rewind.store.home import Home
from rewind.store.models import StepRecord
from tests.unit.cli.conftest import session_info as parent
from tests.unit.replay.factories import make_step

TELEMETRY_URL = "https://api.smith.langchain.com/runs/batch"


def recording() -> list[StepRecord]:
    """Step 1 and 5: LLM calls; 2 telemetry; 3 a WebSocket; 4 a refused connection; 6 an
    interrupted call."""
    return [
        make_step(1, "v1:a"),
        make_step(2, "v1:t", kind="telemetry", url=TELEMETRY_URL, provider=None),
        make_step(
            3, "v1:w", kind="websocket", method="GET", status=101, url="wss://api.openai.com/v1/realtime"
        ),
        make_step(4, "v1:f", status=None, error="connection refused", response_sha=None),
        make_step(5, "v1:b"),
        make_step(6, "v1:c", status=None, response_sha=None),
    ]


def message(caught: pytest.ExceptionInfo[ConfigError]) -> str:
    return f"{caught.value} | {caught.value.hint}"


# --- parse_steps ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "steps"),
    [
        ("3", [3]),
        ("3,5-7", [3, 5, 6, 7]),
        (" 2 , 4-4 ", [2, 4]),
        ("5-7,6,3,5", [5, 6, 7, 3]),
        ("1-3,2-4", [1, 2, 3, 4]),
    ],
)
def test_parse_steps_lists_each_step_once_in_the_order_given(spec: str, steps: list[int]) -> None:
    assert parse_steps(spec) == steps


@pytest.mark.parametrize("spec", ["", "three", "3,", "3;5", "-3", "3-", "1-2-3", "2.5"])
def test_parse_steps_refuses_what_is_not_step_numbers(spec: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_steps(spec)
    assert str(caught.value) == f"invalid --at {spec!r}: expected step numbers like 3,5-7"


@pytest.mark.parametrize(("spec", "part"), [("0", "0"), ("2,0-3", "0-3"), ("7-5", "7-5")])
def test_parse_steps_refuses_ranges_that_are_not_steps(spec: str, part: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_steps(spec)
    assert str(caught.value) == f"invalid --at {spec!r}: {part!r} is not a range of steps from 1"


class _TookTooLong(Exception):
    pass


@pytest.fixture
def one_second() -> Iterator[None]:
    """Raise ``_TookTooLong`` in the test after one second of wall time."""

    def expire(_signum: int, _frame: FrameType | None) -> None:
        raise _TookTooLong

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, 1.0)
    yield
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, previous)


@pytest.mark.usefixtures("one_second")
def test_a_wide_range_is_parsed_or_refused_at_once() -> None:
    try:
        steps = parse_steps("1-100000")
    except ConfigError:
        return
    assert len(steps) == 100_000


# --- default_timeout, faultable, chosen_steps -------------------------------------------------


@pytest.mark.parametrize(
    ("started", "ended", "timeout"),
    [(1_000.0, 1_004.0, 30.0), (1_000.0, 1_020.0, 60.0), (1_000.0, None, 30.0)],
)
def test_default_timeout_is_three_times_the_recording_and_at_least_30_s(
    started: float, ended: float | None, timeout: float
) -> None:
    assert default_timeout(parent(started_at=started, ended_at=ended)) == timeout


def test_faultable_steps_are_answered_http_calls_the_agent_reads() -> None:
    assert [s.step for s in recording() if faultable(s)] == [1, 5]


def test_recorded_error_statuses_can_be_faulted() -> None:
    assert faultable(make_step(1, status=500))


def test_without_at_every_faultable_step_is_chosen() -> None:
    assert [s.step for s in chosen_steps(recording(), None, parent())] == [1, 5]


def test_at_chooses_the_named_steps_in_order() -> None:
    assert [s.step for s in chosen_steps(recording(), "5,1", parent())] == [5, 1]


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("9", "step 9 cannot be faulted: session s-parent has no such step | steps a fault can go to: 1, 5"),
        ("2", "step 2 cannot be faulted: it is a telemetry upload"),
        ("6", "step 6 cannot be faulted: it was never answered"),
        ("3", "step 3 cannot be faulted: it is a WebSocket conversation"),
        ("1,4", "step 4 cannot be faulted: its upstream never answered (connection refused)"),
    ],
)
def test_at_refuses_steps_a_fault_cannot_go_to(spec: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        chosen_steps(recording(), spec, parent())
    assert says in message(caught)


# --- the report -------------------------------------------------------------------------------


def report(*runs: Run, skipped: list[tuple[int, str, str]] | None = None) -> MutateReport:
    return MutateReport(parent(), 30.0, runs=list(runs), skipped=skipped or [])


def test_counts_are_per_fault_with_errors_counted() -> None:
    counts = report(
        Run(1, "429", "survived"),
        Run(2, "429", "failed"),
        Run(3, "429", "survived"),
        Run(1, "timeout", "hung"),
        Run(2, "timeout", error="boom"),
    ).counts()
    assert counts == {"429": {"survived": 2, "failed": 1}, "timeout": {"hung": 1, "error": 1}}


@pytest.mark.parametrize(
    ("outcomes", "code"),
    [
        (["survived", "recovered"], 0),
        (["survived"], 0),
        (["survived", "failed"], EXIT_NOT_ROBUST),
        (["recovered", "hung"], EXIT_NOT_ROBUST),
        (["diverged"], EXIT_NOT_ROBUST),
    ],
)
def test_exit_code_says_whether_every_run_was_robust(outcomes: list[str], code: int) -> None:
    assert EXIT_NOT_ROBUST == 7
    runs = [Run(step, "500", outcome) for step, outcome in enumerate(outcomes, 1)]
    assert report(*runs).exit_code() == code


def test_a_run_that_errored_makes_the_exit_code_1() -> None:
    assert report(Run(1, "500", "failed"), Run(2, "500", error="no result")).exit_code() == 1
    assert report(Run(1, "500", "survived"), Run(2, "500", error="no result")).exit_code() == 1


def test_to_json_sorts_runs_by_step_then_fault_order() -> None:
    doc = report(
        Run(3, "timeout", "hung", "s-3t", 143, True),
        Run(1, "bad_tool_args", "recovered", "s-1b", 0, True),
        Run(3, "429", "survived", "s-3a", 0, False),
        Run(1, "429", error="exit 2, no result"),
        skipped=[(3, "bad_tool_args", "the response has no tool call")],
    ).to_json()
    assert doc == {
        "session": "s-parent",
        "timeout_s": 30.0,
        "runs": [
            {"step": 1, "fault": "429", "outcome": None, "session": None, "exit_code": None,
             "fault_served": None, "error": "exit 2, no result"},
            {"step": 1, "fault": "bad_tool_args", "outcome": "recovered", "session": "s-1b", "exit_code": 0,
             "fault_served": True, "error": None},
            {"step": 3, "fault": "429", "outcome": "survived", "session": "s-3a", "exit_code": 0,
             "fault_served": False, "error": None},
            {"step": 3, "fault": "timeout", "outcome": "hung", "session": "s-3t", "exit_code": 143,
             "fault_served": True, "error": None},
        ],
        "skipped": [{"step": 3, "fault": "bad_tool_args", "why": "the response has no tool call"}],
        "counts": {"timeout": {"hung": 1}, "bad_tool_args": {"recovered": 1},
                   "429": {"survived": 1, "error": 1}},
    }  # fmt: skip
    json.dumps(doc)


def test_runs_table_has_faults_down_and_steps_across() -> None:
    table = runs_table(
        report(
            Run(3, "timeout", "hung"),
            Run(1, "429", "survived"),
            Run(3, "429", "failed"),
            Run(1, "timeout", "recovered"),
            Run(1, "reset", error="boom"),
        )
    )
    console = Console(record=True, width=200, file=io.StringIO())
    console.print(table)
    assert [line.strip() for line in console.export_text().splitlines()] == [
        "mutate s-parent",
        "┏━━━━━━━━━┳━━━━━━━━━━━┳━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━┓",
        "┃ FAULT   ┃ step 1    ┃ step 3 ┃ COUNTS               ┃",
        "┡━━━━━━━━━╇━━━━━━━━━━━╇━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━┩",
        "│ 429     │ survived  │ failed │ 1 failed, 1 survived │",
        "│ timeout │ recovered │ hung   │ 1 hung, 1 recovered  │",
        "│ reset   │ error     │ -      │ 1 error              │",
        "└─────────┴───────────┴────────┴──────────────────────┘",
    ]


# --- one_run ----------------------------------------------------------------------------------


class FakeRun:
    """Stands in for ``subprocess.Popen``: notes the call; its process prints what it is
    given, or never ends (``raises``)."""

    def __init__(self, stdout: bytes = b"", stderr: bytes = b"", returncode: int = 0) -> None:
        self.stdout, self.stderr, self.code = stdout, stderr, returncode
        self.raises: BaseException | None = None
        self.argv: list[str] = []
        self.kwargs: dict[str, Any] = {}
        self.timeout: float | None = None
        self.killed = False
        self.returncode: int | None = None

    def __call__(self, argv: list[str], **kwargs: Any) -> FakeRun:
        self.argv, self.kwargs = argv, kwargs
        return self

    def communicate(self, timeout: float | None = None) -> tuple[bytes, bytes]:
        if timeout is not None:
            self.timeout = timeout
        if self.raises is not None and not self.killed:
            raise self.raises
        self.returncode = self.code
        return self.stdout, self.stderr

    def kill(self) -> None:
        self.killed = True

    def poll(self) -> int | None:
        return self.returncode


def mutate_request(tmp_path: Path, command: tuple[str, ...] = ()) -> MutateRequest:
    return MutateRequest(ref="s-parent", home=Home(tmp_path / "home"), faults=("429",), retry_after_s=3,
                         command=command)  # fmt: skip


def run_with(monkeypatch: pytest.MonkeyPatch, fake: FakeRun, tmp_path: Path) -> Run:
    monkeypatch.setattr(subprocess, "Popen", fake)
    return one_run(mutate_request(tmp_path), parent(), 4, "timeout", 30.0)


def test_one_run_reads_the_child_branch_json(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    doc = {"session": "s-child", "outcome": "hung", "exit_code": 143, "fault_served": True, "steps": 2}
    run = run_with(monkeypatch, FakeRun(json.dumps(doc).encode()), tmp_path)
    assert run == Run(4, "timeout", "hung", "s-child", 143, True, None)


def test_one_run_asks_rewind_branch_for_one_fault(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = FakeRun(b"{}")
    monkeypatch.setattr(subprocess, "Popen", fake)
    one_run(mutate_request(tmp_path, ("python", "fixed.py")), parent(), 4, "429", 30.0)
    assert fake.argv == [
        sys.executable, "-m", "rewind", "--home", str(tmp_path / "home"), "branch", "s-parent",
        "--at", "4", "--fault", "429", "--timeout", "30.0", "--retry-after", "3", "--json",
        "--", "python", "fixed.py",
    ]  # fmt: skip
    assert fake.timeout == 30.0 + mutating.RUN_SLACK_S


def test_a_child_without_json_reports_its_last_stderr_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake = FakeRun(b"", b"Traceback (most recent call last):\n  ...\nrewind: error: store is busy\n\n", 1)
    run = run_with(monkeypatch, fake, tmp_path)
    assert (run.outcome, run.session, run.error) == (None, None, "rewind: error: store is busy")


def test_a_child_without_json_or_stderr_reports_its_exit(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    run = run_with(monkeypatch, FakeRun(b"not json\n", b"", -9), tmp_path)
    assert run.error == "exit -9, no result" and run.outcome is None


def test_a_child_that_never_ends_is_an_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = FakeRun()
    fake.raises = subprocess.TimeoutExpired([], 90.0)
    run = run_with(monkeypatch, fake, tmp_path)
    assert run.error == "its rewind process did not end within 90 s" and fake.killed
    assert report(run).exit_code() == 1


def test_an_interrupt_starts_no_more_runs_and_says_how_many_completed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    started: list[tuple[int, str]] = []

    def quick_run(_req: Any, _info: Any, step: int, fault: str, _timeout: float) -> Run:
        started.append((step, fault))
        if len(started) > 1:  # the first ends at once; later ones are still running at the interrupt
            time.sleep(1.0)
        return Run(step, fault, "survived", f"s-{step}")

    def interrupted(_line: str) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(mutating, "one_run", quick_run)
    pairs = [(n, "429") for n in range(1, 9)]
    with pytest.raises(RewindError, match="interrupted: 1 of 8 run") as caught:
        mutating._run_all(mutate_request(tmp_path), parent(), pairs, 30.0, interrupted)
    assert len(started) <= 3 and "kept its session" in (caught.value.hint or "")
