"""Sessions written through the store's own writer, for driving the CLI in-process."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from rewind.cli import cli
from rewind.store.home import Home
from rewind.store.ids import new_session_id
from rewind.store.models import SessionInfo, SessionStart, StepRecord
from rewind.store.writer import SessionWriter

Invoke = Callable[..., Result]


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home(tmp_path / "home")


@pytest.fixture
def rewind(home: Home) -> Invoke:
    """``rewind --home HOME ARGS...`` in-process; stdout and stderr kept apart."""

    def invoke(*args: str, **env: str) -> Result:
        # COLUMNS from the shell running the tests (or pytest-xdist) would narrow tables.
        environ: dict[str, str | None] = {"COLUMNS": None, **env}
        return CliRunner().invoke(cli, ["--home", str(home.root), *args], env=environ)

    return invoke


URL = "https://api.openai.com/v1/chat/completions"


def write_session(
    home: Home,
    name: str | None = "demo",
    url: str = URL,
    body: bytes = b"{}",
    gaps: Sequence[tuple[int, str]] = (),
    **start: Any,
) -> str:
    """A finished one-step session, as `rewind record` would leave it; its id."""
    fields: dict[str, Any] = {"mode": "record", "started_at": time.time(), "cwd": "/work"}
    fields |= {"command": ("python", "agent.py"), **start}
    writer = SessionWriter(home, SessionStart(id=new_session_id(), name=name, **fields))
    writer.add_step(make_step(writer, url, body))
    for step, reason in gaps:
        writer.add_gap(step, reason)
    writer.finish(0, b"out\n", b"", ended_at=time.time())
    return writer.session_id


def make_step(writer: SessionWriter, url: str, body: bytes) -> StepRecord:
    return StepRecord(
        session_id=writer.session_id,
        step=1,
        kind="llm",
        method="POST",
        url=url,
        started_at=time.time(),
        fingerprint="v1:" + "0" * 64,
        request_headers=(("content-type", "application/json"),),
        request_sha=writer.put_blob(body),
        provider="openai",
        model="gpt-4o",
        status=200,
        response_headers=(("x-note", "\x1b[2J[bold]hi"),),
        response_sha=writer.put_blob(body),
        input_tokens=3,
        output_tokens=4,
    )


def session_info(**fields: Any) -> SessionInfo:
    """A finished session as the index lists it (id ``s-parent``), for plain-function tests."""
    defaults: dict[str, Any] = {
        "name": "nightly",
        "mode": "record",
        "started_at": 1_000.0,
        "command": ("python", "agent.py"),
        "cwd": "/work",
        "status": "complete",
        "ended_at": 1_004.0,
        "exit_code": 0,
    }
    return SessionInfo(id="s-parent", **{**defaults, **fields})
