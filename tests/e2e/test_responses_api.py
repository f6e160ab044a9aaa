"""The OpenAI Responses API through the real openai Python SDK, recorded and replayed.

``tests/clients/py_responses_agent.py`` calls ``client.responses.create`` (plain, with a
tool, streamed) and the ``responses.stream`` helper; each tool round trip answers the
``function_call`` with a ``function_call_output`` and ``previous_response_id``. It runs in
``.venv-clients`` under ``rewind record`` against the fake provider, then replays offline
twice with identical output and no upstream request.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import pytest

from rewind.canon.fingerprint import fingerprint
from rewind.canon.providers import provider_named
from rewind.store.home import Home
from rewind.store.ids import new_session_id
from rewind.store.index import Store
from rewind.store.models import SessionStart
from rewind.store.writer import SessionWriter
from rewind.testing.fake_provider import FakeProvider
from tests.e2e.harness import ROOT, SECRET, Rewind, all_stored_bytes

pytestmark = pytest.mark.e2e

AGENT = ROOT / "tests" / "clients" / "py_responses_agent.py"
RESPONSES_URL = "https://api.openai.com/v1/responses"
OFFLINE = {"OPENAI_API_KEY": ""}


def record(rw: Rewind, fake: FakeProvider, clients_python: Path, *args: str) -> str:
    route = f"api.openai.com={fake.url}"
    recorded = rw.record(
        "--name", "responses", "--route", route, "--", str(clients_python), str(AGENT), *args
    )
    assert recorded.returncode == 0, recorded.stdout + recorded.stderr
    return recorded.stdout


def llm_steps(rw: Rewind) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = rw.json("inspect", "responses")["steps"]
    return [s for s in steps if s["kind"] == "llm"]


def test_responses_agent_records_and_replays_offline(
    rw: Rewind, fake: FakeProvider, clients_python: Path
) -> None:
    stdout = record(rw, fake, clients_python)
    assert stdout.count('tool call: get_weather {"city": "Paris"}') == 3
    assert "final: According to the tool, city: Paris, forecast: sunny, temp_c: 21." in stdout
    before = fake.request_count
    for _ in range(2):
        replayed = rw("replay", "responses", **OFFLINE)
        assert replayed.returncode == 0, replayed.stdout + replayed.stderr
        assert replayed.stdout == stdout and "Output identical." in replayed.stderr
        assert "Replayed 7/7 steps" in replayed.stderr, replayed.stderr
        assert "miss" not in replayed.stderr.lower(), replayed.stderr
    assert fake.request_count == before, "replay reached the upstream"
    assert SECRET.encode() not in all_stored_bytes(rw.home)


def test_recorded_steps_are_responses_calls_with_usage(
    rw: Rewind, fake: FakeProvider, clients_python: Path
) -> None:
    record(rw, fake, clients_python)
    llm = llm_steps(rw)
    assert len(llm) == 7 and all(s["url"] == RESPONSES_URL for s in llm), llm
    assert all(s["provider"] == "openai" and s["status"] == 200 for s in llm), llm
    assert {bool(s["streamed"]) for s in llm} == {True, False}
    assert all(s["input_tokens"] and s["output_tokens"] for s in llm), llm


def test_previous_response_id_chains_to_a_response_the_fake_issued(
    rw: Rewind, fake: FakeProvider, clients_python: Path
) -> None:
    record(rw, fake, clients_python, "--sections", "tool")
    first, second = (json.loads(r.body) for r in fake.requests)
    assert "previous_response_id" not in first
    assert second["previous_response_id"].startswith("resp_")
    assert [item["type"] for item in second["input"]] == ["function_call_output"]


def test_two_live_recordings_fingerprint_the_same(
    rw: Rewind, fake: FakeProvider, clients_python: Path
) -> None:
    """Every response id, item id and call id differs between the runs; fingerprint v2
    leaves them out, so hybrid replay, bisect and re-recording line up."""
    prints = []
    for _ in range(2):
        record(rw, fake, clients_python)
        prints.append([s["fingerprint"] for s in llm_steps(rw)])
    assert prints[0] == prints[1] and all(p.startswith("v2:") for p in prints[0])
    assert len(set(prints[0])) > 1
    newest, older = (s["id"] for s in rw.json("list"))
    assert rw.json("bisect", older, newest)["identical"]


def as_version_1(rw: Rewind, name: str) -> str:
    """A copy of session ``name`` as Rewind before fingerprint v2 wrote it: every step
    fingerprinted under version 1 and the session marked version 1, written through the
    store's own writer. Returns the copy's name."""
    info, steps, blobs = Store(Home(rw.home)).load(name)
    start = SessionStart(
        id=new_session_id(), name=f"{name}-v1", mode="record", started_at=time.time(),
        command=info.command, cwd=info.cwd, upstreams=info.upstreams, routes=info.routes,
        fingerprint_version=1,
    )
    writer = SessionWriter(Home(rw.home), start)
    for step in steps:
        body = blobs[step.request_sha]
        v1 = fingerprint(step.method, step.url, step.request_headers, body, provider_named(step.provider), 1)
        writer.add_step(dataclasses.replace(
            step, session_id=writer.session_id, fingerprint=v1, request_sha=writer.put_blob(body),
            response_sha=writer.put_blob(blobs[step.response_sha]) if step.response_sha else None,
        ))
    writer.finish(info.exit_code, blobs.get(info.stdout_sha or "", b""), ended_at=time.time())
    return f"{name}-v1"


def test_a_session_recorded_under_fingerprint_v1_still_replays(
    rw: Rewind, fake: FakeProvider, clients_python: Path
) -> None:
    stdout = record(rw, fake, clients_python)
    old = as_version_1(rw, "responses")
    fingerprints = [s["fingerprint"] for s in rw.json("inspect", old)["steps"]]
    assert all(fp.startswith("v1:") for fp in fingerprints)
    replayed = rw("replay", old, **OFFLINE)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert replayed.stdout == stdout and "Output identical." in replayed.stderr
    assert rw.json("bisect", "responses", old)["identical"] is True
