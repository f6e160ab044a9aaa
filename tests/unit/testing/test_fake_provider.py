"""The fake provider, at the HTTP level and through the real client SDKs.

The SDK tests run the official openai, anthropic and google-genai SDKs (and the openai
Node SDK, Go's net/http and curl when present) as subprocesses pointed straight at the
fake through their base-URL settings, with no proxy: every response must parse.
"""

from __future__ import annotations

import gzip
import http.client
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rewind.testing.fake_provider import FakeProvider

from .conftest import paced

CLIENTS = Path(__file__).resolve().parents[2] / "clients"
OPENAI = "/v1/chat/completions"
ANTHROPIC = "/v1/messages"
GEMINI = "/v1beta/models/gemini-2.0-flash:generateContent"
GEMINI_SSE = "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse"
KEYS = {
    OPENAI: {"Authorization": "Bearer sk-test-fake"},
    ANTHROPIC: {"x-api-key": "sk-ant-test-fake"},
    GEMINI: {"x-goog-api-key": "gemini-test-fake"},
}
Env = Callable[..., dict[str, str]]
Response = tuple[int, dict[str, str], bytes]


def call(fake: FakeProvider, path: str, body: Any = None, headers: Any = None) -> Response:
    """One request on a fresh connection: (status, lower-cased headers, body)."""
    connection = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=10)
    payload = None if body is None else json.dumps(body).encode()
    connection.request("POST" if payload else "GET", path, payload, headers or {})
    response = connection.getresponse()
    result = (response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    connection.close()
    return result


def chat_body(path: str, text: str, **extra: Any) -> dict[str, Any]:
    """A minimal valid chat request for the provider at ``path``."""
    if path.startswith("/v1beta"):
        return {"contents": [{"role": "user", "parts": [{"text": text}]}], **extra}
    body = {"model": "test-model", "messages": [{"role": "user", "content": text}], **extra}
    return {**body, "max_tokens": 64} if path == ANTHROPIC else body


def event_times(fake: FakeProvider, path: str, body: Any, headers: Any) -> list[float]:
    """When each ``data:`` line of a streamed reply arrived, in seconds since the request."""
    connection = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=10)
    connection.connect()
    start = time.monotonic()
    connection.request("POST", path, json.dumps(body).encode(), headers)
    response = connection.getresponse()
    times = [time.monotonic() - start for line in response if line.startswith(b"data:")]
    connection.close()
    return times


# --- OpenAI, Anthropic, Gemini at the HTTP level -------------------------------------------


def test_openai_completion_has_usage_and_fresh_ids(fake_provider: FakeProvider) -> None:
    replies = [call(fake_provider, OPENAI, chat_body(OPENAI, "Hi there"), KEYS[OPENAI]) for _ in "ab"]
    first, second = (json.loads(body) for _, _, body in replies)
    assert [status for status, _, _ in replies] == [200, 200]
    assert first["id"].startswith("chatcmpl-") and first["id"] != second["id"]
    assert first["choices"][0]["message"]["content"] == "This is a fake answer to: Hi there"
    assert first["usage"] | {"prompt_tokens_details": None, "completion_tokens_details": None} == {
        "prompt_tokens": 2,
        "completion_tokens": 8,
        "total_tokens": 10,
        "prompt_tokens_details": None,
        "completion_tokens_details": None,
    }


def test_openai_stream_ends_with_usage_chunk_then_done(fake_provider: FakeProvider) -> None:
    body = chat_body(OPENAI, "Hi there", stream=True, stream_options={"include_usage": True})
    status, headers, raw = call(fake_provider, OPENAI, body, KEYS[OPENAI])
    events = [e for e in raw.decode().split("\n\n") if e]
    chunks = [json.loads(e[len("data: ") :]) for e in events[:-1]]
    assert (status, headers["content-type"], headers["transfer-encoding"]) == (
        200,
        "text/event-stream; charset=utf-8",
        "chunked",
    )
    assert events[-1] == "data: [DONE]"
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks[:-1]) == (
        "This is a fake answer to: Hi there"
    )
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] == 10


def test_delay_marker_sets_the_gap_between_chunks(fake_provider: FakeProvider) -> None:
    body = chat_body(OPENAI, "Pace me [[delay:50]]", stream=True)
    times = event_times(fake_provider, OPENAI, body, KEYS[OPENAI])
    assert len(times) > 5 and paced(times, 0.050) and not paced(times, 0.5)


def test_server_default_chunk_delay_applies_without_a_marker() -> None:
    with FakeProvider(chunk_delay_ms=30) as fake:
        times = event_times(fake, ANTHROPIC, chat_body(ANTHROPIC, "Hi", stream=True), KEYS[ANTHROPIC])
    assert len(times) > 5 and paced(times, 0.030) and not paced(times, 0.3)


