"""A small tool-calling agent on the openai SDK that copes with some faults, for
``rewind mutate`` tests.

Step 1 asks for a tool call (not streamed); step 2 streams the final answer. The agent
relies on the SDK for retries (``--max-retries``, ``--timeout`` per call), answers a tool
call whose arguments are not JSON by telling the model so (a request never recorded),
and prints what it got of a stream that broke off. Anything else fails it.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import httpx
import openai

TOOLS: list[Any] = [
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


def tool_message(call: Any) -> dict[str, Any]:
    try:
        arguments = json.loads(call.function.arguments)
    except ValueError:
        print("tool call: arguments are not JSON; telling the model", flush=True)
        return {
            "role": "tool",
            "tool_call_id": call.id,
            "content": "error: your arguments were not valid JSON",
        }
    print(f"tool call: {call.function.name} {json.dumps(arguments, sort_keys=True)}", flush=True)
    result = {"city": arguments.get("city"), "forecast": "sunny"}
    return {"role": "tool", "tool_call_id": call.id, "content": json.dumps(result)}


def final(client: openai.OpenAI, messages: list[Any]) -> None:
    text: list[str] = []
    try:
        for chunk in client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True):
            text += [c.delta.content or "" for c in chunk.choices]
    except (httpx.HTTPError, openai.APIError) as exc:
        print(f"final (cut off: {type(exc).__name__}): {''.join(text)}", flush=True)
        return
    print(f"final: {''.join(text)}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--max-retries", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=2.0)
    args = parser.parse_args()
    client = openai.OpenAI(max_retries=args.max_retries, timeout=args.timeout)
    messages: list[Any] = [{"role": "user", "content": "What's the weather in Paris?"}]
    first = client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=TOOLS)
    message = first.choices[0].message
    messages.append(message.model_dump(exclude_none=True))
    messages += [tool_message(call) for call in message.tool_calls or []]
    final(client, messages)
    return 0


if __name__ == "__main__":
    sys.exit(main())
