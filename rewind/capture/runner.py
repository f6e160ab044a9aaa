"""Run the agent command: output tee'd live and kept, signals handled, exit code returned.

Ctrl-C in a terminal reaches the whole foreground process group, so the agent gets it
directly; Rewind keeps running and saves the session after the agent exits. A SIGINT that
cannot have come from the terminal (Rewind is not its foreground group, e.g. in CI) is
passed on to the agent after a short grace period, unless the agent has exited by then
(a signal to the whole group reached it already). SIGTERM and SIGHUP are passed on.

With a time bound (``rewind mutate``, ``branch --timeout``) the agent runs in its own
process group, so that when the bound passes the whole group (a shell and its curl, say)
gets SIGTERM and, after a grace period, SIGKILL; the result says it ``timed_out``. Such an
agent is not in the terminal's foreground group, so SIGINT is always passed on to it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any

from rewind.errors import CommandNotFound

FORWARDED = (signal.SIGTERM, signal.SIGHUP)
_USER_UMASK: list[int] = []


def private_umask() -> None:
    """Files Rewind creates are its owner's only (0600/0700); the agent keeps the user's umask."""
    if not _USER_UMASK:
        _USER_UMASK.append(os.umask(0o077))


def user_umask() -> int:
    """The umask the user started Rewind with."""
    if _USER_UMASK:
        return _USER_UMASK[0]
    current = os.umask(0o022)
    os.umask(current)
    return current


@dataclass
class CommandResult:
    exit_code: int
    stdout: bytes
    stderr: bytes
    started_at: float
    ended_at: float
    timed_out: bool = False  # killed when its time bound passed


def resolve_command(argv: Sequence[str], env: Mapping[str, str], cwd: str) -> str:
    """The executable for ``argv[0]``, or CommandNotFound (exit 127)."""
    if not argv:
        raise CommandNotFound("no command given", hint="usage: rewind record -- CMD [ARGS...]")
    program = argv[0]
    if os.sep in program:
        path = program if os.path.isabs(program) else os.path.join(cwd, program)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    elif found := shutil.which(program, path=env.get("PATH")):
        return found
    raise CommandNotFound(f"command not found: {program}", hint="check the command and your PATH")


def run_command(
    argv: Sequence[str], env: Mapping[str, str], cwd: str, timeout_s: float | None = None
) -> CommandResult:
    """Run ``argv`` to completion (or until ``timeout_s`` passes), echoing its output live
    and keeping a copy."""
    started = time.time()
    executable = resolve_command(argv, env, cwd)
    bounded = timeout_s is not None
    with _signals_for_child(own_group=bounded) as adopt:
        child = subprocess.Popen(
            [executable, *argv[1:]],
            env=dict(env),
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            umask=user_umask(),
            process_group=0 if bounded else None,
        )
        adopt(child)
        out, err = _tee(child.stdout, sys.stdout), _tee(child.stderr, sys.stderr)
        code, timed_out = _wait(child, timeout_s)
        stdout, stderr = out.result(), err.result()
    return CommandResult(_exit_code(code), stdout, stderr, started, time.time(), timed_out)


KILL_GRACE_S = 2.0


def _wait(child: subprocess.Popen[bytes], timeout_s: float | None) -> tuple[int, bool]:
    """The child's return code, and whether its group had to be killed at the bound: SIGTERM
    to the group, then, after the grace period, SIGKILL to whatever of it is left (the
    leader may be gone while a member that ignores SIGTERM still holds the output pipes)."""
    try:
        return child.wait(timeout=timeout_s), False
    except subprocess.TimeoutExpired:
        pass
    _signal_group(child.pid, signal.SIGTERM)
    deadline = time.monotonic() + KILL_GRACE_S
    with contextlib.suppress(subprocess.TimeoutExpired):
        child.wait(timeout=KILL_GRACE_S)
    while _group_alive(child.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    _signal_group(child.pid, signal.SIGKILL)
    return child.wait(), True


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _exit_code(code: int) -> int:
    """A shell-style exit code: 128 + N for a child killed by signal N."""
    return 128 - code if code < 0 else code


class _Tee:
    def __init__(self, source: IO[bytes], target: Any) -> None:
        self.parts: list[bytes] = []
        self._thread = threading.Thread(target=self._pump, args=(source, target), daemon=True)
        self._thread.start()

    def _pump(self, source: IO[bytes], target: Any) -> None:
        sink = getattr(target, "buffer", None)
        while chunk := os.read(source.fileno(), 65536):
            self.parts.append(chunk)
            if sink is not None:
                sink.write(chunk)
                sink.flush()
            else:
                target.write(chunk.decode("utf-8", "replace"))
                target.flush()

    def result(self) -> bytes:
        self._thread.join()
        return b"".join(self.parts)


def _tee(source: IO[bytes] | None, target: Any) -> _Tee:
    assert source is not None
    return _Tee(source, target)


INTERRUPT_GRACE_S = 1.0


def in_terminal_foreground() -> bool:
    """Whether Rewind is the foreground process group of its terminal (so Ctrl-C there
    reaches the agent too)."""
    for fd in (0, 1, 2):
        try:
            if os.isatty(fd):
                return os.tcgetpgrp(fd) == os.getpgrp()
        except OSError:
            continue
    return False


@contextmanager
def _signals_for_child(own_group: bool = False) -> Iterator[Any]:
    """SIGINT: the terminal already sent it to the agent (unless it runs in its own
    group); otherwise pass it on after a grace period, unless the agent has exited by
    then. SIGTERM and SIGHUP: pass on."""
    holder: list[subprocess.Popen[bytes]] = []

    def forward(signum: int, _frame: object = None) -> None:
        if holder and holder[0].poll() is None:
            if own_group:  # the agent's whole group, as a terminal would
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(holder[0].pid, signum)
            else:
                holder[0].send_signal(signum)

    def interrupt(signum: int, _frame: object) -> None:
        # Not SIG_IGN: the child would inherit it. Rewind itself keeps running until the
        # agent exits, so the session is always saved.
        if own_group or not in_terminal_foreground():
            timer = threading.Timer(INTERRUPT_GRACE_S, forward, args=(signum,))
            timer.daemon = True
            timer.start()

    if threading.current_thread() is not threading.main_thread():
        yield holder.append
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, *FORWARDED)}
    signal.signal(signal.SIGINT, interrupt)
    for sig in FORWARDED:
        signal.signal(sig, forward)
    try:
        yield holder.append
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
