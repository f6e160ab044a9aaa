"""Fixtures shared by every test: the fake outside world and the real Rewind CLI.

Nothing here fakes Rewind's own parts. ``fake_provider`` is a real HTTP server standing
in for OpenAI, Anthropic, Gemini and plain tool endpoints; ``run_rewind`` runs the real
``.venv/bin/rewind``; the client fixtures find real SDK agents, installed in their own
environments (``make clients``), and skip with the reason when one is missing.
``team_services`` runs a real PostgreSQL and moto S3 server per worker (``tests/services.py``,
``make services``) and ``team_remote`` gives one test a fresh catalog database and bucket.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from rewind.testing.fake_provider import FakeProvider
from tests.services import TeamRemote, TeamServices, available

REPO = Path(__file__).resolve().parents[1]
REWIND_BIN = REPO / ".venv" / "bin" / "rewind"
CLIENTS_DIR = REPO / "tests" / "clients"
CLIENTS_PYTHON = REPO / ".venv-clients" / "bin" / "python"
FRAMEWORKS_PYTHON = REPO / ".venv-frameworks" / "bin" / "python"
NODE_DIR = CLIENTS_DIR / "node"
GO_DIR = CLIENTS_DIR / "go"

# Keys the fake accepts; none looks like a real key.
FAKE_KEYS = {
    "OPENAI_API_KEY": "sk-test-fake",
    "ANTHROPIC_API_KEY": "sk-ant-test-fake",
    "GEMINI_API_KEY": "gemini-test-fake",
}

# Variables from the developer's shell that would leak into a test's subprocesses.
_HOST_VARIABLES = (
    "REWIND_HOME",
    "OPENAI_BASE_URL",
    "ANTHROPIC_BASE_URL",
    "GOOGLE_GEMINI_BASE_URL",
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS",
)


def clean_env(**extra: str) -> dict[str, str]:
    """``os.environ`` without proxies, base URLs, keys and REWIND_HOME, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in _HOST_VARIABLES}
    return {**env, **extra}


@dataclass
class RewindHome:
    """A private store for one test: ``path``, and ``env`` for subprocesses that use it."""

    path: Path
    env: dict[str, str] = field(default_factory=dict)

    def __fspath__(self) -> str:
        return str(self.path)


RunRewind = Callable[..., "subprocess.CompletedProcess[str]"]


@pytest.fixture
def fake_provider() -> Iterator[FakeProvider]:
    """A fresh fake provider (no chunk delay) for one test; ``.url`` is its origin."""
    with FakeProvider() as fake:
        yield fake


@pytest.fixture
def fake_keys() -> dict[str, str]:
    """API key variables the agents need; the fake accepts any non-empty key."""
    return dict(FAKE_KEYS)


@pytest.fixture
def client_env() -> Callable[..., dict[str, str]]:
    """``client_env(**extra)``: a clean environment with the fake keys, plus ``extra``."""
    return lambda **extra: clean_env(**{**FAKE_KEYS, **extra})


@pytest.fixture
def rewind_home(tmp_path: Path) -> RewindHome:
    """An empty REWIND_HOME; ``.env`` is a clean environment with REWIND_HOME set."""
    home = tmp_path / "rewind-home"
    home.mkdir()
    return RewindHome(home, clean_env(REWIND_HOME=str(home)))


@pytest.fixture
def run_rewind(rewind_home: RewindHome) -> RunRewind:
    """Run the real ``rewind`` CLI: ``run_rewind(*args, env=None, timeout=60, input=None)``.

    ``env`` is merged over ``rewind_home.env``; returns the CompletedProcess (text mode).
    """
    if not REWIND_BIN.exists():
        pytest.fail(f"{REWIND_BIN} is missing: run `make install`")

    def run(
        *args: str,
        env: Mapping[str, str] | None = None,
        timeout: float = 60,
        input: str | None = None,
        cwd: str | os.PathLike[str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(REWIND_BIN), *args],
            env={**rewind_home.env, **(env or {})},
            input=input,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return run


@pytest.fixture(scope="session")
def clients_python() -> Path:
    """The Python of ``.venv-clients`` (openai, anthropic, google-genai SDKs)."""
    if not CLIENTS_PYTHON.exists():
        pytest.skip(f"{CLIENTS_PYTHON} is missing: run `make clients` to install the client SDKs")
    return CLIENTS_PYTHON


@pytest.fixture(scope="session")
def frameworks_python() -> Path:
    """The Python of ``.venv-frameworks`` (openai-agents, pydantic-ai, langchain, litellm)."""
    if not FRAMEWORKS_PYTHON.exists():
        pytest.skip(f"{FRAMEWORKS_PYTHON} is missing: run `make frameworks` to install them")
    return FRAMEWORKS_PYTHON


@pytest.fixture(scope="session")
def node_agent() -> list[str]:
    """``["node", ".../agent.mjs"]``: the openai Node SDK agent."""
    if shutil.which("node") is None:
        pytest.skip("node is not on PATH")
    if not (NODE_DIR / "node_modules" / "openai").is_dir():
        pytest.skip(f"{NODE_DIR}/node_modules is missing: run `make clients`")
    return ["node", str(NODE_DIR / "agent.mjs")]


@pytest.fixture(scope="session")
def go_agent() -> Path:
    """The Go net/http agent, built once into ``tests/clients/go/bin/agent``."""
    go = shutil.which("go")
    if go is None:
        pytest.skip("go is not on PATH; the Go client tests need a Go toolchain")
    binary = GO_DIR / "bin" / "agent"
    sources = [GO_DIR / "main.go", GO_DIR / "go.mod"]
    if not binary.exists() or binary.stat().st_mtime < max(s.stat().st_mtime for s in sources):
        _build_go(go, binary)
    return binary


def _build_go(go: str, binary: Path) -> None:
    """Build to a private name, then rename: parallel workers never see half a binary."""
    partial = binary.with_name(f"agent.{os.getpid()}.partial")
    env = clean_env(GOFLAGS="-mod=mod", GOTOOLCHAIN="local", CGO_ENABLED="0")
    built = subprocess.run(
        [go, "build", "-o", str(partial), "."],
        cwd=GO_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if built.returncode != 0:
        pytest.fail(f"go build failed:\n{built.stderr}")
    partial.replace(binary)


@pytest.fixture(scope="session")
def curl_agent() -> list[str]:
    """``["bash", ".../curl_agent.sh"]``: curl through https_proxy (or ``--base-url``)."""
    if shutil.which("curl") is None:
        pytest.skip("curl is not on PATH")
    return ["bash", str(CLIENTS_DIR / "curl_agent.sh")]


@pytest.fixture(scope="session")
def team_services() -> Iterator[TeamServices]:
    """A private PostgreSQL cluster and a moto S3 server (one pair per xdist worker)."""
    reason = available()
    if reason is not None:
        pytest.skip(f"team-store services cannot run here: {reason}")
    services = TeamServices.start()
    try:
        yield services
    finally:
        services.stop()


@pytest.fixture
def team_remote(team_services: TeamServices, request: pytest.FixtureRequest) -> TeamRemote:
    """A fresh remote for one test: its own catalog database and bucket, named after the test."""
    return team_services.new_remote(request.node.name)
