"""Factories for store tests: a home in tmp_path, session starts and steps."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from rewind.store.home import Home
from rewind.store.ids import new_session_id
from rewind.store.models import SessionStart, StepRecord
from rewind.store.writer import SessionWriter


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home(tmp_path / "rewind-home")


def make_start(
    name: str | None = "demo", started_at: float | None = None, session_id: str | None = None,
    pid: int = 0,
) -> SessionStart:
    """A SessionStart as `rewind record` would write it."""
    return SessionStart(
        id=session_id or new_session_id(), name=name, mode="record",
        started_at=time.time() if started_at is None else started_at,
        command=("python", "agent.py"), cwd="/work", pid=pid,
        upstreams={"openai": "https://api.openai.com/v1"}, routes={"example.com": "http://x"},
    )


def record_step(writer: SessionWriter, step: int, body: bytes = b"") -> StepRecord:
    """Put a request and a response blob and add one LLM step using them."""
    request = body or b'{"model":"gpt-4o","messages":[{"role":"user","content":"%d"}]}' % step
    rec = StepRecord(
        session_id=writer.session_id, step=step, kind="llm", method="POST",
        url="https://api.openai.com/v1/chat/completions", started_at=time.time(),
        fingerprint=f"v1:{step:064x}", request_headers=(("content-type", "application/json"),),
        request_sha=writer.put_blob(request), provider="openai", model="gpt-4o", status=200,
        reason="OK", response_headers=(("content-type", "text/event-stream"),),
        response_sha=writer.put_blob(b"data: reply %d\n\n" % step), latency_ms=12.5,
        ttft_ms=3.0, streamed=True, chunks=((3.0, 8), (9.5, 10)), input_tokens=10,
        output_tokens=5,
    )
    writer.add_step(rec)
    return rec


@pytest.fixture
def record(home: Home) -> Callable[..., SessionWriter]:
    """Record a finished session of ``steps`` steps; returns its (closed) writer."""

    def record(steps: int = 2, name: str | None = "demo", started_at: float | None = None,
               exit_code: int = 0, finish: bool = True) -> SessionWriter:
        writer = SessionWriter(home, make_start(name, started_at))
        for n in range(1, steps + 1):
            record_step(writer, n)
        if finish:
            writer.finish(exit_code, b"out\n", b"err\n", ended_at=time.time())
        return writer

    return record
