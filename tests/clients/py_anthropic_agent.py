"""An agent on the official anthropic Python SDK, for Rewind's end-to-end tests.

Reads ANTHROPIC_API_KEY and, unless ``--base-url`` is given, ANTHROPIC_BASE_URL.
``--base-url https://api.anthropic.com`` sends the calls through HTTPS_PROXY (trusting
SSL_CERT_FILE) instead of a reverse listener. The system prompt carries
``cache_control``, so usage lines show prompt-cache writes and reads.
"""

from __future__ import annotations

import json
import sys
from argparse import Namespace
from typing import Any

import anthropic
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

MODEL = MODELS["anthropic"]
MAX_TOKENS = 256
SYSTEM: list[Any] = [
    {"type": "text", "text": "You are a terse assistant.", "cache_control": {"type": "ephemeral"}}
]
TOOLS: list[Any] = [
    {"name": "get_weather", "description": WEATHER_DESCRIPTION, "input_schema": WEATHER_SCHEMA}
]


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


def text_of(message: Any) -> str:
    return "".join(block.text for block in message.content if block.type == "text")


def tool_use_of(message: Any) -> Any:
    return next(block for block in message.content if block.type == "tool_use")


def show_usage(label: str, usage: Any) -> None:
    print(
        f"{label} usage: input={usage.input_tokens} output={usage.output_tokens} "
        f"cache_read={usage.cache_read_input_tokens} "
        f"cache_write={usage.cache_creation_input_tokens}",
        flush=True,
    )


def plain(client: anthropic.Anthropic, args: Namespace) -> None:
    reply = client.messages.create(
        model=MODEL,
        max_tokens=MAX_TOKENS,
        system=SYSTEM,
        messages=[user(prompt(PLAIN_PROMPT, args))],
    )
    print(f"plain: {text_of(reply)}", flush=True)
    show_usage("plain", reply.usage)


def stream(client: anthropic.Anthropic, args: Namespace) -> None:
    with client.messages.stream(
        model=MODEL,
        max_tokens=MAX_TOKENS,
        system=SYSTEM,
        messages=[user(prompt(STREAM_PROMPT, args))],
    ) as events:
        text = "".join(events.text_stream)
        final = events.get_final_message()
    print(f"stream: {text}", flush=True)
    show_usage("stream", final.usage)


def tool_round_trip(client: anthropic.Anthropic, args: Namespace) -> None:
    messages: list[Any] = [user(prompt(WEATHER_PROMPT, args))]
    first = client.messages.create(model=MODEL, max_tokens=MAX_TOKENS, messages=messages, tools=TOOLS)
    call = tool_use_of(first)
    print(f"tool call: {call.name} {show(call.input)}", flush=True)
    result = get_weather(**call.input)
    print(f"tool result: {show(result)}", flush=True)
    messages.append({"role": "assistant", "content": first.content})
    block = {"type": "tool_result", "tool_use_id": call.id, "content": json.dumps(result)}
    messages.append(user([block]))
    final = client.messages.create(model=MODEL, max_tokens=MAX_TOKENS, messages=messages, tools=TOOLS)
    print(f"final: {text_of(final)}", flush=True)
    show_usage("final", final.usage)


def stream_tool(client: anthropic.Anthropic, args: Namespace) -> None:
    """The whole tool round trip streamed: the tool call arrives as input_json_delta events,
    and the answer to its result streams back too."""
    messages: list[Any] = [user(prompt(WEATHER_PROMPT, args))]
    with client.messages.stream(model=MODEL, max_tokens=MAX_TOKENS, messages=messages, tools=TOOLS) as events:
        first = events.get_final_message()
    call = tool_use_of(first)
    print(f"stream tool call: {call.name} {show(call.input)}", flush=True)
    messages.append({"role": "assistant", "content": first.content})
    block = {"type": "tool_result", "tool_use_id": call.id, "content": json.dumps(get_weather(**call.input))}
    messages.append(user([block]))
    with client.messages.stream(model=MODEL, max_tokens=MAX_TOKENS, messages=messages, tools=TOOLS) as events:
        answer = "".join(events.text_stream)
    print(f"stream final: {answer}", flush=True)


def describe(error: BaseException) -> str:
    if isinstance(error, anthropic.APIStatusError):
        return f"{error.status_code} {type(error).__name__}"
    return "connection"


def main() -> int:
    args = parse_args(__doc__ or "", base_url=True)
    client = anthropic.Anthropic(base_url=args.base_url, max_retries=args.max_retries, timeout=30)
    sections = [
        ("plain", lambda: plain(client, args)),
        ("stream", lambda: stream(client, args)),
        ("tool", lambda: tool_round_trip(client, args)),
        ("stream_tool", lambda: stream_tool(client, args)),
    ]
    return run_sections(sections, args, (anthropic.APIError,), describe)


if __name__ == "__main__":
    sys.exit(main())
