"""Recording a command end to end: CA, proxy, agent process, journal. Click-free.

Composes the stages: ``capture`` (proxy, runner) -> ``canon`` (redaction) ->
``store`` (writer, ingest). ``record`` and ``replay --on-miss live`` share it.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rewind.canon.redact import RedactionPolicy, redact_text
from rewind.capture.ca import ensure_ca
from rewind.capture.listeners import ListenerPorts
from rewind.capture.master import ProxySpec, ProxyThread
from rewind.capture.recorder import Recorder
from rewind.capture.routing import Router
from rewind.capture.runner import CommandResult, resolve_command, run_command
from rewind.capture.sink import BackgroundSink
from rewind.capture.wiring import Listener, Wiring, agent_env, listeners_for
from rewind.core.exchange import Exchange
from rewind.store.home import Home
from rewind.store.ids import new_session_id
from rewind.store.ingest import exchange_to_step
from rewind.store.models import SessionStart, StepRecord
from rewind.store.writer import SessionWriter

REDACT_FILE = "redact.txt"


@dataclass(frozen=True)
class RecordRequest:
    """Everything ``rewind record`` was asked to do."""

    command: tuple[str, ...]
    cwd: str
    environ: Mapping[str, str]
    upstreams: Mapping[str, str]
    name: str | None = None
    routes: Mapping[str, str] = field(default_factory=dict)
    redact: tuple[str, ...] = ()
    mode: str = "record"
    parent_id: str | None = None


@dataclass
class Tally:
    """Running totals of what was recorded, updated from the sink thread."""

    steps: int = 0
    tokens: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, step: StepRecord) -> None:
        with self._lock:
            self.steps += 1
            self.tokens += (step.input_tokens or 0) + (step.output_tokens or 0)


@dataclass
class RecordOutcome:
    session_id: str
    result: CommandResult
    tally: Tally
    failures: list[str]


def load_policy(home: Home, patterns: Sequence[str], environ: Mapping[str, str]) -> RedactionPolicy:
    """Built-in secret redaction plus ``--redact`` patterns and ``$REWIND_HOME/redact.txt``."""
    return RedactionPolicy.build([*patterns, *_file_patterns(home.root / REDACT_FILE)], environ)


def _file_patterns(path: Path) -> list[str]:
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.strip() and not line.lstrip().startswith("#")]


def git_commit(cwd: str) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=3)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def session_start(req: RecordRequest, policy: RedactionPolicy) -> SessionStart:
    """The session's opening record; secrets in the command line are redacted too."""
    return SessionStart(
        id=new_session_id(),
        name=req.name,
        mode=req.mode,
        started_at=time.time(),
        command=tuple(redact_text(arg, policy) for arg in req.command),
        cwd=req.cwd,
        git_commit=git_commit(req.cwd),
        parent_id=req.parent_id,
        upstreams=dict(req.upstreams),
        routes=dict(req.routes),
        pid=os.getpid(),
    )


def keep(ex: Exchange, writer: SessionWriter, policy: RedactionPolicy, tally: Tally) -> None:
    """Redact, store and journal one exchange (on the sink thread)."""
    step = exchange_to_step(ex, writer, writer.session_id, policy)
    writer.add_step(step)
    tally.add(step)


Body = Callable[[Wiring, dict[str, str]], CommandResult]


def run_agent(req: RecordRequest) -> Body:
    """The default body of a recording: run the agent command with the wired env."""
    return lambda _wiring, env: run_command(req.command, env, req.cwd)


def record(
    home: Home,
    req: RecordRequest,
    body: Body | None = None,
    extra_addons: Sequence[Any] = (),
    ports: ListenerPorts | None = None,
) -> RecordOutcome:
    """Run ``body`` (by default the command) behind a recording proxy; always save.

    ``ports`` is shared with any ``extra_addons`` that need to know the listeners."""
    if body is None:
        resolve_command(req.command, req.environ, req.cwd)
        body = run_agent(req)
    policy = load_policy(home, req.redact, req.environ)
    ca, _ = ensure_ca(home.ca_dir, dict(req.environ))
    start = session_start(req, policy)
    writer = SessionWriter(home, start)
    tally = Tally()
    sink = BackgroundSink(lambda ex: keep(ex, writer, policy, tally))
    ports = ports or ListenerPorts()
    recorder = Recorder(sink.submit, ports)
    listeners = tuple(listeners_for(req.upstreams))
    result = None
    try:
        with running_proxy(home, listeners, [recorder, *extra_addons, Router(req.routes)]) as wiring:
            ports.bind(wiring.listener_ports)
            result = body(wiring, agent_env(req.environ, wiring, ca.bundle))
    finally:
        failures = sink.close()
        _finish(writer, result, policy)
    return RecordOutcome(start.id, result, tally, failures)


def _finish(writer: SessionWriter, result: CommandResult | None, policy: RedactionPolicy) -> None:
    if result is None:
        writer.finish(None, b"", b"", time.time())
        return
    stdout, stderr = (redact_output(out, policy) for out in (result.stdout, result.stderr))
    writer.finish(result.exit_code, stdout, stderr, result.ended_at)


def redact_output(data: bytes, policy: RedactionPolicy) -> bytes:
    """A command's output with secrets masked, any bytes kept as they were."""
    text = data.decode("utf-8", "surrogateescape")
    return redact_text(text, policy).encode("utf-8", "surrogateescape")


@contextmanager
def running_proxy(home: Home, listeners: tuple[Listener, ...], addons: Sequence[Any]) -> Iterator[Wiring]:
    """A started proxy for the duration of the block."""
    proxy = ProxyThread(ProxySpec(home.ca_dir, listeners, addons))
    try:
        yield proxy.start()
    finally:
        proxy.stop()