def test_no_delay_by_default(fake_provider: FakeProvider) -> None:
    times = event_times(
        fake_provider, GEMINI_SSE, chat_body(GEMINI, "one two three four five six"), KEYS[GEMINI]
    )
    assert len(times) == 4 and times[-1] - times[0] < 0.5


@pytest.mark.parametrize(
    ("path", "status", "expected"),
    [
        (OPENAI, 401, {"type": "invalid_request_error", "param": None, "code": None}),
        (ANTHROPIC, 401, {"type": "error", "error": {"type": "authentication_error"}}),
        (GEMINI, 403, {"error": {"code": 403, "status": "PERMISSION_DENIED"}}),
    ],
)
def test_a_request_without_key_gets_the_providers_auth_error(
    fake_provider: FakeProvider, path: str, status: int, expected: dict[str, Any]
) -> None:
    got_status, _, raw = call(fake_provider, path, chat_body(path, "Hi"))
    body = json.loads(raw)
    inner = body["error"] if path == OPENAI else body
    assert got_status == status
    assert _contains(inner, expected)


def test_gemini_key_may_come_in_the_query(fake_provider: FakeProvider) -> None:
    status, _, _ = call(fake_provider, GEMINI + "?key=gemini-test-fake", chat_body(GEMINI, "Hi"))
    assert status == 200


def test_a_fixed_api_key_refuses_others() -> None:
    with FakeProvider(api_key="sk-test-right") as fake:
        wrong = call(fake, OPENAI, chat_body(OPENAI, "Hi"), {"Authorization": "Bearer sk-test-wrong"})
        right = call(fake, OPENAI, chat_body(OPENAI, "Hi"), {"Authorization": "Bearer sk-test-right"})
    assert json.loads(wrong[2])["error"]["code"] == "invalid_api_key"
    assert (wrong[0], right[0]) == (401, 200)


@pytest.mark.parametrize("status", [400, 429, 500])
@pytest.mark.parametrize(
    ("path", "shape"),
    [
        (OPENAI, lambda b, s: set(b["error"]) == {"message", "type", "param", "code"}),
        (ANTHROPIC, lambda b, s: b["type"] == "error" and set(b["error"]) == {"type", "message"}),
        (GEMINI, lambda b, s: b["error"]["code"] == s and "status" in b["error"]),
    ],
)
def test_status_markers_give_provider_shaped_errors(
    fake_provider: FakeProvider, path: str, shape: Callable[[Any, int], bool], status: int
) -> None:
    body = chat_body(path, f"Fail please [[status:{status}]]", stream=True)
    got, headers, raw = call(fake_provider, path, body, KEYS[path])
    assert (got, headers["content-type"].split(";")[0]) == (status, "application/json")
    assert shape(json.loads(raw), status)


def test_drop_marker_closes_the_connection_without_a_response(fake_provider: FakeProvider) -> None:
    with pytest.raises(http.client.RemoteDisconnected):
        call(fake_provider, OPENAI, chat_body(OPENAI, "Bye [[drop]]"), KEYS[OPENAI])
    assert fake_provider.request_count == 1


def test_malformed_json_is_a_provider_shaped_400(fake_provider: FakeProvider) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", fake_provider.port, timeout=10)
    connection.request("POST", ANTHROPIC, b"{not json", KEYS[ANTHROPIC])
    response = connection.getresponse()
    assert response.status == 400
    assert json.loads(response.read())["error"]["type"] == "invalid_request_error"


def test_anthropic_prompt_cache_is_written_then_read(fake_provider: FakeProvider) -> None:
    system = [{"type": "text", "text": "Be terse always", "cache_control": {"type": "ephemeral"}}]
    body = chat_body(ANTHROPIC, "Hi", system=system)
    usages = [json.loads(call(fake_provider, ANTHROPIC, body, KEYS[ANTHROPIC])[2])["usage"] for _ in "ab"]
    cache = [(u["cache_creation_input_tokens"], u["cache_read_input_tokens"]) for u in usages]
    assert cache == [(3, 0), (0, 3)]


def test_anthropic_stream_has_the_event_sequence(fake_provider: FakeProvider) -> None:
    body = chat_body(ANTHROPIC, "Hi there", stream=True)
    _, _, raw = call(fake_provider, ANTHROPIC, body, KEYS[ANTHROPIC])
    names = [line[len("event: ") :] for line in raw.decode().splitlines() if line.startswith("event:")]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(names[3:-3]) == {"content_block_delta"}


