"""A tool-calling loop on litellm, for Rewind's end-to-end tests.

``litellm.completion(model="openai/gpt-4o-mini", tools=[get_weather], stream=True,
stream_options={"include_usage": True})`` until the model answers in text; prints each
tool call, the final answer and the usage of each call. ``--default-stream-options``
leaves ``stream_options`` out, so litellm decides (it adds ``include_usage`` only for
OpenAI's own hosts). OPENAI_API_KEY and OPENAI_BASE_URL come from the environment, as
litellm reads them; the bundled cost map is used, so nothing but the model is reached.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_TELEMETRY", "False")

import litellm  # noqa: E402

QUESTION = "What's the weather in Paris?"
MODEL = "openai/gpt-4o-mini"
TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the current weather for a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]


def get_weather(city: str) -> str:
    return f"{city}: sunny, 21 C"


def ask(messages: list[dict[str, Any]], stream_options: dict[str, Any] | None) -> Any:
    extra = {} if stream_options is None else {"stream_options": stream_options}
    chunks = list(litellm.completion(model=MODEL, messages=messages, tools=TOOLS, stream=True, **extra))
    reply = litellm.stream_chunk_builder(chunks, messages=messages)
    usage = getattr(reply, "usage", None)
    print(f"usage: {usage.total_tokens if usage else None}", flush=True)
    return reply.choices[0].message


def main() -> None:
    litellm.telemetry = False
    stream_options = None if "--default-stream-options" in sys.argv else {"include_usage": True}
    messages: list[dict[str, Any]] = [{"role": "user", "content": QUESTION}]
    message = ask(messages, stream_options)
    while message.tool_calls:
        messages.append(message.model_dump(exclude_none=True))
        for call in message.tool_calls:
            args = json.loads(call.function.arguments)
            print(f"tool call: {call.function.name} {json.dumps(args)}", flush=True)
            messages.append({"role": "tool", "tool_call_id": call.id, "content": get_weather(**args)})
        message = ask(messages, stream_options)
    print(f"final: {message.content}", flush=True)


if __name__ == "__main__":
    main()
