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

from rewind.analysis.tags import step_tag
from rewind.canon.fingerprint import FINGERPRINT_VERSION
from rewind.canon.redact import RedactionPolicy
from rewind.canon.redactor import Redactor
from rewind.capture.ca import ensure_ca
from rewind.capture.gate import LoopbackGate
from rewind.capture.listeners import ListenerPorts
from rewind.capture.local import local_ports_of
from rewind.capture.master import ProxySpec, ProxyThread
from rewind.capture.recorder import Recorder
from rewind.capture.routing import Router
from rewind.capture.runner import CommandResult, resolve_command, run_command
from rewind.capture.sink import BackgroundSink
from rewind.capture.wiring import BaseUrls, Listener, Wiring, agent_env, listeners_for, upstream_auth
from rewind.core.exchange import Exchange
from rewind.store.home import Home, ensure_home
from rewind.store.ids import new_session_id
from rewind.store.ingest import Stored, describe, prepare, store_step
from rewind.store.models import Gap, SessionStart, StepRecord
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
    fork_step: int | None = None  # branch and mutate: the parent's step changed
    fault: str | None = None  # mutate: the fault injected there
    listen_port: int = 0  # the regular proxy's port; 0: any free one
    base_urls: BaseUrls = BaseUrls.AUTO  # which base-URL variables the agent gets


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
    gaps: list[Gap] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # losses that are not exchanges


def load_policy(home: Home, patterns: Sequence[str], environ: Mapping[str, str]) -> RedactionPolicy:
    """Built-in secret redaction plus ``--redact`` patterns and ``$REWIND_HOME/redact.txt``."""
    return RedactionPolicy.build([*patterns, *_file_patterns(home.root / REDACT_FILE)], environ)


def load_redactor(home: Home, patterns: Sequence[str], environ: Mapping[str, str]) -> Redactor:
    """A new session's redactor, starting from ``load_policy``: one per recording or replay."""
    return Redactor(load_policy(home, patterns, environ))


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


def session_start(req: RecordRequest, redactor: Redactor) -> SessionStart:
    """The session's opening record; secrets in the command line, upstreams and routes are
    redacted too (and learned, so that they are scrubbed from everything recorded later)."""
    for url in (*req.upstreams.values(), *req.routes.values()):
        redactor.learn_request(url, ())
    return SessionStart(
        id=new_session_id(),
        name=req.name,
        mode=req.mode,
        started_at=time.time(),
        command=redactor.redact_command(req.command),
        cwd=req.cwd,
        git_commit=git_commit(req.cwd),
        parent_id=req.parent_id,
        upstreams={k: redactor.redact_text(v) for k, v in req.upstreams.items()},
        routes={k: redactor.redact_text(v) for k, v in req.routes.items()},
        fingerprint_version=FINGERPRINT_VERSION,
        pid=os.getpid(),
        fork_step=req.fork_step,
        fault=req.fault,
    )


Later = Callable[[Callable[[], None]], None]  # runs a job after the response is released


def keep(
    ex: Exchange, writer: SessionWriter, redactor: Redactor, tally: Tally, later: Later | None = None
) -> None:
    """Redact (learning its secrets), store and journal one exchange (on the sink thread).

    With ``later``, the step is journalled with what replay needs, and what its response
    means (usage, meaning, tag...) is read and journalled again by a job run after the
    response reached the agent: that reading is off the response's path. A step whose
    second line never came (``kill -9`` in between) gets it computed when read."""
    stored = store_step(ex, writer, writer.session_id, redactor)
    if later is None or stored.described:
        step = describe(stored, step_tag)
        writer.add_step(step)
        tally.add(step)
        return
    writer.add_step(stored.step)
    later(lambda: _describe_later(stored, writer, tally))


def _describe_later(stored: Stored, writer: SessionWriter, tally: Tally) -> None:
    step = describe(stored, step_tag)
    writer.amend_step(step)
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

    Everything that can fail before the agent runs (the command, the home, upstream
    URLs, the CA, the proxy's ports) fails with no session left behind. ``ports`` is
    shared with any ``extra_addons`` that need to know the listeners."""
    if body is None:
        resolve_command(req.command, req.environ, req.cwd)
        body = run_agent(req)
    ensure_home(home)
    listeners = tuple(listeners_for(req.upstreams))
    policy = load_redactor(home, req.redact, req.environ)
    ca, _ = ensure_ca(home.ca_dir, dict(req.environ))
    start = session_start(req, policy)
    writer = SessionWriter(home, start)
    threading.Thread(target=writer.prepare, name="rewind-prepare", daemon=True).start()
    tally = Tally()
    sink = BackgroundSink(lambda ex: store_exchange(ex, writer, policy, tally, sink.later))
    ports = ports or ListenerPorts()
    recorder = Recorder(  # secrets known early; request-side work done while upstream answers
        sink.submit, ports, on_request=policy.learn_request, prepare=lambda ex: prepare(ex, policy)
    )
    addons = [
        *loopback_gate(ports, req.upstreams), recorder, *extra_addons,
        Router(req.routes, ports, upstream_auth(listeners)),
    ]
    proxy = ProxyThread(ProxySpec(home.ca_dir, listeners, addons, req.listen_port))
    wiring = _start_or_abort(proxy, sink, writer)
    result = None
    try:
        ports.bind(wiring.listener_ports)
        result = body(wiring, agent_env(req.environ, wiring, ca.bundle, req.command, req.base_urls))
    finally:
        proxy.stop()
        failures = sink.close()
        _finish(writer, result, policy)
    return RecordOutcome(start.id, result, tally, failures, list(writer.gaps), list(writer.problems))


def loopback_gate(ports: ListenerPorts, upstreams: Mapping[str, str]) -> list[LoopbackGate]:
    """The ``LoopbackGate`` that goes first in the chain, when local ports are wired."""
    return [LoopbackGate(ports, upstreams)] if local_ports_of(upstreams) else []


def _start_or_abort(proxy: ProxyThread, sink: BackgroundSink, writer: SessionWriter) -> Wiring:
    """The started proxy's wiring; if it cannot start, the session is discarded."""
    try:
        return proxy.start()
    except BaseException:
        proxy.stop()
        sink.close()
        writer.abort()
        raise


def store_exchange(
    ex: Exchange, writer: SessionWriter, policy: Any, tally: Tally, later: Later | None = None
) -> None:
    """``keep`` one exchange; one that cannot be stored becomes a gap in the session
    (and the sink reports it) instead of vanishing."""
    try:
        keep(ex, writer, policy, tally, later)
    except Exception as exc:
        writer.add_gap(ex.step, f"{type(exc).__name__}: {exc}")
        raise


def _finish(writer: SessionWriter, result: CommandResult | None, redactor: Redactor) -> None:
    if result is None:
        writer.finish(None, b"", b"", time.time())
        return
    stdout, stderr = (redactor.redact_output(out) for out in (result.stdout, result.stderr))
    writer.finish(result.exit_code, stdout, stderr, result.ended_at)


@contextmanager
def running_proxy(home: Home, listeners: tuple[Listener, ...], addons: Sequence[Any]) -> Iterator[Wiring]:
    """A started proxy for the duration of the block."""
    proxy = ProxyThread(ProxySpec(home.ca_dir, listeners, addons))
    try:
        yield proxy.start()
    finally:
        proxy.stop()
