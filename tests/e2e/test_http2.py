"""HTTP/2 clients, and clients that hang up as soon as a stream's last event arrives.

An httpx agent with ``http2=True, http1=False`` talks HTTP/2 over TLS to the proxy (through
``HTTPS_PROXY`` and ``--route``), which talks HTTP/1.1 to the fake provider; the session
records as ordinary POST steps and replays offline. Cleartext HTTP/2 (h2c) is refused
loudly. A stream whose client closed right after its last event is not a failed step.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from rewind.testing.fake_provider import FakeProvider
from tests.e2e.harness import PYTHON, Rewind

pytestmark = pytest.mark.e2e

H2_AGENT = Path(__file__).resolve().parents[1] / "clients" / "h2_agent.py"
OPENAI = "https://api.openai.com/v1/chat/completions"
EVENTS = (
    b'data: {"choices":[{"delta":{"content":"one "}}]}\n\n',
    b'data: {"choices":[{"delta":{"content":"two"},"finish_reason":"stop"}]}\n\n',
    b"data: [DONE]\n\n",
)
# An HTTP/1 client that closes as soon as it has read the last event, as several SDKs do.
HANG_UP_AGENT = """
import json, os, urllib.request
req = urllib.request.Request("https://api.openai.com/v1/chat/completions",
    json.dumps({"model": "m", "stream": True}).encode(), {"Content-Type": "application/json"})
r = urllib.request.urlopen(req)
for line in r:
    if line.strip() == b"data: [DONE]":
        break
    if line.strip():
        print(line.decode().strip(), flush=True)
r.close()
"""


class SlowEndHandler(BaseHTTPRequestHandler):
    """Streams EVENTS at once, then holds the chunked terminator back until released."""

    protocol_version = "HTTP/1.1"
    server: SlowEndServer

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.server.requests += 1
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for event in EVENTS:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
        self.wfile.flush()
        self.server.release.wait(10)
        try:
            self.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass
        self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        pass


class SlowEndServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), SlowEndHandler)
        self.release = threading.Event()
        self.requests = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def slow_end() -> Iterator[SlowEndServer]:
    server = SlowEndServer()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()


def record_and_replay(
    rw: Rewind, upstream_url: str, command: list[str]
) -> tuple[list[dict[str, Any]], str]:
    """Record ``command`` with api.openai.com routed to ``upstream_url``, replay it offline;
    the steps and the agent's output (the same both times)."""
    recorded = rw.record("--name", "h2", "--route", f"api.openai.com={upstream_url}", "--", *command)
    assert recorded.returncode == 0, recorded.stdout + recorded.stderr
    replayed = rw("replay", "h2", OPENAI_API_KEY="")
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert replayed.stdout == recorded.stdout and "Output identical." in replayed.stderr
    assert "miss" not in replayed.stderr.lower(), replayed.stderr
    steps: list[dict[str, Any]] = rw.json("inspect", "h2")["steps"]
    return steps, replayed.stdout


def test_http2_only_client_records_and_replays(
    rw: Rewind, fake: FakeProvider, clients_python: Path
) -> None:
    steps, output = record_and_replay(rw, fake.url, [str(clients_python), str(H2_AGENT)])
    assert fake.request_count == 2, "replay reached the upstream"
    assert [(s["method"], s["url"], s["status"], s["streamed"]) for s in steps] == [
        ("POST", OPENAI, 200, False),
        ("POST", OPENAI, 200, True),
    ]
    assert all(s["error"] is None and s["kind"] == "llm" for s in steps), steps
    assert "plain version: HTTP/2" in output and "stream version: HTTP/2" in output


def test_cleartext_http2_is_refused_loudly_and_not_recorded(
    rw: Rewind, fake: FakeProvider, clients_python: Path
) -> None:
    """h2c with prior knowledge (an h2-only client on the plain-HTTP provider listener)."""
    agent = f'exec {clients_python} {H2_AGENT} --sections plain --base-url "$OPENAI_BASE_URL"'
    result = rw.record("--name", "h2c", "--base-urls", "always", "--", "sh", "-c", agent)
    assert "HTTP/2" in result.stderr and "spoke HTTP/2 without negotiating it" in result.stderr
    assert rw.json("inspect", "h2c")["steps"] == []
    assert fake.request_count == 0


@pytest.mark.parametrize("client", ["http1", "http2"])
def test_a_stream_closed_right_after_its_last_event_is_not_a_failure(
    rw: Rewind, slow_end: SlowEndServer, clients_python: Path, client: str
) -> None:
    """The client has every event and hangs up before the upstream's end-of-stream."""
    command = (
        [PYTHON, "-c", HANG_UP_AGENT]
        if client == "http1"
        else [str(clients_python), str(H2_AGENT), "--sections", "stream"]
    )
    [step], _ = record_and_replay(rw, slow_end.url, command)
    assert slow_end.requests == 1, "replay reached the upstream"
    assert (step["status"], step["streamed"], step["error"]) == (200, True, None), step
    assert step["tag"] != "network_error", step
