"""pytest-rewind: agent tests against Rewind cassettes (``.rw``), offline and with no key.

    @pytest.mark.rewind(cassette="cassettes/weather.rw")            # mode "none": replay only
    def test_agent(): ...

Modes, as vcrpy's: ``none`` (replay only; the default, what CI uses), ``once`` (record when
the cassette is missing), ``new_episodes`` (replay known calls, record new ones into the
cassette), ``all`` (always record). ``--rewind-mode`` overrides every marker.

This plugin imports nothing of Rewind: it drives the ``rewind`` command (``--rewind-bin``,
``$REWIND_BIN``, or ``rewind`` on PATH), which lives in its own environment, so the tests'
environment keeps its own SDK versions (mitmproxy pins an old ``h11`` that current httpx
rejects). For each marked test it makes a private Rewind home, imports the cassette (or
not), and starts ``rewind replay`` or ``rewind record`` around a small waiter process that
writes the environment Rewind gives it (proxy, CA bundle, base URLs, placeholder keys) to
a file; the test runs with that environment, so SDK clients created in it reach Rewind.
When the test ends the waiter is told to stop; a replay miss then fails the test with
Rewind's explanation, and a recording is exported to the cassette.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

MODES = ("none", "once", "new_episodes", "all")
WIRED = (
    "HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy", "NO_PROXY", "no_proxy",
    "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS",
    "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL", "GOOGLE_GEMINI_BASE_URL",
    "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY",
)
# Runs under Rewind: writes the variables Rewind wired to argv[1], then waits for stdin to close.
WAITER = (
    "import json, os, sys; names = json.loads(sys.argv[2]); "
    "tmp = sys.argv[1] + '.tmp'; "
    "open(tmp, 'w').write(json.dumps({n: os.environ[n] for n in names if n in os.environ})); "
    "os.replace(tmp, sys.argv[1]); sys.stdin.read()"
)
START_TIMEOUT_S = 60.0
MISS_EXIT = 3
FINE_REPLAY_EXITS = (0, 4, 5)  # output or unused steps differ: the test itself judges


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("rewind", "Rewind cassettes")
    group.addoption("--rewind-mode", choices=MODES, default=None,
                    help="Override every rewind marker's mode: " + ", ".join(MODES) + ".")
    group.addoption("--rewind-bin", default=None,
                    help="The rewind command (default: $REWIND_BIN, else rewind on PATH).")
    group.addoption("--rewind-route", action="append", default=[], metavar="HOST=URL",
                    help="While recording, send HOST's traffic to URL (as rewind record --route).")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "rewind(cassette, mode='none', route=()): run the test against a Rewind cassette "
        "(modes: none, once, new_episodes, all).",
    )


@dataclass(frozen=True)
class Plan:
    cassette: Path
    mode: str
    routes: tuple[str, ...]

    @property
    def records(self) -> bool:
        """Whether this run records anew (rather than replaying the cassette)."""
        exists = self.cassette.exists()
        return self.mode == "all" or (self.mode in ("once", "new_episodes") and not exists)


@pytest.fixture(autouse=True)
def _rewind_cassette(request: pytest.FixtureRequest) -> Iterator[None]:
    marker = request.node.get_closest_marker("rewind")
    if marker is None:
        yield
        return
    plan = _plan(request, marker)
    with tempfile.TemporaryDirectory(prefix="pytest-rewind-") as tmp:
        session = _Session(_rewind_bin(request.config), Path(tmp), plan, request.node.nodeid)
        wired = session.start()
        saved = {name: os.environ.get(name) for name in WIRED}
        os.environ.update(wired)
        try:
            yield
        finally:
            _restore(saved)
            session.finish()


def _plan(request: pytest.FixtureRequest, marker: pytest.Mark) -> Plan:
    cassette = marker.kwargs.get("cassette") or (marker.args[0] if marker.args else None)
    if not cassette:
        raise pytest.UsageError("@pytest.mark.rewind needs cassette='path/to/file.rw'")
    mode = request.config.getoption("--rewind-mode") or marker.kwargs.get("mode", "none")
    if mode not in MODES:
        raise pytest.UsageError(f"rewind mode {mode!r} is not one of {', '.join(MODES)}")
    path = Path(cassette)
    if not path.is_absolute():
        path = Path(str(request.node.path)).parent / path
    routes = (*marker.kwargs.get("route", ()), *request.config.getoption("--rewind-route"))
    return Plan(path, mode, tuple(routes))


def _rewind_bin(config: pytest.Config) -> str:
    found = config.getoption("--rewind-bin") or os.environ.get("REWIND_BIN") or shutil.which("rewind")
    if not found:
        raise pytest.UsageError(
            "pytest-rewind cannot find the rewind command: install Rewind (its own environment "
            "is best) and put it on PATH, or pass --rewind-bin / set REWIND_BIN"
        )
    return found


def _restore(saved: dict[str, str | None]) -> None:
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


class _Session:
    """One ``rewind record`` or ``rewind replay`` around the test (see module)."""

    def __init__(self, rewind: str, tmp: Path, plan: Plan, nodeid: str) -> None:
        self.rewind, self.tmp, self.plan = rewind, tmp, plan
        self.name = re.sub(r"[^\w.-]+", "-", nodeid)[-80:]
        self.env = {**os.environ, "REWIND_HOME": str(tmp / "home")}
        self.envfile = tmp / "wired.json"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> dict[str, str]:
        if not self.plan.records and not self.plan.cassette.exists():
            pytest.fail(
                f"rewind: cassette {self.plan.cassette} does not exist (mode {self.plan.mode!r} only "
                "replays): record it with --rewind-mode once", pytrace=False,
            )
        waiter = [sys.executable, "-c", WAITER, str(self.envfile), json.dumps(WIRED)]
        self.process = subprocess.Popen(
            [self.rewind, *self._arguments(), "--", *waiter], env=self.env, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        return self._wired()

    def _arguments(self) -> list[str]:
        if self.plan.records:
            routes = [arg for route in self.plan.routes for arg in ("--route", route)]
            return ["record", "--name", self.name, *routes]
        session = self._import()
        live = ["--on-miss", "live", *(a for r in self.plan.routes for a in ("--route", r))]
        return ["replay", session, "--json", *(live if self.plan.mode == "new_episodes" else [])]

    def _import(self) -> str:
        done = self._run("import", str(self.plan.cassette), "--json")
        imported = json.loads(done.stdout)
        sessions = imported["added"] + imported["present"]
        if len(sessions) != 1:
            pytest.fail(f"rewind: {self.plan.cassette} holds {len(sessions)} sessions; a test needs one",
                        pytrace=False)
        return str(sessions[0])

    def _wired(self) -> dict[str, str]:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.envfile.exists():
            assert self.process is not None
            if self.process.poll() is not None or time.monotonic() > deadline:
                _, err = self.process.communicate(timeout=30)
                pytest.fail(f"rewind did not start:\n{err.decode('utf-8', 'replace')}", pytrace=False)
            time.sleep(0.02)
        wired: dict[str, str] = json.loads(self.envfile.read_text())
        return wired

    def finish(self) -> None:
        assert self.process is not None
        out, err = self.process.communicate(b"", timeout=120)
        stderr = err.decode("utf-8", "replace")
        if self.plan.records:
            self._export(self._recorded_session(stderr))
        elif self.process.returncode == MISS_EXIT:
            pytest.fail("rewind: the test made a call its cassette does not have\n" + _misses(stderr),
                        pytrace=False)
        elif self.process.returncode not in FINE_REPLAY_EXITS:
            pytest.fail(f"rewind replay failed (exit {self.process.returncode}):\n{stderr}", pytrace=False)
        elif self.plan.mode == "new_episodes":
            live = json.loads(out or b"{}").get("live_session")
            if live:
                self._export(str(live))

    def _recorded_session(self, stderr: str) -> str:
        assert self.process is not None
        found = re.search(r"Session recorded: (\w+)", stderr)
        if found is None or self.process.returncode not in (0,):
            pytest.fail(f"rewind record failed (exit {self.process.returncode}):\n{stderr}", pytrace=False)
        return found.group(1)

    def _export(self, session: str) -> None:
        self.plan.cassette.parent.mkdir(parents=True, exist_ok=True)
        self._run("export", session, "-o", str(self.plan.cassette))

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([self.rewind, *args], env=self.env, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            pytest.fail(f"rewind {args[0]} failed (exit {done.returncode}):\n{done.stderr}", pytrace=False)
        return done


def _misses(stderr: str) -> str:
    """The summary's explanation of the misses, without the agent's own noise."""
    lines = stderr.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("Missed requests:")), 0)
    return "\n".join(lines[start:])



