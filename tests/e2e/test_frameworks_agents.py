"""Agent frameworks as users run them: openai-agents and pydantic-ai, recorded and replayed.

Each agent (``tests/frameworks/``, run by the Python of ``.venv-frameworks``) has one
``get_weather`` tool and asks "What's the weather in Paris?": a tool call, then an answer.
openai-agents runs on its defaults: the Responses API, tracing on (the trace goes to
``https://api.openai.com/v1/traces/ingest`` whatever OPENAI_BASE_URL says, so
``api.openai.com`` is routed to the fake). pydantic-ai uses chat completions.

Besides record and offline replay, the tests check that recording does not change what the
agent sends: the fake's view of a run under ``rewind record`` is compared with a run behind
a plain mitmdump that only reroutes ``api.openai.com`` (the baseline "without Rewind": the
same proxy environment, nothing of Rewind's). openai-agents adds its generated
``prompt_cache_key`` only when the client's base URL is the official one
(``agents/models/openai_client_utils.py`` ``is_official_openai_client``, used by
``OpenAIResponsesModel._supports_default_prompt_cache_key``): with OPENAI_BASE_URL at a
loopback listener (``rewind record --base-urls always``) its requests lose that field, so
by default (``--base-urls auto``) Rewind leaves an unset OPENAI_BASE_URL unset and the
agent reaches api.openai.com through Rewind's HTTPS proxy, as it would without Rewind.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from rewind.testing.fake_provider import FakeProvider
from tests.e2e.harness import BIN, ROOT, Rewind

pytestmark = pytest.mark.e2e

FRAMEWORKS = ROOT / "tests" / "frameworks"
AGENTS = {
    "openai-agents": FRAMEWORKS / "openai_agents_agent.py",
    "pydantic-ai": FRAMEWORKS / "pydantic_ai_agent.py",
}
ANSWER = "final: According to the tool, Paris: sunny, 21 C."
LLM_PATHS = {"openai-agents": "/v1/responses", "pydantic-ai": "/v1/chat/completions"}
TRACES_URL = "https://api.openai.com/v1/traces/ingest"
OFFLINE = {"OPENAI_API_KEY": ""}
# Issued by the provider or the SDK afresh on every run; their presence still counts.
VOLATILE = {"id", "call_id", "tool_call_id", "previous_response_id", "prompt_cache_key"}
# A plain mitmproxy addon: api.openai.com goes to the fake, nothing is recorded.
ROUTER = """
def request(flow):
    if flow.request.pretty_host == "api.openai.com":
        flow.request.scheme, flow.request.host, flow.request.port = "http", "127.0.0.1", {port}