def test_gemini_stream_without_alt_sse_is_a_json_array(fake_provider: FakeProvider) -> None:
    path = GEMINI.replace("generateContent", "streamGenerateContent")
    _, headers, raw = call(fake_provider, path, chat_body(GEMINI, "Hi there"), KEYS[GEMINI])
    responses = json.loads(raw)
    assert headers["content-type"].startswith("application/json")
    assert responses[-1]["candidates"][0]["finishReason"] == "STOP"
    assert responses[-1]["usageMetadata"]["totalTokenCount"] == 10


def test_gzip_option_compresses_json_for_clients_that_accept_it() -> None:
    headers = {**KEYS[OPENAI], "Accept-Encoding": "gzip"}
    with FakeProvider(gzip=True) as fake:
        _, got, raw = call(fake, OPENAI, chat_body(OPENAI, "Hi"), headers)
    assert got["content-encoding"] == "gzip"
    assert json.loads(gzip.decompress(raw))["object"] == "chat.completion"


def test_chunked_request_bodies_are_read(fake_provider: FakeProvider) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", fake_provider.port, timeout=10)
    body = iter([b'{"model": "m", "messages": ', b'[{"role": "user", "content": "Hi"}]}'])
    connection.request("POST", OPENAI, body, KEYS[OPENAI], encode_chunked=True)
    assert connection.getresponse().status == 200
    assert fake_provider.requests[0].json()["messages"][0]["content"] == "Hi"


# --- tools, bookkeeping, lifecycle ------------------------------------------------------------


def test_weather_tool_is_deterministic(fake_provider: FakeProvider) -> None:
    first, second = (call(fake_provider, "/tools/weather?city=Paris")[2] for _ in "ab")
    assert first == second
    assert json.loads(first) == {"city": "Paris", "forecast": "windy", "temp_c": 9}
    assert call(fake_provider, "/tools/weather")[0] == 400


def test_echo_and_status_tools(fake_provider: FakeProvider) -> None:
    status, _, raw = call(fake_provider, "/tools/echo", {"a": 1}, {"Content-Type": "application/json"})
    assert (status, json.loads(raw)) == (
        200,
        {"method": "POST", "content_type": "application/json", "json": {"a": 1}},
    )
    assert call(fake_provider, "/tools/status/503")[0] == 503


def test_requests_and_stats_count_everything_but_control_paths(fake_provider: FakeProvider) -> None:
    call(fake_provider, OPENAI, chat_body(OPENAI, "Hi"), KEYS[OPENAI])
    call(fake_provider, "/tools/weather?city=Oslo")
    stats = json.loads(call(fake_provider, "/_fake/stats")[2])
    assert stats == {"requests": 2, "by_path": {OPENAI: 1, "/tools/weather": 1}}
    first, second = fake_provider.requests
    assert first.headers["authorization"] == "Bearer sk-test-fake"
    assert (second.method, second.path, second.query) == ("GET", "/tools/weather", "city=Oslo")
    assert fake_provider.request_count == 2


def test_stop_cuts_open_keep_alive_connections() -> None:
    fake = FakeProvider().start()
    connection = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=10)
    connection.request("GET", "/tools/weather?city=Rome")
    connection.getresponse().read()
    started = time.monotonic()
    fake.stop()
    assert time.monotonic() - started < 2
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        connection.request("GET", "/tools/weather?city=Rome")
        connection.getresponse()


