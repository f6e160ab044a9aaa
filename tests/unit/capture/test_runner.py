"""Running the agent: exit codes, output kept, command not found."""

from __future__ import annotations

import os
import sys

import pytest

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
