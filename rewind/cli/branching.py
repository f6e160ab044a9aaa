"""Branching a recorded session at one step, and one fault-injection run. Click-free.

``branch`` checks everything it was given against the parent session before anything
runs (the step exists and can be changed; the response file is valid for that step's
provider and streaming; the patch applies to the recorded request), then records the
re-run as a new session whose ``parent_id`` and ``fork_step`` say where it came from.
With a fault the run stays offline and is classified (``Outcome``) for ``rewind mutate``.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from rewind.capture.listeners import ListenerPorts
from rewind.capture.local import local_ports_of
from rewind.capture.runner import CommandResult, run_command
from rewind.capture.wiring import Wiring
from rewind.cli.render import visible
from rewind.cli.replaying import command_of, replay_environ
from rewind.cli.run import Body, RecordOutcome, RecordRequest, load_redactor, record
from rewind.errors import ConfigError
from rewind.replay.edits import edited_response, load_json_file, patch_request
from rewind.replay.engine import ReplayEngine, is_telemetry_step, is_websocket
from rewind.replay.faults import not_applicable
from rewind.replay.forking import BranchAddon, ForkSpec
from rewind.replay.matcher import is_failure, is_replayable
from rewind.replay.outcome import compare_output
from rewind.replay.pace import FAST
from rewind.replay.playback import PlaybackThread
from rewind.store.home import Home
from rewind.store.index import Store
from rewind.store.models import SessionInfo, StepRecord


class Outcome(StrEnum):
    """How a fault-injection run ended (``rewind mutate``)."""

    SURVIVED = "survived"  # exit 0, the recorded output
    RECOVERED = "recovered"  # exit 0, other output
    FAILED = "failed"  # non-zero exit
    HUNG = "hung"  # killed at the time bound
    DIVERGED = "diverged"  # asked for something never recorded (a miss)


@dataclass(frozen=True)
class BranchRequest:
    ref: str
    at: int
    environ: Mapping[str, str]
    command: tuple[str, ...] = ()
    name: str | None = None
    response: Path | None = None
    status: int | None = None
    request_patch: Path | None = None
    fault: str | None = None
    routes: Mapping[str, str] | None = None
    redact: tuple[str, ...] = ()
    timeout_s: float | None = None
    retry_after_s: int = 1


@dataclass
class BranchResult:
    parent: SessionInfo
    outcome: RecordOutcome
    spec: ForkSpec
    fork_request: int | None
    early: list[int]
    live_calls: int
    served: int
    misses: list[str] = field(default_factory=list)
    patch_error: str | None = None
    output_identical: bool = True
    classified: Outcome | None = None

    @property
    def session_id(self) -> str:
        return self.outcome.session_id

    def to_json(self) -> dict[str, Any]:
        result = self.outcome.result
        return {
            "session": self.session_id,
            "parent": self.parent.id,
            "fork_step": self.spec.at,
            "fault": self.spec.fault,
            "outcome": self.classified.value if self.classified else None,
            "fault_served": self.fork_request is not None if self.spec.fault else None,
            "forked_at_request": self.fork_request,
            "forked_early": bool(self.early),
            "replayed": self.served,
            "live_calls": self.live_calls,
            "misses": self.misses,
            "exit_code": result.exit_code,
            "timed_out": result.timed_out,
            "output_identical": self.output_identical,
            "patch_error": self.patch_error,
            "steps": self.outcome.tally.steps,
        }


def branch(home: Home, req: BranchRequest) -> BranchResult:
    """Re-run the parent's (or the given) command, forked at step ``req.at``."""
    info, steps, blobs = Store(home).load(req.ref)
    target = fork_target(steps, req.at, info)
    spec = fork_spec(req, target, blobs)
    command, cwd = command_of(info, req.command)
    if req.fault is None:
        _warn_missing_keys(steps, req.environ)
    redactor = load_redactor(home, req.redact, req.environ)
    kept = steps if req.fault is not None else [s for s in steps if s.step < req.at]
    engine = ReplayEngine(kept, blobs, redactor)
    playback = PlaybackThread(FAST)
    playback.start()
    addon = BranchAddon(
        spec,
        engine,
        playback,
        notify=_to_stderr,
        ports=ListenerPorts(),
        local_ports=local_ports_of(info.upstreams),
    )
    upstreams = info.upstreams
    run = RecordRequest(
        command=command,
        cwd=cwd,
        environ=replay_environ(req.environ, upstreams),
        upstreams=upstreams,
        name=req.name or _default_name(info, req),
        routes=dict(info.routes if req.routes is None else req.routes),
        redact=req.redact,
        mode="mutate" if req.fault is not None else "branch",
        parent_id=info.id,
        fork_step=req.at,
        fault=req.fault,
    )
    try:
        outcome = record(
            home, run, body=_bounded(run, req.timeout_s), extra_addons=[addon], ports=addon.ports
        )
    finally:
        playback.stop()
    return _result(info, outcome, addon, blobs, redactor.redact_output(outcome.result.stdout))


def fork_target(steps: list[StepRecord], at: int, info: SessionInfo) -> StepRecord:
    """The parent's step ``at``, if a run can fork there; ``ConfigError`` saying why not."""
    forkable = [s for s in steps if is_replayable(s) and not is_telemetry_step(s)]
    numbers = ", ".join(step_ranges([s.step for s in forkable])) or "none"
    by_number = {s.step: s for s in steps}
    step = by_number.get(at)
    if step is None:
        has = f"it has steps 1 to {max(by_number)}" if by_number else "it has no steps"
        raise ConfigError(
            f"session {info.id} has no step {at} ({has})",
            hint=f"steps a run can fork at: {numbers}; `rewind inspect {info.id}` lists them",
        )
    if is_telemetry_step(step):
        raise ConfigError(
            f"step {at} is a telemetry upload, which replay always answers itself",
            hint=f"fork at a call the agent reads: {numbers}",
        )
    if not is_replayable(step):
        raise ConfigError(
            f"step {at} was never answered (the recording was interrupted there)",
            hint=f"fork at an answered step: {numbers}",
        )
    return step


