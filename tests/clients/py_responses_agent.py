"""An agent on the openai Python SDK's Responses API, for Rewind's end-to-end tests.

Reads OPENAI_BASE_URL and OPENAI_API_KEY from the environment, as the SDK does by
default. Each tool section asks for the weather, gets a ``function_call``, runs the tool and
sends only its ``function_call_output`` with ``previous_response_id``, then prints the
answer: ``tool`` with ``responses.create``, ``stream_tool`` with ``stream=True`` events,
``helper_tool`` with the SDK's ``responses.stream`` helper (which checks the event order).
Prints one deterministic line per fact (never an id), and the usage of each call.
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
        "name": "get_weather",
        "description": WEATHER_DESCRIPTION,
        "parameters": WEATHER_SCHEMA,
        "strict": False,
    }
]
SECTIONS = "plain,tool,stream_tool,helper_tool"


def show_usage(label: str, usage: Any) -> None:
    print(
        f"{label} usage: input={usage.input_tokens} output={usage.output_tokens} "
        f"total={usage.total_tokens} reasoning={usage.output_tokens_details.reasoning_tokens}",
        flush=True,
    )


def function_call(response: Any) -> Any:
    """The one function_call item of ``response``, after printing it."""
    calls = [item for item in response.output if item.type == "function_call"]
    assert len(calls) == 1, response.output
    print(f"tool call: {calls[0].name} {show(json.loads(calls[0].arguments))}", flush=True)
    return calls[0]


def tool_output(call: Any) -> list[Any]:
    """The input that answers ``call``: its output alone (the rest is on the server)."""
    result = get_weather(**json.loads(call.arguments))
    print(f"tool result: {show(result)}", flush=True)
    return [{"type": "function_call_output", "call_id": call.call_id, "output": json.dumps(result)}]


def plain(client: openai.OpenAI, args: Namespace) -> None:
    reply = client.responses.create(model=MODEL, input=prompt(PLAIN_PROMPT, args), instructions="Be brief.")
    print(f"plain: {reply.output_text}", flush=True)
    show_usage("plain", reply.usage)


def tool(client: openai.OpenAI, args: Namespace) -> None:
    first = client.responses.create(
        model=MODEL,
        input=[{"role": "user", "content": prompt(WEATHER_PROMPT, args)}],
        tools=TOOLS,
        reasoning={"effort": "low"},
    )
    show_usage("tool", first.usage)
    final = client.responses.create(
        model=MODEL, input=tool_output(function_call(first)), tools=TOOLS, previous_response_id=first.id
    )
    assert final.previous_response_id == first.id
    print(f"final: {final.output_text}", flush=True)
    show_usage("final", final.usage)


def streamed(client: openai.OpenAI, **params: Any) -> Any:
    """The completed response of a ``stream=True`` call, after printing its text deltas."""
    deltas, completed = [], None
    for event in client.responses.create(model=MODEL, tools=TOOLS, stream=True, **params):
        if event.type == "response.output_text.delta":
            deltas.append(event.delta)
        elif event.type == "response.completed":
            completed = event.response
    assert completed is not None, "no response.completed event"
    if deltas:
        print(f"stream deltas: {''.join(deltas)}", flush=True)
    return completed


def stream_tool(client: openai.OpenAI, args: Namespace) -> None:
    first = streamed(client, input=prompt(WEATHER_PROMPT, args))
    final = streamed(client, input=tool_output(function_call(first)), previous_response_id=first.id)
    print(f"stream final: {final.output_text}", flush=True)
    show_usage("stream final", final.usage)


def helper_tool(client: openai.OpenAI, args: Namespace) -> None:
    with client.responses.stream(model=MODEL, input=prompt(WEATHER_PROMPT, args), tools=TOOLS) as stream:
        first = stream.get_final_response()
    answer = tool_output(function_call(first))
    params: Any = {"model": MODEL, "input": answer, "tools": TOOLS, "previous_response_id": first.id}
    with client.responses.stream(**params) as stream:
        text = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
        final = stream.get_final_response()
    assert text == final.output_text, (text, final.output_text)
    print(f"helper final: {final.output_text}", flush=True)
    show_usage("helper final", final.usage)


def describe(error: BaseException) -> str:
    if isinstance(error, openai.APIStatusError):
        return f"{error.status_code} {type(error).__name__}"
    return "connection"


def main() -> int:
    args = parse_args(__doc__ or "")
    if args.sections == "plain,stream,tool,stream_tool":  # agent_common's default
        args.sections = SECTIONS
    client = openai.OpenAI(max_retries=args.max_retries, timeout=30)
    sections = [
        ("plain", lambda: plain(client, args)),
        ("tool", lambda: tool(client, args)),
        ("stream_tool", lambda: stream_tool(client, args)),
        ("helper_tool", lambda: helper_tool(client, args)),
    ]
    return run_sections(sections, args, (openai.APIError,), describe)


if __name__ == "__main__":
    sys.exit(main())
