"""Reading recorded runs through the real CLI and proxy: what each step gave the agent,
the conversation at the last call, cost and tags, for OpenAI, Anthropic and Gemini."""

from __future__ import annotations

import json

import pytest

from rewind.testing.fake_provider import FakeProvider
from tests.e2e.harness import PYTHON, Rewind

pytestmark = pytest.mark.e2e

# A two-call tool run in argv[1]'s wire format with model argv[2]: a plain call that the
# fake answers with a get_weather tool call, then a streamed call carrying the tool's
# result, which the fake answers in text. OpenAI's stream asks for no usage.
TOOL_AGENT = """
import json, os, sys, urllib.request
provider, model = sys.argv[1], sys.argv[2]
SYSTEM, ASK, RESULT = "You are a weather bot.", "Weather in Paris?", {"temp": 21}
TOOL = {"name": "get_weather", "description": "Current weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}

def post(url, body, headers):
    headers = {"Content-Type": "application/json", **headers}
    req = urllib.request.Request(url, json.dumps(body).encode(), headers)
    with urllib.request.urlopen(req) as r:
        return r.read()

def openai():
    url, head = os.environ["OPENAI_BASE_URL"] + "/chat/completions", {"Authorization": "Bearer k"}
    msgs = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": ASK}]
    tools = [{"type": "function", "function": TOOL}]
    first = json.loads(post(url, {"model": model, "messages": msgs, "tools": tools}, head))
    answer = first["choices"][0]["message"]
    call = answer["tool_calls"][0]
    msgs += [answer, {"role": "tool", "tool_call_id": call["id"], "content": json.dumps(RESULT)}]
    return post(url, {"model": model, "messages": msgs, "tools": tools, "stream": True}, head)

def anthropic():
    url = os.environ["ANTHROPIC_BASE_URL"] + "/v1/messages"
    head = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
    tools = [{"name": TOOL["name"], "description": TOOL["description"], "input_schema": TOOL["parameters"]}]
    body = {"model": model, "max_tokens": 100, "system": SYSTEM, "tools": tools,
            "messages": [{"role": "user", "content": ASK}]}
    content = json.loads(post(url, body, head))["content"]
    use = next(b for b in content if b["type"] == "tool_use")
    body["messages"] += [{"role": "assistant", "content": content}, {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": use["id"], "content": json.dumps(RESULT)}]}]
    return post(url, {**body, "stream": True}, head)

def gemini():
    base = os.environ["GOOGLE_GEMINI_BASE_URL"] + "/v1beta/models/" + model
    head = {"x-goog-api-key": "k"}
    body = {"systemInstruction": {"parts": [{"text": SYSTEM}]}, "tools": [{"functionDeclarations": [TOOL]}],
            "contents": [{"role": "user", "parts": [{"text": ASK}]}]}
    content = json.loads(post(base + ":generateContent", body, head))["candidates"][0]["content"]
    reply = {"functionResponse": {"name": "get_weather", "response": RESULT}}
    body["contents"] += [content, {"role": "user", "parts": [reply]}]
    return post(base + ":streamGenerateContent?alt=sse", body, head)

print(len({"openai": openai, "anthropic": anthropic, "gemini": gemini}[provider]()), "bytes streamed")
"""

BASE_URLS = {
    "openai": "OPENAI_BASE_URL",
    "anthropic": "ANTHROPIC_BASE_URL",
    "gemini": "GOOGLE_GEMINI_BASE_URL",
}
MODELS = {"openai": "gpt-4o", "anthropic": "claude-sonnet-4-5", "gemini": "gemini-2.5-flash"}


def record_tool_run(rw: Rewind, fake: FakeProvider, provider: str, model: str) -> None:
    base = f"{fake.url}/v1" if provider == "openai" else fake.url
    env = {BASE_URLS[provider]: base}
    result = rw.record("--name", "run", "--", PYTHON, "-c", TOOL_AGENT, provider, model, **env)
    assert result.returncode == 0, result.stderr


def inspect(rw: Rewind, *args: str) -> str:
    result = rw("inspect", "run", *args)
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout
    return result.stdout


