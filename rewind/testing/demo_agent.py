"""The example agent that ``make demo`` records: a question, a tool call, a streamed answer.

Standard library only, so it runs anywhere ``python`` does::

    python -m rewind.testing.demo_agent "What's the weather in Paris?"

1. asks OpenAI chat completions at ``$OPENAI_BASE_URL`` (default
   ``https://api.openai.com/v1``) with a ``get_weather`` tool, not streamed;
2. calls the weather service over plain HTTP at
   ``http://weather.example/tools/weather?city=...`` (``$REWIND_DEMO_WEATHER_URL``
   overrides the origin; the host does not resolve, ``rewind record --route`` maps it,
   and urllib honours ``HTTP_PROXY``);
3. sends the tool result back with ``stream: true`` and prints the answer as it streams;
4. prints a one-line summary of calls and tokens.

``OPENAI_API_KEY`` must be set (any value works against the fake provider).
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

MODEL = "gpt-4o-mini"
DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_WEATHER_URL = "http://weather.example"
DEFAULT_QUESTION = "What's the weather in Paris?"
SYSTEM_PROMPT = "You are a helpful assistant. Use the get_weather tool for weather questions."
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "The city name"}},
            "required": ["city"],
        },
    },
}
TIMEOUT_S = 60


class Usage:
    """Tokens added up over the run's LLM calls."""

    def __init__(self) -> None:
        self.calls = self.tool_calls = self.input = self.output = 0

    def add(self, usage: dict[str, Any] | None) -> None:
        self.calls += 1
        self.input += int((usage or {}).get("prompt_tokens", 0))
        self.output += int((usage or {}).get("completion_tokens", 0))

    def summary(self) -> str:
        return (
            f"Done: {self.calls} LLM calls, {self.tool_calls} tool call(s), "
            f"{self.input + self.output} tokens ({self.input} in, {self.output} out)."
        )


def main(argv: list[str] | None = None) -> int:
    """Run the agent; 0 on success, 1 on an HTTP failure, 2 without an API key."""
    question = " ".join(sys.argv[1:] if argv is None else argv) or DEFAULT_QUESTION
    key = os.environ.get("OPENAI_API_KEY")
    if not key:
        print("demo_agent: set OPENAI_API_KEY (any value works with the fake provider)", file=sys.stderr)
        return 2
    base_url = os.environ.get("OPENAI_BASE_URL", DEFAULT_BASE_URL).rstrip("/")
    try:
        run(question, base_url, key)
    except urllib.error.HTTPError as error:
        print(f"demo_agent: HTTP {error.code} from {error.url}: {_body(error)}", file=sys.stderr)
        return 1
    except urllib.error.URLError as error:
        print(f"demo_agent: request failed: {error.reason}", file=sys.stderr)
        return 1
    return 0


def run(question: str, base_url: str, key: str) -> None:
    """Ask, call the tool the model picks, stream the final answer, summarise."""
    usage = Usage()
    print(f"Question: {question}", flush=True)
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": question},
    ]
    reply = chat(base_url, key, {"model": MODEL, "messages": messages, "tools": [WEATHER_TOOL]})
    usage.add(reply.get("usage"))
    message = reply["choices"][0]["message"]
    calls = message.get("tool_calls") or []
    if calls:
        messages.append({"role": "assistant", "content": None, "tool_calls": calls})
        messages.extend(use_tool(call) for call in calls)
        usage.tool_calls = len(calls)
        stream_answer(base_url, key, messages, usage)
    else:
        print(f"Answer: {message.get('content')}", flush=True)
    print(usage.summary(), flush=True)


def use_tool(call: dict[str, Any]) -> dict[str, Any]:
    """Run one tool call; the tool message that carries its result back."""
    arguments = json.loads(call["function"]["arguments"] or "{}")
    print(f"Tool call: {call['function']['name']}({json.dumps(arguments)})", flush=True)
    weather = fetch_weather(str(arguments.get("city", "")))
    print(f"Weather service: {weather['forecast']}, {weather['temp_c']} degrees C", flush=True)
    return {"role": "tool", "tool_call_id": call["id"], "content": json.dumps(weather)}


def fetch_weather(city: str) -> dict[str, Any]:
    """GET the weather service (plain HTTP, through HTTP_PROXY when set)."""
    origin = os.environ.get("REWIND_DEMO_WEATHER_URL", DEFAULT_WEATHER_URL).rstrip("/")
    url = f"{origin}/tools/weather?{urllib.parse.urlencode({'city': city})}"
    with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
        result: dict[str, Any] = json.load(response)
    return result


def chat(base_url: str, key: str, body: dict[str, Any]) -> dict[str, Any]:
    """One non-streamed chat completion."""
    with urllib.request.urlopen(_request(base_url, key, body), timeout=TIMEOUT_S) as response:
        reply: dict[str, Any] = json.load(response)
    return reply


def stream_answer(base_url: str, key: str, messages: list[dict[str, Any]], usage: Usage) -> None:
    """Stream the final answer to stdout as it arrives."""
    body = {
        "model": MODEL,
        "messages": messages,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    print("Answer: ", end="", flush=True)
    last_usage = None
    with urllib.request.urlopen(_request(base_url, key, body), timeout=TIMEOUT_S) as response:
        for chunk in sse_chunks(response):
            for choice in chunk.get("choices") or []:
                print(choice.get("delta", {}).get("content") or "", end="", flush=True)
            last_usage = chunk.get("usage") or last_usage
    print(flush=True)
    usage.add(last_usage)


def sse_chunks(lines: Iterator[bytes]) -> Iterator[dict[str, Any]]:
    """The JSON objects of ``data:`` lines, until ``data: [DONE]``."""
    for raw in lines:
        line = raw.decode("utf-8").strip()
        if not line.startswith("data:"):
            continue
        data = line[len("data:") :].strip()
        if data == "[DONE]":
            return
        yield json.loads(data)


def _request(base_url: str, key: str, body: dict[str, Any]) -> urllib.request.Request:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    data = json.dumps(body).encode()
    return urllib.request.Request(f"{base_url}/chat/completions", data=data, headers=headers)


def _body(error: urllib.error.HTTPError) -> str:
    try:
        return error.read().decode("utf-8", "replace")[:500]
    except OSError:
        return ""


if __name__ == "__main__":
    sys.exit(main())
