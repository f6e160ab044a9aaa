"""Running the agent: exit codes, output kept, command not found."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator

import pytest

from rewind.capture import runner
from rewind.capture.runner import resolve_command, run_command
from rewind.errors import CommandNotFound


def test_keeps_output_and_exit_code(capfd: pytest.CaptureFixture[str]) -> None:
    code = "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"
    result = run_command([sys.executable, "-c", code], dict(os.environ), os.getcwd())
    assert (result.exit_code, result.stdout, result.stderr) == (3, b"out\n", b"err\n")
    seen = capfd.readouterr()
    assert seen.out == "out\n" and seen.err == "err\n"  # tee'd live too


def test_killed_child_gives_shell_style_code() -> None:
    code = "import os, signal; os.kill(os.getpid(), signal.SIGTERM)"
    result = run_command([sys.executable, "-c", code], dict(os.environ), os.getcwd())
    assert result.exit_code == 128 + 15


def test_missing_command_is_127() -> None:
    with pytest.raises(CommandNotFound) as info:
        resolve_command(["definitely-not-a-command-xyz"], dict(os.environ), os.getcwd())
    assert info.value.exit_code == 127
    with pytest.raises(CommandNotFound):
        resolve_command([], {}, "/")


# --- a time bound: the whole process group is killed, what it printed kept ------------------


BOUND_S = 0.5
GRACE_S = 0.3


@pytest.fixture(autouse=True)
def short_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "KILL_GRACE_S", GRACE_S)


@pytest.fixture
def spawned() -> Iterator[list[int]]:
    """Pids the scripts report; any still alive after the test is killed."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    """A process that runs (an unreaped zombie is dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _gone(pid: int, within_s: float = 2.0) -> bool:
    deadline = time.monotonic() + within_s
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _sh(script: str, timeout_s: float | None = BOUND_S) -> runner.CommandResult:
    return run_command(["sh", "-c", script], dict(os.environ), os.getcwd(), timeout_s)


def test_a_command_that_ends_in_time_keeps_its_exit_code() -> None:
    code = "import sys; print('done'); sys.exit(4)"
    result = run_command([sys.executable, "-c", code], dict(os.environ), os.getcwd(), timeout_s=10)
    assert (result.exit_code, result.timed_out, result.stdout) == (4, False, b"done\n")


def test_without_a_bound_nothing_times_out() -> None:
    result = _sh("sleep 0.2; echo slow", timeout_s=None)
    assert (result.exit_code, result.timed_out, result.stdout) == (0, False, b"slow\n")


def test_a_command_past_its_bound_is_killed_with_its_whole_group(spawned: list[int]) -> None:
    started = time.monotonic()
    result = _sh("sleep 30 & echo $!; echo partial >&2; sleep 30")
    took = time.monotonic() - started
    spawned.append(int(result.stdout))
    assert result.timed_out
    assert result.exit_code == 128 + signal.SIGTERM
    assert result.stderr == b"partial\n"  # what it printed before the kill is kept
    assert BOUND_S <= took < BOUND_S + 5
    assert _gone(spawned[0]), "the background child outlived the bound"


def test_a_command_that_ignores_sigterm_is_killed(spawned: list[int]) -> None:
    started = time.monotonic()
    result = _sh("trap '' TERM; sleep 30 & echo $!; sleep 30")
    took = time.monotonic() - started
    spawned.append(int(result.stdout))
    assert result.timed_out
    assert result.exit_code == 128 + signal.SIGKILL
    assert BOUND_S + GRACE_S <= took < BOUND_S + 5
    assert _gone(spawned[0])


def test_a_group_member_that_ignores_sigterm_is_killed_too(spawned: list[int]) -> None:
    script = "(trap '' TERM; exec sleep 30) >/dev/null 2>&1 & echo $!; sleep 30"
    result = _sh(script)
    spawned.append(int(result.stdout))
    assert result.timed_out
    assert _gone(spawned[0], within_s=GRACE_S + 0.5)


def test_the_bound_holds_when_a_group_member_ignores_sigterm(spawned: list[int]) -> None:
    started = time.monotonic()
    result = _sh("(trap '' TERM; exec sleep 2) & echo $!; sleep 30")
    took = time.monotonic() - started
    spawned.append(int(result.stdout))
    assert result.timed_out
    assert took < BOUND_S + GRACE_S + 1
