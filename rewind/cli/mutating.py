"""``rewind mutate``: one offline run per (step, fault), in parallel. Click-free.

Each run is its own ``rewind branch SESSION --at N --fault F --json`` process: its own
proxy, its own session (mode ``mutate``), its own time bound, and nothing shared with
the other runs but the store, which takes concurrent recordings. Everything is checked
before the first run starts: the steps exist and can be faulted, and each fault applies
to each step (a fault that cannot, such as ``bad_tool_args`` at a step without a tool
call, is listed as skipped, never run).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from typing import Any

from rich.table import Table
from rich.text import Text

from rewind.capture.runner import resolve_command
from rewind.cli.branching import Outcome, step_ranges
from rewind.cli.replaying import command_of
from rewind.errors import ConfigError, RewindError
from rewind.replay.engine import is_telemetry_step, is_websocket
from rewind.replay.faults import not_applicable
from rewind.replay.matcher import is_failure, is_replayable
from rewind.store.home import Home
from rewind.store.index import Store
from rewind.store.models import SessionInfo, StepRecord

EXIT_NOT_ROBUST = 7
MIN_TIMEOUT_S = 30.0
MAX_RANGE = 10_000  # one run per step: a wider --at range is a typo, not a plan
# A run is killed by its own bound; this much longer and its rewind process is killed too.
RUN_SLACK_S = 60.0
_STYLE = {"survived": "green", "recovered": "yellow", "failed": "red", "hung": "magenta", "diverged": "cyan"}


@dataclass(frozen=True)
class MutateRequest:
    ref: str
    home: Home
    faults: tuple[str, ...]
    steps: str | None = None
    jobs: int = 2
    timeout_s: float | None = None
    retry_after_s: int = 1
    command: tuple[str, ...] = ()


@dataclass
class Run:
    step: int
    fault: str
    outcome: str | None = None
    session: str | None = None
    exit_code: int | None = None
    fault_served: bool | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class MutateReport:
    parent: SessionInfo
    timeout_s: float
    runs: list[Run] = field(default_factory=list)
    skipped: list[tuple[int, str, str]] = field(default_factory=list)  # step, fault, why

    def counts(self) -> dict[str, dict[str, int]]:
        """Per fault, how many runs ended each way."""
        out: dict[str, Counter[str]] = {}
        for run in self.runs:
            out.setdefault(run.fault, Counter())[run.outcome or "error"] += 1
        return {fault: dict(counter) for fault, counter in out.items()}

    def to_json(self) -> dict[str, Any]:
        return {
            "session": self.parent.id,
            "timeout_s": self.timeout_s,
            "runs": [run.to_json() for run in sorted(self.runs, key=_order)],
            "skipped": [{"step": s, "fault": f, "why": why} for s, f, why in self.skipped],
            "counts": self.counts(),
        }

    def exit_code(self) -> int:
        if any(run.error for run in self.runs):
            return 1
        robust = (Outcome.SURVIVED.value, Outcome.RECOVERED.value)
        return 0 if all(run.outcome in robust for run in self.runs) else EXIT_NOT_ROBUST

    def lines(self) -> list[str]:
        """What to say under the table: errors, faults never reached, skipped pairs."""
        out = [
            f"rewind: run step {r.step} {r.fault} did not complete: {r.error}" for r in self.runs if r.error
        ]
        unreached = [r for r in self.runs if r.fault_served is False]
        out += [
            f"rewind: note: step {r.step} was never asked for in the {r.fault} run, so no fault was served"
            for r in unreached
        ]
        out += [f"rewind: skipped {f} at step {s}: {why}" for s, f, why in self.skipped]
        out.append(
            f"{len(self.runs)} run(s); each is a session: `rewind inspect ID`, "
            f"`rewind diff {self.parent.id} ID`"
        )
        return out


def _order(run: Run) -> tuple[int, int]:
    from rewind.replay.faults import FAULT_NAMES

    return run.step, FAULT_NAMES.index(run.fault) if run.fault in FAULT_NAMES else len(FAULT_NAMES)


def mutate(req: MutateRequest, progress: Callable[[str], None] | None = None) -> MutateReport:
    """Every (step, fault) run, checked first, then run ``req.jobs`` at a time."""
    info, steps, blobs = Store(req.home).load(req.ref)
    command, cwd = command_of(info, req.command)  # a session without a command: said once, now
    resolve_command(command, os.environ, cwd)
    chosen = chosen_steps(steps, req.steps, info)
    report = MutateReport(info, req.timeout_s or default_timeout(info))
    pairs: list[tuple[int, str]] = []
    for step in chosen:
        body = blobs.get(step.response_sha or "", b"")
        for fault in req.faults:
            why = not_applicable(fault, step, body)
            if why:
                report.skipped.append((step.step, fault, why))
            else:
                pairs.append((step.step, fault))
    if not pairs:
        raise ConfigError(
            "no (step, fault) pair applies to this session",
            hint="see `rewind inspect` for its steps; bad_tool_args needs a step whose response calls a tool",
        )
    report.runs = _run_all(req, info, pairs, report.timeout_s, progress)
    return report


def chosen_steps(steps: Sequence[StepRecord], spec: str | None, info: SessionInfo) -> list[StepRecord]:
    """The steps ``--at`` names (each checked), or every step a fault can go to."""
    if spec is None:
        return [s for s in steps if faultable(s)]
    by_number = {s.step: s for s in steps}
    hint = "steps a fault can go to: " + (
        ", ".join(step_ranges([s.step for s in steps if faultable(s)])) or "none"
    )
    chosen = []
    for number in parse_steps(spec):
        step = by_number.get(number)
        why = f"session {info.id} has no such step" if step is None else not_faultable(step)
        if why:
            raise ConfigError(f"step {number} cannot be faulted: {why}", hint=hint)
        assert step is not None
        chosen.append(step)
    return chosen


def not_faultable(step: StepRecord) -> str | None:
    """Why no fault can go to ``step``; ``None`` for a recorded HTTP answer the agent read."""
    if is_telemetry_step(step):
        return "it is a telemetry upload, which replay always answers itself"
    if is_websocket(step):
        return "it is a WebSocket conversation"
    if is_failure(step):
        return f"its upstream never answered ({step.error})"
    if not is_replayable(step):
        return "it was never answered (the recording was interrupted there)"
    return None


def faultable(step: StepRecord) -> bool:
    """A recorded HTTP answer the agent read: not telemetry, a WebSocket or a failure."""
    return not_faultable(step) is None


def parse_steps(spec: str) -> list[int]:
    """``3,5-7`` as ``[3, 5, 6, 7]``; ``ConfigError`` for anything else."""
    out: list[int] = []
    seen: set[int] = set()
    for part in (p.strip() for p in spec.split(",")):
        low, dash, high = part.partition("-")
        try:
            first, last = int(low), int(high if dash else low)
        except ValueError:
            raise ConfigError(f"invalid --at {spec!r}: expected step numbers like 3,5-7") from None
        if first < 1 or last < first:
            raise ConfigError(f"invalid --at {spec!r}: {part!r} is not a range of steps from 1")
        if last - first > MAX_RANGE:
            raise ConfigError(f"invalid --at {spec!r}: {part!r} spans more than {MAX_RANGE} steps")
        fresh = [n for n in range(first, last + 1) if n not in seen]
        seen.update(fresh)
        out.extend(fresh)
    return out


def default_timeout(info: SessionInfo) -> float:
    """Three times the recorded run, and never under 30 s."""
    took = (info.ended_at - info.started_at) if info.ended_at is not None else 0.0
    return max(MIN_TIMEOUT_S, 3 * took)


def _run_all(
    req: MutateRequest,
    info: SessionInfo,
    pairs: list[tuple[int, str]],
    timeout_s: float,
    progress: Callable[[str], None] | None,
) -> list[Run]:
    """The runs, ``req.jobs`` at a time. Interrupted (Ctrl-C), the runs not started never
    start, the running ones are interrupted in turn (each keeps the session it recorded),
    and the error says how many completed."""
    runs: list[Run] = []
    lock = threading.Lock()
    pool = ThreadPoolExecutor(max_workers=req.jobs, thread_name_prefix="rewind-mutate")
    try:
        futures = [pool.submit(one_run, req, info, step, fault, timeout_s) for step, fault in pairs]
        for future in as_completed(futures):
            run = future.result()
            with lock:
                runs.append(run)
                if progress is not None:
                    what = run.outcome or f"error: {run.error}"
                    progress(
                        f"[{len(runs)}/{len(pairs)}] step {run.step} {run.fault}: {what}"
                        + (f" (session {run.session})" if run.session else "")
                    )
    except KeyboardInterrupt:
        pool.shutdown(wait=False, cancel_futures=True)
        RUNNING.interrupt()
        pool.shutdown(wait=True)
        raise RewindError(
            f"interrupted: {len(runs)} of {len(pairs)} run(s) completed",
            hint="each run that started kept its session (mode mutate): `rewind list --tree`",
        ) from None
    pool.shutdown()
    return runs


class _Running:
    """The run processes alive now, so that an interrupt reaches them too."""

    def __init__(self) -> None:
        self._procs: set[subprocess.Popen[bytes]] = set()
        self._lock = threading.Lock()

    def add(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._procs.add(proc)

    def discard(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._procs.discard(proc)

    def interrupt(self) -> None:
        with self._lock:
            for proc in self._procs:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGINT)


RUNNING = _Running()


def one_run(req: MutateRequest, info: SessionInfo, step: int, fault: str, timeout_s: float) -> Run:
    """One ``rewind branch --fault`` process, and what its JSON says."""
    argv = [
        sys.executable,
        "-m",
        "rewind",
        "--home",
        str(req.home.root),
        "branch",
        info.id,
        "--at",
        str(step),
        "--fault",
        fault,
        "--timeout",
        str(timeout_s),
        "--retry-after",
        str(req.retry_after_s),
        "--json",
        *(("--", *req.command) if req.command else ()),
    ]
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=dict(os.environ)
    )
    RUNNING.add(proc)
    try:
        out, err = proc.communicate(timeout=timeout_s + RUN_SLACK_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return Run(
            step, fault, error=f"its rewind process did not end within {timeout_s + RUN_SLACK_S:.0f} s"
        )
    finally:
        RUNNING.discard(proc)
    done = subprocess.CompletedProcess(argv, proc.returncode, out, err)
    try:
        doc = json.loads(done.stdout)
    except ValueError:
        lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
        return Run(step, fault, error=lines[-1] if lines else f"exit {done.returncode}, no result")
    return Run(
        step,
        fault,
        outcome=doc.get("outcome"),
        session=doc.get("session"),
        exit_code=doc.get("exit_code"),
        fault_served=doc.get("fault_served"),
    )


def runs_table(report: MutateReport) -> Table:
    """Faults down, steps across, each cell the run's outcome; counts per fault."""
    steps = sorted({run.step for run in report.runs})
    table = Table(title=f"mutate {report.parent.id}")
    table.add_column("FAULT", no_wrap=True)
    for step in steps:
        table.add_column(f"step {step}", no_wrap=True)
    table.add_column("COUNTS")
    cells = {(run.fault, run.step): run for run in report.runs}
    counts = report.counts()
    for fault in dict.fromkeys(run.fault for run in sorted(report.runs, key=_order)):
        row = [Text(fault)]
        for step in steps:
            run = cells.get((fault, step))
            row.append(_cell(run))
        row.append(Text(", ".join(f"{n} {outcome}" for outcome, n in sorted(counts[fault].items()))))
        table.add_row(*row)
    return table


def _cell(run: Run | None) -> Text:
    if run is None:
        return Text("-", style="dim")
    word = run.outcome or "error"
    return Text(word, style=_STYLE.get(word, "bold red"))
