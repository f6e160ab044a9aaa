"""A WebSocket agent recorded and replayed: the websockets library (sync client, as the
google-genai Live API uses it) talking to the fake's Realtime endpoint over ``wss://``.

The agent (``tests/clients/ws_agent.py``) reaches ``wss://api.openai.com/v1/realtime``
through Rewind's HTTPS proxy and CA, routed to the fake: a server-first
``session.created``, a text item, a streamed answer (deltas), a non-JSON text echo, a
binary echo, then a close by the server. Replay must give the same output with nothing
reaching the fake, and a message the recording does not have must be a loud miss.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest

from rewind.testing.fake_provider import FakeProvider
from tests.e2e.harness import ROOT, SECRET, Rewind, all_stored_bytes, mitmdump, wait_for

pytestmark = pytest.mark.e2e

AGENT = ROOT / "tests" / "clients" / "ws_agent.py"
OUTPUT = """session: session.created model=gpt-4o-realtime-preview
item: user hello over websocket
answer (9 deltas): This is a fake answer to: hello over websocket
usage: total_tokens=12
echo: this is not json
binary: 0001feff
close: 1000 bye
"""


def record(rw: Rewind, fake: FakeProvider, python: Path, name: str = "ws") -> str:
    route = f"api.openai.com={fake.url}"
    result = rw.record("--name", name, "--route", route, "--", str(python), str(AGENT))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == OUTPUT, result.stdout + result.stderr
    return result.stdout


def transcript(rw: Rewind, name: str) -> list[dict[str, Any]]:
    raw = rw("inspect", name, "--step", "1", "--raw", "--json")
    assert raw.returncode == 0, raw.stderr
    body = json.loads(raw.stdout)["response"]["body"]
    return [json.loads(line) for line in body.splitlines()]


def test_a_websocket_conversation_is_one_step_with_every_message_and_no_secret(
    rw: Rewind, fake: FakeProvider, clients_python: Path
) -> None:
    record(rw, fake, clients_python)
    [step] = rw.json("inspect", "ws")["steps"]
    assert step["kind"] == "websocket" and step["status"] == 101
    assert step["url"] == "https://api.openai.com/v1/realtime?model=gpt-4o-realtime-preview"
    lines = transcript(rw, "ws")
    sides = [line.get("from") for line in lines]
    assert sides[0] == "server" and sides.count("client") == fake.ws_messages == 5
    binary = [line["from"] for line in lines if line.get("binary") == "AAH+/w=="]  # b"\x00\x01\xfe\xff"
    assert binary == ["client", "server"]
    assert lines[-1]["close"] == "server" and lines[-1]["code"] == 1000 and lines[-1]["reason"] == "bye"
    assert SECRET.encode() not in all_stored_bytes(rw.home)


def test_replay_plays_the_conversation_back_offline(
    rw: Rewind, fake: FakeProvider, clients_python: Path
) -> None:
    record(rw, fake, clients_python)
    handshakes, messages = fake.request_count, fake.ws_messages
    for _ in range(2):
        replayed = rw("replay", "ws", "--pace", "2x", OPENAI_API_KEY="")
        assert replayed.returncode == 0, replayed.stdout + replayed.stderr
        assert replayed.stdout == OUTPUT and "Output identical" in replayed.stderr
    assert (fake.request_count, fake.ws_messages) == (handshakes, messages), "replay reached the server"


def test_a_message_the_recording_does_not_have_is_a_miss_closed_with_1011(
    rw: Rewind, fake: FakeProvider, clients_python: Path
) -> None:
    record(rw, fake, clients_python)
    messages = fake.ws_messages
    url = "wss://api.openai.com/v1/realtime?model=gpt-4o-realtime-preview"
    changed = [str(clients_python), str(AGENT), url, "something else"]
    replayed = rw("replay", "ws", "--", *changed)
    assert replayed.returncode == 3, replayed.stdout + replayed.stderr
    assert "not in the recording" in replayed.stderr and "1011" in replayed.stderr
    assert fake.ws_messages == messages


def test_two_live_recordings_fingerprint_and_bisect_the_same(
    rw: Rewind, fake: FakeProvider, clients_python: Path
) -> None:
    record(rw, fake, clients_python, "first")
    record(rw, fake, clients_python, "second")
    fingerprints = [rw.json("inspect", name)["steps"][0]["fingerprint"] for name in ("first", "second")]
    assert fingerprints[0] == fingerprints[1]
    bisect = rw.json("bisect", "first", "second")
    assert bisect["identical"] is True, bisect


HOLDS_OPEN = """
import os, sys, time
from websockets.sync.client import connect
import ssl
ctx = ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
with connect(sys.argv[1], ssl=ctx, additional_headers={"Authorization": "Bearer k"}) as ws:
    print(ws.recv()[:30], flush=True)
    ws.send("still here")
    print(ws.recv(), flush=True)
    time.sleep(60)
"""


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_mitmdump_keeps_a_conversation_still_open_when_it_stops(
    rw: Rewind, fake: FakeProvider, clients_python: Path, tmp_path: Path
) -> None:
    route = f"rewind_route=api.openai.com={fake.url}"
    proc, port = mitmdump(rw, "record.py", tmp_path / "mitm", "rewind_name=open", route)
    ca = tmp_path / "mitm" / "mitmproxy-ca-cert.pem"
    agent = None
    try:
        wait_for(ca.exists)
        proxy = f"http://127.0.0.1:{port}"
        env = {**rw.env, "HTTPS_PROXY": proxy, "SSL_CERT_FILE": str(ca)}
        url = "wss://api.openai.com/v1/realtime?model=m"
        wait_for(lambda: listening(port))
        agent = subprocess.Popen([str(clients_python), "-c", HOLDS_OPEN, url], env=env, text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        wait_for(lambda: fake.ws_messages == 1)
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        if agent is not None:
            agent.kill()
            agent.communicate()
    assert "Session recorded:" in err, err
    [step] = rw.json("inspect", "open")["steps"]
    assert step["kind"] == "websocket" and "still open" in (step["error"] or "")
    lines = transcript(rw, "open")
    assert [line["from"] for line in lines] == ["server", "client", "server"]
