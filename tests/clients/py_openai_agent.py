"""An agent on the official openai Python SDK, for Rewind's end-to-end tests.

Reads OPENAI_BASE_URL and OPENAI_API_KEY from the environment, as the SDK does by
default. Prints ``plain:``, ``stream:``, ``tool call:``, ``tool result:``, ``final:``,
``stream tool call:`` lines and the usage of each call.
"""

from __future__ import annotations

import json
import sys
from argparse import Namespace
from typing import Any

import openai
from agent_common import (
    MODELS,
    PLAIN_PROMPT,
    STREAM_PROMPT,
    WEATHER_DESCRIPTION,
    WEATHER_PROMPT,
    WEATHER_SCHEMA,
    get_weather,
    parse_args,
    prompt,
    run_sections,
    show,
)

MODEL = MODELS["openai"]
TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": WEATHER_DESCRIPTION,
            "parameters": WEATHER_SCHEMA,
        },
    }
]


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def show_usage(label: str, usage: Any) -> None:
    print(
        f"{label} usage: input={usage.prompt_tokens} output={usage.completion_tokens} "
        f"total={usage.total_tokens}",
        flush=True,
    )


def plain(client: openai.OpenAI, args: Namespace) -> None:
    reply = client.chat.completions.create(model=MODEL, messages=[user(prompt(PLAIN_PROMPT, args))])
    print(f"plain: {reply.choices[0].message.content}", flush=True)
    show_usage("plain", reply.usage)


def stream(client: openai.OpenAI, args: Namespace) -> None:
    chunks = client.chat.completions.create(
        model=MODEL,
        messages=[user(prompt(STREAM_PROMPT, args))],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, usage = [], None
    for chunk in chunks:
        text += [c.delta.content or "" for c in chunk.choices]
        usage = chunk.usage or usage
    print(f"stream: {''.join(text)}", flush=True)
    show_usage("stream", usage)


def tool_round_trip(client: openai.OpenAI, args: Namespace) -> None:
    messages: list[Any] = [user(prompt(WEATHER_PROMPT, args))]
    first = client.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS)
    call = first.choices[0].message.tool_calls[0]
    arguments = json.loads(call.function.arguments)
    print(f"tool call: {call.function.name} {show(arguments)}", flush=True)
    result = get_weather(**arguments)
    print(f"tool result: {show(result)}", flush=True)
    messages.append(first.choices[0].message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": json.dumps(result)})
    final = client.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS)
    print(f"final: {final.choices[0].message.content}", flush=True)
    show_usage("final", final.usage)


def stream_tool(client: openai.OpenAI, args: Namespace) -> None:
    chunks = client.chat.completions.create(
        model=MODEL, messages=[user(prompt(WEATHER_PROMPT, args))], tools=TOOLS, stream=True
    )
    name, fragments = "", []
    for chunk in chunks:
        deltas = chunk.choices[0].delta.tool_calls if chunk.choices else None
        for function in [d.function for d in deltas or [] if d.function]:
            name += function.name or ""
            fragments.append(function.arguments or "")
    print(f"stream tool call: {name} {show(json.loads(''.join(fragments)))}", flush=True)


def describe(error: BaseException) -> str:
    if isinstance(error, openai.APIStatusError):
        return f"{error.status_code} {type(error).__name__}"
    return "connection"


def main() -> int:
    args = parse_args(__doc__ or "")
    client = openai.OpenAI(max_retries=args.max_retries, timeout=30)
    sections = [
        ("plain", lambda: plain(client, args)),
        ("stream", lambda: stream(client, args)),
        ("tool", lambda: tool_round_trip(client, args)),
        ("stream_tool", lambda: stream_tool(client, args)),
    ]
    return run_sections(sections, args, (openai.APIError,), describe)


if __name__ == "__main__":
    sys.exit(main())