def fork_spec(req: BranchRequest, step: StepRecord, blobs: Mapping[str, bytes]) -> ForkSpec:
    """What happens at the fork, checked against the recorded step before anything runs."""
    given = [
        name
        for name, value in (
            ("--response", req.response),
            ("--request-patch", req.request_patch),
            ("--fault", req.fault),
        )
        if value is not None
    ]
    if len(given) > 1:
        raise ConfigError(
            f"{' and '.join(given)} cannot be combined: a step is either answered, patched or faulted"
        )
    if req.status is not None and req.response is None:
        raise ConfigError("--status goes with --response FILE (the status to serve it with)")
    if req.response is not None:
        _check_http(step, "--response")
        body = _read(req.response, "--response")
        return ForkSpec(req.at, response=edited_response(step, body, req.status))
    if req.request_patch is not None:
        patch = load_json_file(req.request_patch, "--request-patch")
        patch_request(blobs.get(step.request_sha, b""), patch, step.step)  # fails now, not mid-run
        return ForkSpec(req.at, patch=lambda body: patch_request(body, patch, step.step))
    if req.fault is not None:
        _check_http(step, f"--fault {req.fault}")
        why = not_applicable(req.fault, step, blobs.get(step.response_sha or "", b""))
        if why:
            raise ConfigError(f"fault {req.fault!r} does not apply to step {step.step}: {why}")
        return ForkSpec(req.at, fault=req.fault, retry_after_s=req.retry_after_s)
    return ForkSpec(req.at)


def _check_http(step: StepRecord, option: str) -> None:
    if is_websocket(step):
        raise ConfigError(
            f"{option} cannot change step {step.step}: it is a WebSocket conversation",
            hint="branch there without it, and the conversation goes live",
        )
    if is_failure(step):
        raise ConfigError(
            f"{option} cannot change step {step.step}: its upstream never answered ({step.error})",
            hint="branch there without it, and the step goes live",
        )


def _read(path: Path, option: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{option} {path}: {exc.strerror or exc}") from exc


def step_ranges(numbers: list[int]) -> list[str]:
    """``[1, 2, 3, 5]`` as ``["1-3", "5"]``."""
    out: list[str] = []
    for n in sorted(numbers):
        if out and out[-1].split("-")[-1] == str(n - 1):
            out[-1] = f"{out[-1].split('-')[0]}-{n}"
        else:
            out.append(str(n))
    return out


def _default_name(info: SessionInfo, req: BranchRequest) -> str:
    base = info.name or info.id
    return f"{base}-{req.fault}@{req.at}" if req.fault else f"{base}-branch@{req.at}"


def _bounded(run: RecordRequest, timeout_s: float | None) -> Body:
    """The recording's body: the command, killed when ``timeout_s`` passes."""

    def body(_wiring: Wiring, env: dict[str, str]) -> CommandResult:
        return run_command(run.command, env, run.cwd, timeout_s)

    return body


def _result(
    info: SessionInfo, outcome: RecordOutcome, addon: BranchAddon, blobs: Mapping[str, bytes], stdout: bytes
) -> BranchResult:
    recorded = blobs.get(info.stdout_sha or "", b"")
    output = compare_output(recorded, stdout, info.exit_code, outcome.result.exit_code, info.mode)
    misses = [m.headline() for m in addon.engine.misses] if addon.spec.fault else []
    result = BranchResult(
        parent=info,
        outcome=outcome,
        spec=addon.spec,
        fork_request=addon.state.fork_request,
        early=addon.state.early or [],
        live_calls=addon.live,
        served=addon.engine.matcher.answers,
        misses=misses,
        patch_error=addon.state.patch_error,
        output_identical=output.identical,
    )
    if addon.spec.fault:
        result.classified = classify(outcome.result, bool(misses), output.identical)
    return result


def classify(run: CommandResult, missed: bool, same_output: bool) -> Outcome:
    """A fault-injection run's outcome; the most telling one wins."""
    if run.timed_out:
        return Outcome.HUNG
    if missed:
        return Outcome.DIVERGED
    if run.exit_code != 0:
        return Outcome.FAILED
    return Outcome.SURVIVED if same_output else Outcome.RECOVERED


# The key variables each provider's SDK reads; a live step without one is refused upstream.
API_KEYS = {
    "openai": ("OPENAI_API_KEY",),
    "anthropic": ("ANTHROPIC_API_KEY",),
    "gemini": ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
}


def _warn_missing_keys(steps: list[StepRecord], environ: Mapping[str, str]) -> None:
    """Steps after the fork go upstream: say so when the key they need is not set."""
    providers = sorted({s.provider for s in steps if s.provider in API_KEYS})
    for provider in providers:
        names = API_KEYS[provider]
        if not any(environ.get(name) for name in names):
            print(
                f"rewind: note: {' / '.join(names)} is not set, so the live {provider} calls after the "
                "fork carry a placeholder key and the provider will refuse them",
                file=sys.stderr,
                flush=True,
            )


def _to_stderr(headline: str) -> None:
    print(f"rewind: replay miss: {visible(headline)}", file=sys.stderr, flush=True)


__all__ = [
    "BranchRequest",
    "BranchResult",
    "Outcome",
    "branch",
    "classify",
    "fork_spec",
    "fork_target",
    "step_ranges",
]
