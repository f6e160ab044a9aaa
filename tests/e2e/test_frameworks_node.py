"""The Vercel AI SDK on Node 20, recorded and replayed as users run it.

The agent (``tests/frameworks/node/agent.mjs``, packages pinned in its package-lock and
installed by ``make frameworks``) has one ``get_weather`` tool and asks "What's the weather
in Paris?": a tool call, then an answer, in a multi-step ``streamText`` or ``generateText``.
Its provider is the SDK's default ``openai``, which reads OPENAI_BASE_URL itself; Node's
fetch ignores HTTPS_PROXY, so ``rewind record`` points that variable at its loopback
listener, and ``--route`` sends api.openai.com on to the fake provider.

Two runs: the defaults (``openai(model)`` speaks the Responses API; ``streamText``), and
chat completions (``openai.chat(model)``) with ``generateText``.
"""

from __future__ import annotations

import shutil
from typing import Any

import pytest

from rewind.testing.fake_provider import FakeProvider
from tests.e2e.harness import ROOT, Rewind

pytestmark = pytest.mark.e2e

NODE_DIR = ROOT / "tests" / "frameworks" / "node"
RUNS = {
    "default": ([], "https://api.openai.com/v1/responses", True),
    "chat": (["--api", "chat", "--call", "generate"], "https://api.openai.com/v1/chat/completions", False),
}
ANSWER = "steps: tool-calls, stop\nfinal: According to the tool, Paris: sunny, 21 C.\n"


@pytest.fixture(scope="module")
def ai_sdk_agent() -> list[str]:
    """``["node", ".../agent.mjs"]``: the AI SDK agent, its packages from ``make frameworks``."""
    if shutil.which("node") is None:
        pytest.skip("node is not on PATH; the AI SDK example needs Node 20")
    if not (NODE_DIR / "node_modules" / "ai").is_dir():
        pytest.skip(f"{NODE_DIR}/node_modules is missing: run `make frameworks` to install the AI SDK")
    return ["node", str(NODE_DIR / "agent.mjs")]


def record(rw: Rewind, fake: FakeProvider, agent: list[str], run: str) -> str:
    """``rewind record`` the agent with api.openai.com routed to the fake; its stdout."""
    options = RUNS[run][0]
    route = f"api.openai.com={fake.url}"
    result = rw.record("--name", run, "--route", route, "--", *agent, *options)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ANSWER, result.stdout + result.stderr
    return result.stdout


def llm_steps(rw: Rewind, name: str) -> list[dict[str, Any]]:
    return [s for s in rw.json("inspect", name)["steps"] if s["kind"] == "llm"]


@pytest.mark.parametrize("run", RUNS)
def test_agent_records_and_replays_offline(
    rw: Rewind, fake: FakeProvider, ai_sdk_agent: list[str], run: str
) -> None:
    stdout = record(rw, fake, ai_sdk_agent, run)
    steps = rw.json("inspect", run)["steps"]
    _, url, streamed = RUNS[run]
    assert [(s["kind"], s["url"], s["streamed"]) for s in steps] == [("llm", url, streamed)] * 2, steps
    assert all(s["status"] == 200 and s["provider"] == "openai" for s in steps), steps
    before = fake.request_count
    for _ in range(2):
        replayed = rw("replay", run, OPENAI_API_KEY="")
        assert replayed.returncode == 0, replayed.stdout + replayed.stderr
        assert replayed.stdout == stdout and "Output identical." in replayed.stderr
        assert "miss" not in replayed.stderr.lower(), replayed.stderr
    assert fake.request_count == before, "replay reached the upstream"


@pytest.mark.parametrize("run", RUNS)
def test_two_live_recordings_fingerprint_the_same(
    rw: Rewind, fake: FakeProvider, ai_sdk_agent: list[str], run: str
) -> None:
    """The tool call ids differ between the runs; the fingerprints do not."""
    prints = []
    for _ in range(2):
        record(rw, fake, ai_sdk_agent, run)
        prints.append([s["fingerprint"] for s in llm_steps(rw, run)])
    assert prints[0] == prints[1] and len(set(prints[0])) == 2, prints
    bodies = [r.body for r in fake.requests]
    assert len(bodies) == 4 and bodies[1] != bodies[3], "the runs sent the same tool call ids"
    newest, older = (s["id"] for s in rw.json("list"))
    bisection = rw.json("bisect", older, newest)
    assert bisection["first_divergence"] is None and bisection["matched"] == bisection["total"]
    assert bisection["identical"], bisection
