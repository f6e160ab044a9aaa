"""Real client SDKs and tools, each in its own environment, recorded and replayed.

Python openai / anthropic / google-genai from .venv-clients, the openai Node SDK on
Node 20 (reached through OPENAI_BASE_URL: its fetch ignores proxies), curl and Go's
net/http (through HTTPS_PROXY with Rewind's CA). Each records against the fake provider
by way of --route, then replays offline with identical output.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from rewind.testing.fake_provider import FakeProvider
from tests.e2e.harness import ROOT, SECRET, Rewind, all_stored_bytes

pytestmark = pytest.mark.e2e

CLIENTS = ROOT / "tests" / "clients"
HOSTS = {
    "openai": "api.openai.com",
    "anthropic": "api.anthropic.com",
    "gemini": "generativelanguage.googleapis.com",
}
KEYS = {"ANTHROPIC_API_KEY": "ant-" + SECRET, "GEMINI_API_KEY": "gem-" + SECRET}


def record_and_replay(
    rw: Rewind, fake: FakeProvider, provider: str, command: Sequence[str]
) -> list[dict[str, object]]:
    """Record ``command`` against the fake as ``provider``'s host, replay it, compare."""
    route = f"{HOSTS[provider]}={fake.url}"
    recorded = rw.record("--name", "client", "--route", route, "--", *command, **KEYS)
    assert recorded.returncode == 0, recorded.stdout + recorded.stderr
    assert "final:" in recorded.stdout
    steps: list[dict[str, object]] = rw.json("inspect", "client")["steps"]
    before = fake.request_count
    replayed = rw("replay", "client", OPENAI_API_KEY="", ANTHROPIC_API_KEY="", GEMINI_API_KEY="")
    assert fake.request_count == before, "replay reached the upstream"
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout == recorded.stdout and "Output identical." in replayed.stderr
    assert SECRET.encode() not in all_stored_bytes(rw.home)
    return steps


def _llm(steps: list[dict[str, object]], provider: str) -> list[dict[str, object]]:
    llm = [s for s in steps if s["kind"] == "llm"]
    assert llm and all(s["provider"] == provider for s in llm)
    assert any(s["streamed"] for s in llm) and any(not s["streamed"] for s in llm)
    assert all(s["status"] == 200 for s in llm), llm
    plain = [s for s in llm if not s["streamed"]]
    assert all(s["input_tokens"] and s["output_tokens"] for s in plain), plain
    return llm


def test_python_openai_sdk(rw: Rewind, fake: FakeProvider, clients_python: Path) -> None:
    steps = record_and_replay(rw, fake, "openai", [str(clients_python), str(CLIENTS / "py_openai_agent.py")])
    llm = _llm(steps, "openai")
    assert all(s["url"] == "https://api.openai.com/v1/chat/completions" for s in llm)


def test_python_anthropic_sdk_via_base_url(rw: Rewind, fake: FakeProvider, clients_python: Path) -> None:
    agent = [str(clients_python), str(CLIENTS / "py_anthropic_agent.py")]
    _llm(record_and_replay(rw, fake, "anthropic", agent), "anthropic")


def test_python_anthropic_sdk_via_https_proxy(rw: Rewind, fake: FakeProvider, clients_python: Path) -> None:
    agent = [
        str(clients_python),
        str(CLIENTS / "py_anthropic_agent.py"),
        "--base-url",
        "https://api.anthropic.com",
    ]
    llm = _llm(record_and_replay(rw, fake, "anthropic", agent), "anthropic")
    assert all(str(s["url"]).startswith("https://api.anthropic.com/v1/messages") for s in llm)


def test_python_gemini_sdk(rw: Rewind, fake: FakeProvider, clients_python: Path) -> None:
    agent = [str(clients_python), str(CLIENTS / "py_gemini_agent.py")]
    llm = _llm(record_and_replay(rw, fake, "gemini", agent), "gemini")
    assert any(s["model"] == "gemini-2.0-flash" for s in llm)


def test_node_openai_sdk(rw: Rewind, fake: FakeProvider, node_agent: list[str]) -> None:
    _llm(record_and_replay(rw, fake, "openai", node_agent), "openai")


def test_curl(rw: Rewind, fake: FakeProvider, curl_agent: list[str]) -> None:
    _llm(record_and_replay(rw, fake, "openai", curl_agent), "openai")


def test_go_net_http(rw: Rewind, fake: FakeProvider, go_agent: Path) -> None:
    _llm(record_and_replay(rw, fake, "openai", [str(go_agent)]), "openai")


def test_tool_call_ids_do_not_change_fingerprints(
    rw: Rewind, fake: FakeProvider, clients_python: Path
) -> None:
    """Two live runs get different random tool-call ids; their requests still match."""
    agent = [str(clients_python), str(CLIENTS / "py_openai_agent.py"), "--sections", "tool"]
    route = f"api.openai.com={fake.url}"
    for name in ("one", "two"):
        assert rw.record("--name", name, "--route", route, "--", *agent).returncode == 0
    ids = [
        str(r.json()["messages"][-2]["tool_calls"][0]["id"])
        for r in fake.requests
        if len(r.json()["messages"]) > 1
    ]
    assert len(ids) == 2 and ids[0] != ids[1]
    one, two = (rw.json("inspect", n)["steps"] for n in ("one", "two"))
    assert [s["fingerprint"] for s in one] == [s["fingerprint"] for s in two]
    replay_two_against_one = rw("replay", "one", "--", *agent)
    assert replay_two_against_one.returncode == 0, replay_two_against_one.stderr


def test_anthropic_streamed_tool_use_ids_do_not_change_fingerprints(
    rw: Rewind, fake: FakeProvider, clients_python: Path, fake_keys: dict[str, str]
) -> None:
    """The anthropic SDK's streamed tool round trip, twice live: the fake issues other
    ``toolu_`` ids each run, which the agent echoes back; the fingerprints stay equal."""
    agent = [str(clients_python), str(CLIENTS / "py_anthropic_agent.py"), "--sections", "stream_tool"]
    route = f"api.anthropic.com={fake.url}"
    for name in ("one", "two"):
        result = rw.record("--name", name, "--route", route, "--", *agent, **fake_keys)
        assert result.returncode == 0, result.stdout + result.stderr
    echoed = [
        block["id"]
        for r in fake.requests
        for message in r.json().get("messages", [])
        if isinstance(message.get("content"), list)
        for block in message["content"]
        if block.get("type") == "tool_use"
    ]
    assert len(echoed) == 2 and echoed[0] != echoed[1] and echoed[0].startswith("toolu_")
    one, two = (rw.json("inspect", n)["steps"] for n in ("one", "two"))
    assert len(one) == 2 and [s["fingerprint"] for s in one] == [s["fingerprint"] for s in two]