"""


def record(
    rw: Rewind, fake: FakeProvider, python: Path, framework: str, *options: str, base_url: bool = True
) -> str:
    """``rewind record`` the agent (against the fake as OPENAI_BASE_URL, or with it unset)."""
    env = {"OPENAI_BASE_URL": f"{fake.url}/v1"} if base_url else {}
    route = f"api.openai.com={fake.url}"
    agent = [str(python), str(AGENTS[framework])]
    result = rw.record("--name", framework, "--route", route, *options, "--", *agent, **env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert ANSWER in result.stdout, result.stdout
    return result.stdout


def steps_of(rw: Rewind, name: str, *kinds: str) -> list[dict[str, Any]]:
    return [s for s in rw.json("inspect", name)["steps"] if s["kind"] in kinds]


def shape(value: Any) -> Any:
    """A JSON value with the values of VOLATILE keys masked (the keys are kept)."""
    if isinstance(value, dict):
        return {k: "<volatile>" if k in VOLATILE else shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value]
    return value


def llm_bodies(fake: FakeProvider) -> list[Any]:
    """The shapes of the LLM request bodies the fake received, in order."""
    paths = LLM_PATHS.values()
    return [shape(json.loads(r.body)) for r in fake.requests if r.path in paths]


def trace_uploads(fake: FakeProvider) -> int:
    return sum(r.path == "/v1/traces/ingest" for r in fake.requests)


@contextmanager
def plain_proxy(tmp_path: Path, fake: FakeProvider) -> Iterator[dict[str, str]]:
    """A plain mitmdump routing api.openai.com to the fake; yields the agent's proxy env."""
    script, confdir, port = tmp_path / "router.py", tmp_path / "mitm", _free_port()
    script.write_text(ROUTER.format(port=fake.port))
    args = [str(BIN / "mitmdump"), "-q", "--listen-host", "127.0.0.1", "-p", str(port), "-s", str(script)]
    args += ["--set", f"confdir={confdir}", "--set", "connection_strategy=lazy"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_listening(port)
        proxy = f"http://127.0.0.1:{port}"
        ca = str(confdir / "mitmproxy-ca-cert.pem")
        yield {"HTTPS_PROXY": proxy, "HTTP_PROXY": proxy, "NO_PROXY": "127.0.0.1", "SSL_CERT_FILE": ca}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def run_plain(rw: Rewind, python: Path, framework: str, proxy_env: dict[str, str], **env: str) -> str:
    """The agent without Rewind: the store's base environment plus ``proxy_env``."""
    agent_env = {**rw.env, **proxy_env, **env}
    result = subprocess.run(
        [str(python), str(AGENTS[framework])], env=agent_env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert ANSWER in result.stdout, result.stdout
    return result.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_listening(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"mitmdump did not listen on {port}")


@pytest.mark.parametrize("framework", AGENTS)
def test_agent_records_and_replays_offline(
    rw: Rewind, fake: FakeProvider, frameworks_python: Path, framework: str
) -> None:
    stdout = record(rw, fake, frameworks_python, framework)
    steps = steps_of(rw, framework, "llm", "telemetry")
    llm = [s for s in steps if s["kind"] == "llm"]
    assert [s["url"] for s in llm] == [f"{fake.url}{LLM_PATHS[framework]}"] * 2, llm
    assert all(s["status"] == 200 and s["provider"] == "openai" for s in llm), llm
    telemetry = [s for s in steps if s["kind"] == "telemetry"]
    expected = [TRACES_URL] * len(telemetry) if framework == "openai-agents" else []
    assert [s["url"] for s in telemetry] == expected and (telemetry or not expected)
    before = fake.request_count
    for _ in range(2):
        replayed = rw("replay", framework, **OFFLINE)
        assert replayed.returncode == 0, replayed.stdout + replayed.stderr
        assert replayed.stdout == stdout and "Output identical." in replayed.stderr
        assert "miss" not in replayed.stderr.lower(), replayed.stderr
    assert fake.request_count == before, "replay reached the upstream"


@pytest.mark.parametrize("framework", AGENTS)
def test_two_live_recordings_fingerprint_the_same(
    rw: Rewind, fake: FakeProvider, frameworks_python: Path, framework: str
) -> None:
    prints = []
    for _ in range(2):
        record(rw, fake, frameworks_python, framework)
        prints.append([s["fingerprint"] for s in steps_of(rw, framework, "llm")])
    assert prints[0] == prints[1] and len(set(prints[0])) == 2, prints
    newest, older = (s["id"] for s in rw.json("list"))
    bisection = rw.json("bisect", older, newest)
    assert bisection["first_divergence"] is None and bisection["matched"] == bisection["total"]
    assert bisection["identical"], bisection  # trace uploads (fresh ids each run) do not count


@pytest.mark.parametrize("framework", AGENTS)
def test_recording_sends_what_the_agent_sends_with_a_base_url(
    rw: Rewind, fake: FakeProvider, frameworks_python: Path, framework: str, tmp_path: Path
) -> None:
    """OPENAI_BASE_URL at the fake in both runs: the bodies match, key for key."""
    base_url = {"OPENAI_BASE_URL": f"{fake.url}/v1"}
    with plain_proxy(tmp_path, fake) as proxy_env:
        run_plain(rw, frameworks_python, framework, proxy_env, **base_url)
    plain, plain_traces = llm_bodies(fake), trace_uploads(fake)
    fake.reset()
    record(rw, fake, frameworks_python, framework)
    assert llm_bodies(fake) == plain and len(plain) == 2
    assert trace_uploads(fake) == plain_traces == (framework == "openai-agents")


@pytest.mark.parametrize("framework", AGENTS)
def test_recording_against_the_public_endpoint(
    rw: Rewind, fake: FakeProvider, frameworks_python: Path, framework: str, tmp_path: Path
) -> None:
    """OPENAI_BASE_URL unset: without Rewind the agent talks to https://api.openai.com/v1,
    and under ``rewind record`` too (through its HTTPS proxy); only ``--base-urls always``
    (a loopback listener in OPENAI_BASE_URL) changes what openai-agents sends."""
    with plain_proxy(tmp_path, fake) as proxy_env:
        run_plain(rw, frameworks_python, framework, proxy_env)
    plain = llm_bodies(fake)
    fake.reset()
    record(rw, fake, frameworks_python, framework, base_url=False)
    recorded = llm_bodies(fake)
    urls = {s["url"] for s in steps_of(rw, framework, "llm")}
    assert urls == {f"https://api.openai.com{LLM_PATHS[framework]}"}
    assert recorded == plain and len(plain) == 2
    if framework == "pydantic-ai":
        return
    # openai-agents: the generated prompt_cache_key is sent to the official endpoint only.
    assert all(body["prompt_cache_key"] == "<volatile>" for body in plain), plain
    fake.reset()
    record(rw, fake, frameworks_python, framework, "--base-urls", "always", base_url=False)
    forced = llm_bodies(fake)
    assert not any("prompt_cache_key" in body for body in forced), forced
    without_key = [{k: v for k, v in body.items() if k != "prompt_cache_key"} for body in plain]
    assert forced == without_key