def test_module_prints_its_url_and_stops_on_sigterm() -> None:
    command = [sys.executable, "-m", "rewind.testing.fake_provider", "--chunk-delay-ms", "5"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        url = (process.stdout.readline() if process.stdout else "").strip()
        assert url.startswith("http://127.0.0.1:")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 0
    finally:
        process.kill()
        process.wait()


# --- the real SDKs, pointed straight at the fake ---------------------------------------------

PY_OPENAI = """\
plain: This is a fake answer to: Say hello to Rewind.
plain usage: input=4 output=10 total=14
stream: This is a fake answer to: Count from one to five.
stream usage: input=5 output=11 total=16
tool call: get_weather {"city": "Paris"}
tool result: {"city": "Paris", "forecast": "sunny", "temp_c": 21}
final: According to the tool, city: Paris, forecast: sunny, temp_c: 21.
final usage: input=11 output=10 total=21
stream tool call: get_weather {"city": "Paris"}
"""
COMPACT_OPENAI = PY_OPENAI.replace("input=11 output=10 total=21", "input=6 output=10 total=16")
PY_ANTHROPIC = """\
plain: This is a fake answer to: Say hello to Rewind.
plain usage: input=4 output=10 cache_read=0 cache_write=5
stream: This is a fake answer to: Count from one to five.
stream usage: input=5 output=11 cache_read=5 cache_write=0
tool call: get_weather {"city": "Paris"}
tool result: {"city": "Paris", "forecast": "sunny", "temp_c": 21}
final: According to the tool, city: Paris, forecast: sunny, temp_c: 21.
final usage: input=13 output=10 cache_read=0 cache_write=0
stream tool call: get_weather {"city": "Paris"}
stream final: According to the tool, city: Paris, forecast: sunny, temp_c: 21.
"""
PY_GEMINI = """\
plain: This is a fake answer to: Say hello to Rewind.
plain usage: input=4 output=10 total=14
stream: This is a fake answer to: Count from one to five.
stream usage: input=5 output=11 total=16
tool call: get_weather {"city": "Paris"}
tool result: {"city": "Paris", "forecast": "sunny", "temp_c": 21}
final: According to the tool, city: Paris, forecast: sunny, temp_c: 21.
final usage: input=10 output=10 total=20
stream tool call: get_weather {"city": "Paris"}
"""


def base_urls(fake: FakeProvider) -> dict[str, str]:
    return {
        "OPENAI_BASE_URL": f"{fake.url}/v1",
        "ANTHROPIC_BASE_URL": fake.url,
        "GOOGLE_GEMINI_BASE_URL": fake.url,
    }


def run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("agent", "expected"),
    [
        ("py_openai_agent.py", PY_OPENAI),
        ("py_anthropic_agent.py", PY_ANTHROPIC),
        ("py_gemini_agent.py", PY_GEMINI),
    ],
)
def test_python_sdks_parse_json_sse_tool_calls_and_usage(
    fake_provider: FakeProvider, clients_python: Path, client_env: Env, agent: str, expected: str
) -> None:
    result = run([str(clients_python), str(CLIENTS / agent)], client_env(**base_urls(fake_provider)))
    assert (result.stdout, result.returncode) == (expected, 0), result.stderr


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
def test_python_sdks_raise_their_own_errors(clients_python: Path, client_env: Env, provider: str) -> None:
    with FakeProvider(api_key="sk-test-fake") as fake:
        env = client_env(**base_urls(fake))
        env.update(OPENAI_API_KEY="sk-test-fake", ANTHROPIC_API_KEY="sk-test-fake")
        env.update(GEMINI_API_KEY="sk-test-fake")
        result = run([str(clients_python), str(CLIENTS / "sdk_error_probe.py"), provider], env)
    assert result.stdout == SDK_ERRORS[provider], result.stderr


def _errors(names: dict[str, str]) -> str:
    return "".join(f"{case} {mode}: {names[case]}\n" for case in names for mode in ("json", "stream"))


SDK_ERRORS = {
    "openai": _errors(
        {
            "400": "BadRequestError 400",
            "429": "RateLimitError 429",
            "500": "InternalServerError 500",
            "drop": "APIConnectionError -",
            "badkey": "AuthenticationError 401",
        }
    ),
    "anthropic": _errors(
        {
            "400": "BadRequestError 400",
            "429": "RateLimitError 429",
            "500": "InternalServerError 500",
            "drop": "APIConnectionError -",
            "badkey": "AuthenticationError 401",
        }
    ),
    "gemini": _errors(
        {
            "400": "ClientError 400",
            "429": "ClientError 429",
            "500": "ServerError 500",
            "drop": "RemoteProtocolError -",
            "badkey": "ClientError 400",
        }
    ),
}


def test_node_sdk_agent(fake_provider: FakeProvider, node_agent: list[str], client_env: Env) -> None:
    result = run(node_agent, client_env(**base_urls(fake_provider)))
    assert (result.stdout, result.returncode) == (COMPACT_OPENAI, 0), result.stderr


def test_go_agent(fake_provider: FakeProvider, go_agent: Path, client_env: Env) -> None:
    result = run([str(go_agent), "-base-url", f"{fake_provider.url}/v1"], client_env())
    assert (result.stdout, result.returncode) == (COMPACT_OPENAI, 0), result.stderr


def test_curl_agent(fake_provider: FakeProvider, curl_agent: list[str], client_env: Env) -> None:
    result = run([*curl_agent, "--base-url", f"{fake_provider.url}/v1"], client_env())
    expected = PY_OPENAI.removesuffix('stream tool call: get_weather {"city": "Paris"}\n')
    assert (result.stdout, result.returncode) == (expected, 0), result.stderr


def _contains(actual: Any, expected: Any) -> bool:
    """Whether every key of ``expected`` is in ``actual`` with a matching value."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            k in actual and _contains(actual[k], v) for k, v in expected.items()
        )
    return bool(actual == expected)
