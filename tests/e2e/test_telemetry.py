"""Telemetry uploads are recorded as such and answered in replay, never missed.

The agent makes one LLM call and two trace uploads whose bodies differ on every run:
openai-agents' export (``POST $OPENAI_BASE_URL/traces/ingest``, ``OpenAI-Beta:
traces=v1``) and a LangSmith batch (``POST https://api.smith.langchain.com/runs/batch``,
routed to the fake provider, which sinks both).
"""

from __future__ import annotations

import textwrap

import pytest

from rewind.testing.fake_provider import FakeProvider
from tests.e2e.harness import PYTHON, Rewind

pytestmark = pytest.mark.e2e

TRACING_AGENT = textwrap.dedent(
    """
    import json, os, time, urllib.request, uuid
    base = os.environ["OPENAI_BASE_URL"]
    auth = {"Authorization": "Bearer " + os.environ["OPENAI_API_KEY"], "Content-Type": "application/json"}

    def post(url, payload, headers):
        request = urllib.request.Request(url, json.dumps(payload).encode(), headers, method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()

    chat = {"model": "gpt-4o", "messages": [{"role": "user", "content": "say hello"}]}
    status, body = post(base + "/chat/completions", chat, auth)
    print("answer:", json.loads(body)["choices"][0]["message"]["content"])
    trace = {"data": [{"object": "trace", "id": "trace_" + uuid.uuid4().hex, "started_at": time.time()}]}
    beta = {**auth, "OpenAI-Beta": "traces=v1"}
    print("openai trace upload:", post(base + "/traces/ingest", trace, beta)[0])
    run = {"post": [{"id": str(uuid.uuid4()), "start_time": time.time(), "name": "agent"}]}
    smith = {"x-api-key": "lsv2-test", "Content-Type": "application/json"}
    print("langsmith upload:", post("https://api.smith.langchain.com/runs/batch", run, smith)[0])
    """
)


def _record(rw: Rewind, fake: FakeProvider) -> None:
    result = rw.record(
        "--name", "traced", "--route", f"api.smith.langchain.com={fake.url}",
        "--", PYTHON, "-c", TRACING_AGENT, OPENAI_BASE_URL=f"{fake.url}/v1",
    )
    assert result.returncode == 0, result.stderr
    assert "openai trace upload: 204" in result.stdout and "langsmith upload: 202" in result.stdout


def test_uploads_are_recorded_as_telemetry(rw: Rewind, fake: FakeProvider) -> None:
    _record(rw, fake)
    steps = rw.json("inspect", "traced")["steps"]
    kinds = {step["url"].rsplit("/", 1)[-1]: step["kind"] for step in steps}
    assert kinds == {"completions": "llm", "ingest": "telemetry", "batch": "telemetry"}
    assert rw("inspect", "traced").returncode == 0  # the table shows the new kind too


def test_replay_answers_uploads_with_new_bodies_and_is_identical(
    rw: Rewind, fake: FakeProvider
) -> None:
    _record(rw, fake)
    before = fake.request_count
    result = rw("replay", "traced", OPENAI_API_KEY="")
    assert fake.request_count == before  # nothing reached the upstream
    assert result.returncode == 0, result.stderr
    assert "Output identical." in result.stderr and "miss" not in result.stderr.lower()
    assert "Replayed 1/1 steps" in result.stderr
    assert "openai trace upload: 204" in result.stdout and "langsmith upload: 202" in result.stdout
