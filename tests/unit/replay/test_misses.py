from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from enum import Enum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from rewind.replay.explain import MissReport, Neighbour
from rewind.replay.misses import MISS_STATUS, failure_response, miss_response

from .factories import make_step

CLIENTS_PYTHON = Path(__file__).resolve().parents[3] / ".venv-clients" / "bin" / "python"
SDK_RETRIED = {408, 409, 429}  # plus every status >= 500 (openai, anthropic _should_retry)
REPORT = MissReport(
    "POST",
    "https://api.openai.com/v1/chat/completions",
    "v1:ff",
    [Neighbour(make_step(3), ["model: 'gpt-4o-mini' != recorded 'gpt-4o'"])],
)


class Provider(str, Enum):  # noqa: UP042 -- the shape of rewind.canon.providers.Provider
    OPENAI = "openai"
    ANTHROPIC = "anthropic"
    GEMINI = "gemini"


def header_dict(headers: tuple[tuple[str, str], ...]) -> dict[str, str]:
    return dict(headers)


@pytest.mark.parametrize("provider", [None, "openai", "anthropic", "gemini", "example.com"])
def test_miss_status_is_not_retried_by_sdks(provider: str | None) -> None:
    status, headers, _ = miss_response(provider, REPORT)
    assert status == MISS_STATUS == 404
    assert status not in SDK_RETRIED and status < 500
    assert header_dict(headers)["x-should-retry"] == "false"
    assert header_dict(headers)["x-rewind-miss"] == "1"


def test_openai_shape() -> None:
    _, headers, body = miss_response("openai", REPORT)
    error = json.loads(body)["error"]
    assert header_dict(headers)["content-type"] == "application/json"
    assert error["type"] == error["code"] == "rewind_replay_miss"
    assert error["param"] is None
    assert error["message"] == REPORT.text()


def test_anthropic_shape() -> None:
    data = json.loads(miss_response(Provider.ANTHROPIC, REPORT)[2])
    assert data["type"] == "error"
    assert data["error"] == {"type": "rewind_replay_miss", "message": REPORT.text()}


def test_gemini_shape() -> None:
    error = json.loads(miss_response("gemini", REPORT)[2])["error"]
    assert error == {"code": 404, "message": REPORT.text(), "status": "NOT_FOUND"}


def test_json_bodies_carry_the_structured_report() -> None:
    assert json.loads(miss_response("openai", REPORT)[2])["rewind"] == REPORT.to_json()


def test_other_hosts_get_plain_text() -> None:
    _, headers, body = miss_response(None, REPORT)
    assert header_dict(headers)["content-type"].startswith("text/plain")
    assert body.decode() == REPORT.text() + "\n"
    assert "step 3" in body.decode()


def test_failure_replays_as_bad_gateway_naming_the_error() -> None:
    step = make_step(4, status=None, error="Connection refused <upstream>")
    status, headers, body = failure_response(step)
    assert status == 502
    assert header_dict(headers)["content-type"] == "text/html"
    assert b"<h1>502 Bad Gateway</h1>" in body
    assert b"Connection refused &lt;upstream&gt;" in body


# --- the real SDKs, as users' agents run them ---------------------------------------

SDK_SCRIPTS = {
    "openai": """
import openai
client = openai.OpenAI(base_url=URL + "/v1", api_key="sk-test")
try:
    client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
except openai.NotFoundError as exc:
    print(exc)
""",
    "anthropic": """
import anthropic
client = anthropic.Anthropic(base_url=URL, api_key="sk-test")
try:
    client.messages.create(model="c", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
except anthropic.NotFoundError as exc:
    print(exc)
""",
    "gemini": """
from google import genai
from google.genai import errors, types
options = types.HttpOptions(base_url=URL, retry_options=types.HttpRetryOptions(attempts=3))
client = genai.Client(api_key="k", http_options=options)
try:
    client.models.generate_content(model="gemini-2.0-flash", contents="hi")
except errors.ClientError as exc:
    print(exc)
""",
}


@pytest.fixture
def miss_server(request: pytest.FixtureRequest) -> Iterator[tuple[str, list[str]]]:
    provider: str = request.param
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            seen.append(self.path)
            self.rfile.read(int(self.headers.get("content-length", 0)))
            status, headers, body = miss_response(provider, REPORT)
            self.send_response(status)
            for name, value in headers + (("content-length", str(len(body))),):
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


@pytest.mark.skipif(not CLIENTS_PYTHON.exists(), reason="client SDKs not installed (make clients)")
@pytest.mark.parametrize("miss_server", sorted(SDK_SCRIPTS), indirect=True)
def test_sdk_surfaces_the_miss_once_without_retrying(
    miss_server: tuple[str, list[str]], request: pytest.FixtureRequest
) -> None:
    url, seen = miss_server
    provider = request.node.callspec.params["miss_server"]
    script = f"URL = {url!r}\n" + SDK_SCRIPTS[provider]
    run = subprocess.run(
        [CLIENTS_PYTHON, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env={"NO_PROXY": "*", "PATH": "/usr/bin:/bin"},
    )
    assert run.returncode == 0, run.stderr
    assert "model: 'gpt-4o-mini' != recorded 'gpt-4o'" in run.stdout
    assert len(seen) == 1
