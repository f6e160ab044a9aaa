"""Agent frameworks on OpenAI chat completions, recorded and replayed end to end.

``tests/frameworks/langgraph_agent.py`` (a LangGraph ReAct agent on langchain-openai's
``ChatOpenAI(streaming=True)``) and ``tests/frameworks/litellm_agent.py`` (a
``litellm.completion`` tool loop, streamed with ``stream_options``) run in
``.venv-frameworks`` under ``rewind record`` against the fake provider, replay offline
with identical output, and fingerprint the same across two live runs.

The last tests compare what the fake receives from an agent under plain ``rewind record``
(OPENAI_BASE_URL left unset, as without Rewind: ``--base-urls auto`` sends the agent to
api.openai.com through Rewind's HTTPS proxy) with what it receives under ``--base-urls
always``, which points OPENAI_BASE_URL at a local listener. Both frameworks decide from
the base URL whether to ask for streamed token usage, which is why ``auto`` is the default:

- langchain-openai (``BaseChatOpenAI.validate_environment``) turns ``stream_usage`` on
  only when no base URL is configured and ``"OPENAI_BASE_URL" not in os.environ``;
- litellm (``OpenAIChatCompletion.get_stream_options``) adds
  ``stream_options: {"include_usage": true}`` only for an api.openai.com base URL, unless
  the caller passes ``stream_options`` itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rewind.testing.fake_provider import FakeProvider
from tests.e2e.harness import ROOT, Rewind

pytestmark = pytest.mark.e2e

AGENTS = {
    "langgraph": ROOT / "tests" / "frameworks" / "langgraph_agent.py",
    "litellm": ROOT / "tests" / "frameworks" / "litellm_agent.py",
}
FINAL = "final: According to the tool, Paris: sunny, 21 C."
OFFLINE = {"OPENAI_API_KEY": ""}
USAGE = {"include_usage": True}
# Differ between any two runs, or with the listener's address: left out of comparisons.
VOLATILE = frozenset({"messages"})


def record(rw: Rewind, fake: FakeProvider, name: str, *command: str) -> str:
    """Record ``command`` with OPENAI_BASE_URL set to the fake, as a user of a gateway."""
    recorded = rw.record("--name", name, "--", *command, OPENAI_BASE_URL=f"{fake.url}/v1")
    assert recorded.returncode == 0, recorded.stdout + recorded.stderr
    assert FINAL in recorded.stdout, recorded.stdout
    return recorded.stdout


def llm_steps(rw: Rewind, name: str) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = rw.json("inspect", name)["steps"]
    assert all(s["kind"] == "llm" for s in steps), steps  # nothing else reached the network
    return steps


def bodies(fake: FakeProvider, start: int = 0) -> list[dict[str, Any]]:
    return [r.json() for r in fake.requests[start:]]


def stable(body: dict[str, Any]) -> dict[str, Any]:
    """A request body without its volatile parts; message roles stand for the messages."""
    kept = {k: v for k, v in body.items() if k not in VOLATILE}
    return {**kept, "roles": [m["role"] for m in body["messages"]]}


@pytest.mark.parametrize("framework", sorted(AGENTS))
def test_framework_records_and_replays_offline(
    rw: Rewind, fake: FakeProvider, frameworks_python: Path, framework: str
) -> None:
    stdout = record(rw, fake, "fw", str(frameworks_python), str(AGENTS[framework]))
    assert 'tool call: get_weather {"city": "Paris"}' in stdout
    steps, sent = llm_steps(rw, "fw"), bodies(fake)
    assert len(steps) == len(sent) == 2 and all(s["streamed"] and s["status"] == 200 for s in steps)
    for step, body in zip(steps, sent, strict=True):
        asked = (body.get("stream_options") or {}).get("include_usage") is True
        assert bool(step["input_tokens"] and step["output_tokens"]) == asked, (step, body)
    before = fake.request_count
    for _ in range(2):
        replayed = rw("replay", "fw", **OFFLINE)
        assert replayed.returncode == 0, replayed.stdout + replayed.stderr
        assert replayed.stdout == stdout and "Output identical." in replayed.stderr
        assert "miss" not in replayed.stderr.lower(), replayed.stderr
    assert fake.request_count == before, "replay reached the upstream"


@pytest.mark.parametrize("framework", sorted(AGENTS))
def test_two_live_recordings_fingerprint_the_same(
    rw: Rewind, fake: FakeProvider, frameworks_python: Path, framework: str
) -> None:
    for name in ("one", "two"):
        record(rw, fake, name, str(frameworks_python), str(AGENTS[framework]))
    one, two = ([s["fingerprint"] for s in llm_steps(rw, n)] for n in ("one", "two"))
    assert one == two and len(set(one)) == 2, (one, two)
    assert rw.json("bisect", "one", "two")["identical"]


def proxied_and_listener(
    rw: Rewind, fake: FakeProvider, command: list[str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], str, str]:
    """The request bodies and output of ``command`` talking to api.openai.com, first as
    plain ``rewind record`` runs it (through HTTPS_PROXY, OPENAI_BASE_URL unset: what it
    sends without Rewind), then through the listener that ``--base-urls always`` sets."""
    route = ["--route", f"api.openai.com={fake.url}"]
    proxied = rw.record("--name", "proxied", *route, "--", *command)
    assert proxied.returncode == 0 and FINAL in proxied.stdout, proxied.stdout + proxied.stderr
    start = fake.request_count
    listener = rw.record("--name", "listener", "--base-urls", "always", *route, "--", *command)
    assert listener.returncode == 0 and FINAL in listener.stdout, listener.stdout + listener.stderr
    return bodies(fake)[:start], bodies(fake, start), proxied.stdout, listener.stdout


def test_langchain_drops_stream_usage_under_the_base_url_listener(
    rw: Rewind, fake: FakeProvider, frameworks_python: Path
) -> None:
    """langchain-openai sends ``stream_options`` only when OPENAI_BASE_URL is not in the
    environment, so setting it (as Rewind does) changes the request and loses usage."""
    command = [str(frameworks_python), str(AGENTS["langgraph"])]
    proxied, listener, proxied_out, listener_out = proxied_and_listener(rw, fake, command)
    assert [b.get("stream_options") for b in proxied] == [USAGE, USAGE]
    assert all("stream_options" not in b for b in listener)
    without = [{k: v for k, v in stable(b).items() if k != "stream_options"} for b in proxied]
    assert without == [stable(b) for b in listener]
    assert "usage: None" in listener_out and "usage: None" not in proxied_out
    assert all(s["input_tokens"] for s in llm_steps(rw, "proxied"))
    assert not any(s["input_tokens"] for s in llm_steps(rw, "listener"))


def test_litellm_explicit_stream_options_are_sent_either_way(
    rw: Rewind, fake: FakeProvider, frameworks_python: Path
) -> None:
    command = [str(frameworks_python), str(AGENTS["litellm"])]
    proxied, listener, proxied_out, listener_out = proxied_and_listener(rw, fake, command)
    assert [stable(b) for b in proxied] == [stable(b) for b in listener]
    assert all(b["stream_options"] == USAGE for b in proxied + listener)
    assert proxied_out == listener_out
    assert all(s["input_tokens"] for s in llm_steps(rw, "listener"))


def test_litellm_default_stream_options_depend_on_the_base_url(
    rw: Rewind, fake: FakeProvider, frameworks_python: Path
) -> None:
    """Without ``stream_options`` from the caller, litellm asks for usage from
    api.openai.com only: under the listener it sends none and estimates usage locally."""
    command = [str(frameworks_python), str(AGENTS["litellm"]), "--default-stream-options"]
    proxied, listener, proxied_out, listener_out = proxied_and_listener(rw, fake, command)
    assert [b.get("stream_options") for b in proxied] == [USAGE, USAGE]
    assert all("stream_options" not in b for b in listener)
    without = [{k: v for k, v in stable(b).items() if k != "stream_options"} for b in proxied]
    assert without == [stable(b) for b in listener]
    assert proxied_out != listener_out  # the printed usage is litellm's estimate
    assert not any(s["input_tokens"] for s in llm_steps(rw, "listener"))
