"""Replaying a recorded session end to end. Click-free.

Strict mode runs the agent behind a proxy whose only addon is the replay addon, so no
request can leave the machine. ``--on-miss live`` records the run as a new session:
recorded answers are replayed, misses go upstream.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass

from rewind.capture.ca import ensure_ca
from rewind.capture.listeners import ListenerPorts
from rewind.capture.local import local_ports_of
from rewind.capture.routing import Router
from rewind.capture.runner import CommandResult, resolve_command, run_command
from rewind.capture.wiring import agent_env, listeners_for, upstreams_from_env
from rewind.cli.render import visible
from rewind.cli.run import RecordRequest, load_redactor, loopback_gate, record, running_proxy
from rewind.core.endpoints import PROVIDER_ENDPOINTS
from rewind.errors import ReplayError
from rewind.replay.addon import ReplayAddon
from rewind.replay.engine import ReplayEngine
from rewind.replay.modes import OnMiss
from rewind.replay.outcome import ReplaySummary, compare_output
from rewind.replay.pace import FAST, Pace
from rewind.replay.playback import PlaybackThread
from rewind.store.home import Home
from rewind.store.index import Store
from rewind.store.models import SessionInfo

# SDKs refuse to start without a key; the recording never needs a real one.
PLACEHOLDER_KEYS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY")
PLACEHOLDER = "rewind-replay-no-key"


@dataclass(frozen=True)
class ReplayRequest:
    ref: str
    environ: Mapping[str, str]
    command: tuple[str, ...] = ()
    pace: Pace = FAST
    on_miss: OnMiss = OnMiss.ERROR
    reuse: bool = False
    routes: Mapping[str, str] | None = None
    redact: tuple[str, ...] = ()


@dataclass
class ReplayResult:
    session: SessionInfo
    summary: ReplaySummary
    live_session: str | None = None
    live_calls: int = 0


def replay(home: Home, req: ReplayRequest) -> ReplayResult:
    """Re-run the recorded (or given) command against the recording."""
    info, steps, blobs = Store(home).load(req.ref)
    command, cwd = command_of(info, req.command)
    redactor = load_redactor(home, req.redact, req.environ)
    engine = ReplayEngine(steps, blobs, redactor, reuse=req.reuse)
    playback = PlaybackThread(req.pace)
    playback.start()
    addon = ReplayAddon(
        engine, playback, req.on_miss, notify=_to_stderr, ports=ListenerPorts(),
        local_ports=local_ports_of(info.upstreams),
    )
    try:
        run, live_id = _run(home, req, info, addon, command, cwd)
    finally:
        playback.stop()
    recorded_out = blobs.get(info.stdout_sha or "", b"")
    replayed_out = redactor.redact_output(run.stdout)
    summary = ReplaySummary(
        total_recorded=len(engine.matcher.recorded),
        served=engine.matcher.served,
        misses=[] if req.on_miss is OnMiss.LIVE else list(engine.misses),
        unused=engine.matcher.unused(),
        output=compare_output(recorded_out, replayed_out, info.exit_code, run.exit_code, info.mode),
    )
    return ReplayResult(info, summary, live_id, addon.live)


def command_of(info: SessionInfo, command: tuple[str, ...]) -> tuple[tuple[str, ...], str]:
    """The command to re-run and its directory: the one given (here), else the recorded one
    (where it ran, when that still exists)."""
    if command:
        return command, os.getcwd()
    if not info.command or info.mode == "proxy":
        raise ReplayError(
            f"session {info.id} has no command to re-run (it was recorded by `rewind proxy`)",
            hint="give the command after --: rewind replay SESSION -- CMD [ARGS...]",
        )
    cwd = info.cwd if os.path.isdir(info.cwd) else os.getcwd()
    return info.command, cwd


def _run(
    home: Home,
    req: ReplayRequest,
    info: SessionInfo,
    addon: ReplayAddon,
    command: tuple[str, ...],
    cwd: str,
) -> tuple[CommandResult, str | None]:
    upstreams = info.upstreams or upstreams_from_env(req.environ)
    environ = replay_environ(req.environ, upstreams)
    routes = dict(info.routes if req.routes is None else req.routes)
    if req.on_miss is OnMiss.LIVE:
        live = RecordRequest(
            command=command,
            cwd=cwd,
            environ=environ,
            upstreams=upstreams,
            name=f"{info.name or info.id}-live",
            routes=routes,
            redact=req.redact,
            mode="replay-live",
            parent_id=info.id,
        )
        outcome = record(home, live, extra_addons=[addon], ports=addon.ports)
        return outcome.result, outcome.session_id
    resolve_command(command, environ, cwd)
    ca, _ = ensure_ca(home.ca_dir, dict(environ))
    addons = [*loopback_gate(addon.ports, upstreams), addon, Router({})]
    with running_proxy(home, tuple(listeners_for(upstreams)), addons) as wiring:
        addon.ports.bind(wiring.listener_ports)
        return run_command(command, agent_env(environ, wiring, ca.bundle, command), cwd), None


def replay_environ(environ: Mapping[str, str], upstreams: Mapping[str, str]) -> dict[str, str]:
    """The agent's environment for a re-run: placeholder API keys where none is set, and
    the base-URL variables the recording used."""
    return _with_recorded_base_urls(_with_placeholder_keys(environ), upstreams)


def _with_recorded_base_urls(environ: Mapping[str, str], upstreams: Mapping[str, str]) -> dict[str, str]:
    """The environment with each provider's base-URL variable present when the session was
    recorded with one (its upstream is not the public endpoint), so that ``agent_env``
    points the agent at the listeners the recording used; the value is replaced there."""
    env = dict(environ)
    for provider, (variable, public) in PROVIDER_ENDPOINTS.items():
        if upstreams.get(provider, public) != public and not env.get(variable):
            env[variable] = upstreams[provider]
    return env


def _with_placeholder_keys(environ: Mapping[str, str]) -> dict[str, str]:
    env = dict(environ)
    for name in PLACEHOLDER_KEYS:
        env[name] = env.get(name) or PLACEHOLDER
    return env


def _to_stderr(headline: str) -> None:
    """At the moment of a miss, a one-line pointer; the summary explains it in full."""
    print(f"rewind: replay miss: {visible(headline)} (explained at the end)", file=sys.stderr, flush=True)