TRANSCRIPT = [
    "conversation at step 2",
    "── system ──",
    "You are a weather bot.",
    "── user ──",
    "Weather in Paris?",
    "── assistant ──",
    "→ tool call get_weather",
    "── tool (get_weather",
    '"temp"',
    "── assistant ──",
    "According to the tool, temp: 21.",
]


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
def test_a_recorded_tool_run_reads_as_the_agent_saw_it(rw: Rewind, fake: FakeProvider, provider: str) -> None:
    record_tool_run(rw, fake, provider, MODELS[provider])
    first = inspect(rw, "--step", "1")
    assert "What the agent received" in first and "get_weather" in first and '"city": "Paris"' in first
    assert "$" in first.split("cost", 1)[1].splitlines()[0]  # a priced, non-streamed call
    streamed = inspect(rw, "--step", "2")
    assert "According to the tool, temp: 21." in streamed and "data:" not in streamed
    assert "streamed," in streamed and " chunks, ttft " in streamed
    raw = inspect(rw, "--step", "2", "--raw")
    assert "data:" in raw and "What the agent received" not in raw
    transcript = inspect(rw, "--conversation")
    at = 0
    for part in TRANSCRIPT:
        at = transcript.index(part, at) + len(part)
    roles = [m["role"] for m in rw.json("inspect", "run", "--conversation")["messages"]]
    assert roles == ["system", "user", "assistant", "tool", "assistant"]


def test_an_openai_stream_without_usage_says_not_reported(rw: Rewind, fake: FakeProvider) -> None:
    record_tool_run(rw, fake, "openai", "gpt-4o")
    streamed = inspect(rw, "--step", "2")
    assert "usage          input not reported  output not reported" in streamed
    assert "cost           unknown: usage not reported" in streamed
    doc = rw.json("inspect", "run", "--step", "2")
    assert doc["received"]["usage"]["input_tokens"] is None and doc["received"]["finish_reason"] == "stop"
    assert doc["response"]["body"].startswith("data: ")
    session = rw.json("inspect", "run")
    assert session["unpriced_calls"] == 1 and session["cost_usd"] > 0
    assert [s["cost_usd"] is None for s in session["steps"]] == [False, True]


def test_a_priced_model_costs_dollars_and_an_unknown_one_is_unpriced(rw: Rewind, fake: FakeProvider) -> None:
    record_tool_run(rw, fake, "anthropic", "claude-sonnet-4-5")
    priced = rw.json("inspect", "run")
    assert priced["cost_usd"] > 0 and priced["unpriced_calls"] == 0
    assert all(s["cost_usd"] > 0 and s["tag"] is None for s in priced["steps"])
    assert "cost: $" in inspect(rw)
    record_tool_run(rw, fake, "anthropic", "my-local-model")  # the newest "run"
    unpriced = rw.json("inspect", "run")
    assert unpriced["cost_usd"] is None and unpriced["unpriced_calls"] == 2
    assert "cost: unknown (2 calls unpriced" in inspect(rw)
    assert "unpriced: no price for my-local-model" in inspect(rw, "--step", "1")


FAILING_AGENT = """
import json, os, urllib.request, urllib.error
body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi [[status:429]]"}]}
req = urllib.request.Request(os.environ["OPENAI_BASE_URL"] + "/chat/completions", json.dumps(body).encode(),
    {"Authorization": "Bearer k", "Content-Type": "application/json"})
try:
    urllib.request.urlopen(req)
except urllib.error.HTTPError as e:
    print("status", e.code)
"""


def test_a_failed_call_shows_its_tag_and_error(rw: Rewind, fake: FakeProvider) -> None:
    rw.record("--name", "run", "--", PYTHON, "-c", FAILING_AGENT, OPENAI_BASE_URL=f"{fake.url}/v1")
    assert "rate_limited" in inspect(rw)
    step = inspect(rw, "--step", "1")
    assert "tag            rate_limited" in step and "error " in step
    assert rw.json("inspect", "run")["steps"][0]["tag"] == "rate_limited"
    conversation = inspect(rw, "--conversation")
    assert "step failed:" in conversation and "hi [[status:429]]" in conversation
    assert json.loads(rw("inspect", "run", "--conversation", "--json").stdout)["step"] == 1
