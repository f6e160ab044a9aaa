"""The bundled demo agent against the fake provider, directly (no proxy)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

from rewind.testing.fake_provider import FakeProvider

EXPECTED = """\
Question: What's the weather in Paris?
Tool call: get_weather({"city": "Paris"})
Weather service: windy, 9 degrees C
Answer: According to the tool, city: Paris, forecast: windy, temp_c: 9.
Done: 2 LLM calls, 1 tool call(s), 52 tokens (40 in, 12 out).
"""


Run = subprocess.CompletedProcess[str]
Env = Callable[..., dict[str, str]]


def run_demo(fake: FakeProvider, env: Env, *args: str, key: str = "sk-test-fake") -> Run:
    env_vars = env(OPENAI_BASE_URL=f"{fake.url}/v1", REWIND_DEMO_WEATHER_URL=fake.url)
    env_vars["OPENAI_API_KEY"] = key
    command = [sys.executable, "-m", "rewind.testing.demo_agent", *args]
    return subprocess.run(command, env=env_vars, capture_output=True, text=True, timeout=30)


def test_demo_agent_asks_calls_the_tool_and_streams_the_answer(
    fake_provider: FakeProvider, client_env: Env
) -> None:
    result = run_demo(fake_provider, client_env, "What's the weather in Paris?")
    assert (result.returncode, result.stdout, result.stderr) == (0, EXPECTED, "")
    paths = [(r.method, r.path) for r in fake_provider.requests]
    assert paths == [
        ("POST", "/v1/chat/completions"),
        ("GET", "/tools/weather"),
        ("POST", "/v1/chat/completions"),
    ]
    second = fake_provider.requests[2].json()
    assert second["stream"] is True and second["stream_options"] == {"include_usage": True}


def test_demo_agent_reports_an_http_error(fake_provider: FakeProvider, client_env: Env) -> None:
    result = run_demo(fake_provider, client_env, "Weather in Paris? [[status:500]]")
    assert result.returncode == 1
    assert "demo_agent: HTTP 500" in result.stderr


def test_demo_agent_needs_an_api_key(fake_provider: FakeProvider, client_env: Env) -> None:
    result = run_demo(fake_provider, client_env, key="")
    assert result.returncode == 2 and "OPENAI_API_KEY" in result.stderr
    assert fake_provider.request_count == 0
