"""A model server on a loopback port (``rewind record --local-port``), recorded and not
reached in replay.

The fake provider on 127.0.0.1 plays the local server (it speaks the OpenAI chat API as
vLLM, llama.cpp's server, LM Studio and Ollama do). The agent reaches it every way users
write it: a hardcoded ``localhost`` URL from Python (which honours HTTP_PROXY for loopback
once loopback leaves NO_PROXY), curl to ``127.0.0.1``, Node's fetch (which ignores proxies)
through a variable naming the port, and OPENAI_BASE_URL set to the local server. It also
calls a second local server whose port was not named: that call passes through unrecorded,
in the recording and in replay, as it would without Rewind.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from rewind.testing.fake_provider import FakeProvider
from tests.e2e.harness import PYTHON, Rewind

pytestmark = pytest.mark.e2e

AGENT = """#!/bin/sh
set -e
"{python}" - <<'PY'
import json, os, urllib.request
LOCAL, OTHER, SUFFIX = os.environ["LOCAL"], os.environ["OTHER"], os.environ.get("SUFFIX", "")
HEADERS = {{"Content-Type": "application/json", "Authorization": "Bearer local"}}
def chat(url, text):
    body = {{"model": "llama3", "messages": [{{"role": "user", "content": text + SUFFIX}}]}}
    req = urllib.request.Request(url, json.dumps(body).encode(), HEADERS)
    with urllib.request.urlopen(req) as r:
        return json.load(r)["choices"][0]["message"]["content"]
print("hardcoded:", chat(f"http://localhost:{{LOCAL}}/v1/chat/completions", "from python"))
print("variable:", chat(os.environ["LOCAL_LLM_URL"] + "/chat/completions", "from a variable"))
print("base url:", chat(os.environ["OPENAI_BASE_URL"] + "/chat/completions", "from a base url"))
print("other:", chat(f"http://127.0.0.1:{{OTHER}}/v1/chat/completions", "to another server"))
PY
curl -sf "http://127.0.0.1:$LOCAL/v1/chat/completions" \\
  -H 'content-type: application/json' -H 'authorization: Bearer local' \\
  -d '{{"model": "llama3", "messages": [{{"role": "user", "content": "from curl"}}]}}'
echo
"{node}" -e '
fetch(process.env.LOCAL_LLM_URL + "/chat/completions", {{method: "POST",
  headers: {{"content-type": "application/json", authorization: "Bearer local"}},
  body: JSON.stringify({{model: "llama3", messages: [{{role: "user", content: "from node"}}]}})}})
  .then(r => r.json()).then(j => console.log("node:", j.choices[0].message.content))'
"""


@pytest.fixture
def other_server() -> Any:
    with FakeProvider() as other:
        yield other


def agent(tmp_path: Path) -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    path = tmp_path / "local_agent.sh"
    path.write_text(AGENT.format(python=PYTHON, node=node))
    path.chmod(0o755)
    return str(path)


def record_local(rw: Rewind, fake: FakeProvider, other: FakeProvider, script: str) -> str:
    env = local_env(fake, other)
    result = rw.record("--name", "local", "--local-port", str(fake.port), "--", script, **env)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def local_env(fake: FakeProvider, other: FakeProvider) -> dict[str, str]:
    return {
        "LOCAL": str(fake.port), "OTHER": str(other.port),
        "LOCAL_LLM_URL": f"http://localhost:{fake.port}/v1", "OPENAI_BASE_URL": f"http://localhost:{fake.port}/v1",
    }


def test_a_local_model_server_is_recorded_and_never_reached_in_replay(
    rw: Rewind, fake: FakeProvider, other_server: FakeProvider, tmp_path: Path
) -> None:
    script = agent(tmp_path)
    out = record_local(rw, fake, other_server, script)
    assert out.count("This is a fake answer to: ") == 6, out
    assert fake.request_count == 5 and other_server.request_count == 1
    steps = rw.json("inspect", "local")["steps"]
    assert len(steps) == 5, [s["url"] for s in steps]  # each call once; the other server's not at all
    assert all(f":{fake.port}/v1/chat/completions" in s["url"] for s in steps)
    assert {s["kind"] for s in steps} == {"llm"}

    replayed = rw("replay", "local", **local_env(fake, other_server))
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert "Output identical" in replayed.stderr and replayed.stdout == out
    assert fake.request_count == 5, "replay reached the local model server"
    assert other_server.request_count == 2  # not recorded: it passes through, as it did


def test_a_miss_in_replay_does_not_reach_the_local_server(
    rw: Rewind, fake: FakeProvider, other_server: FakeProvider, tmp_path: Path
) -> None:
    record_local(rw, fake, other_server, agent(tmp_path))
    changed = rw("replay", "local", **local_env(fake, other_server), SUFFIX=" (changed)")
    assert changed.returncode == 3, changed.stdout + changed.stderr
    assert "miss" in changed.stderr
    assert fake.request_count == 5, "a replay miss reached the local model server"


def test_without_local_port_loopback_calls_are_not_recorded(
    rw: Rewind, fake: FakeProvider, other_server: FakeProvider, tmp_path: Path
) -> None:
    env = local_env(fake, other_server)
    result = rw.record("--name", "plain", "--", agent(tmp_path), **env)
    assert result.returncode == 0, result.stderr
    urls = [s["url"] for s in rw.json("inspect", "plain")["steps"]]
    assert urls == [f"http://localhost:{fake.port}/v1/chat/completions"]  # only OPENAI_BASE_URL's


def test_rewind_proxy_records_a_local_port_for_a_shell_wired_by_rewind_env(
    rw: Rewind, fake: FakeProvider
) -> None:
    import signal
    import subprocess

    from tests.e2e.harness import wait_for

    rw.env["LOCAL_LLM_URL"] = f"http://localhost:{fake.port}/v1"
    proc = rw.popen("proxy", "--name", "manual", "--local-port", str(fake.port))
    wait_for(lambda: rw("env").returncode == 0)
    exports = dict(line.removeprefix("export ").split("=", 1) for line in rw("env").stdout.splitlines())
    assert exports["NO_PROXY"] == "''" and str(fake.port) not in exports["LOCAL_LLM_URL"]
    body = '{"model": "llama3", "messages": [{"role": "user", "content": "by hand"}]}'
    got = subprocess.run(
        ["curl", "-s", "-x", exports["HTTP_PROXY"].strip("'"), "-H", "authorization: Bearer k",
         "-H", "content-type: application/json", "-d", body,
         f"http://127.0.0.1:{fake.port}/v1/chat/completions"],
        capture_output=True, text=True, timeout=30,
    )
    assert "fake answer to: by hand" in got.stdout
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert "(1 steps" in err
    assert rw.json("inspect", "manual")["steps"][0]["url"].endswith(f":{fake.port}/v1/chat/completions")
