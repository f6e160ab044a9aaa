"""An agent on the official google-genai Python SDK, for Rewind's end-to-end tests.

Uses GEMINI_API_KEY (or GOOGLE_API_KEY); the SDK honours GOOGLE_GEMINI_BASE_URL.
Function calling is declared explicitly (no automatic calling), so every call is visible.
"""

from __future__ import annotations

import os
import sys
from argparse import Namespace
from typing import Any

import httpx
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
from google import genai
from google.genai import errors, types

MODEL = MODELS["gemini"]
WEATHER = types.FunctionDeclaration(
    name="get_weather", description=WEATHER_DESCRIPTION, parameters_json_schema=WEATHER_SCHEMA
)
TOOL_CONFIG = types.GenerateContentConfig(
    tools=[types.Tool(function_declarations=[WEATHER])],
    automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
)


def user(text: str) -> types.Content:
    return types.Content(role="user", parts=[types.Part.from_text(text=text)])


def show_usage(label: str, usage: Any) -> None:
    print(
        f"{label} usage: input={usage.prompt_token_count} "
        f"output={usage.candidates_token_count} total={usage.total_token_count}",
        flush=True,
    )


def plain(client: genai.Client, args: Namespace) -> None:
    reply = client.models.generate_content(model=MODEL, contents=prompt(PLAIN_PROMPT, args))
    print(f"plain: {reply.text}", flush=True)
    show_usage("plain", reply.usage_metadata)


def stream(client: genai.Client, args: Namespace) -> None:
    text, usage = [], None
    for chunk in client.models.generate_content_stream(model=MODEL, contents=prompt(STREAM_PROMPT, args)):
        text.append(chunk.text or "")
        usage = chunk.usage_metadata or usage
    print(f"stream: {''.join(text)}", flush=True)
    show_usage("stream", usage)


def tool_round_trip(client: genai.Client, args: Namespace) -> None:
    contents: list[Any] = [user(prompt(WEATHER_PROMPT, args))]
    first = client.models.generate_content(model=MODEL, contents=contents, config=TOOL_CONFIG)
    call = (first.function_calls or [])[0]
    print(f"tool call: {call.name} {show(call.args)}", flush=True)
    result = get_weather(**(call.args or {}))
    print(f"tool result: {show(result)}", flush=True)
    contents.append(first.candidates[0].content)  # type: ignore[index]
    answer = types.Part.from_function_response(name="get_weather", response={"result": result})
    contents.append(types.Content(role="user", parts=[answer]))
    final = client.models.generate_content(model=MODEL, contents=contents, config=TOOL_CONFIG)
    print(f"final: {final.text}", flush=True)
    show_usage("final", final.usage_metadata)


def stream_tool(client: genai.Client, args: Namespace) -> None:
    calls = []
    for chunk in client.models.generate_content_stream(
        model=MODEL, contents=prompt(WEATHER_PROMPT, args), config=TOOL_CONFIG
    ):
        calls += chunk.function_calls or []
    print(f"stream tool call: {calls[0].name} {show(calls[0].args)}", flush=True)


def describe(error: BaseException) -> str:
    if isinstance(error, errors.APIError):
        return f"{error.code} {type(error).__name__}"
    return "connection"


def make_client(args: Namespace) -> genai.Client:
    key = os.environ.get("GEMINI_API_KEY") or os.environ.get("GOOGLE_API_KEY")
    retries = types.HttpRetryOptions(attempts=1 + args.max_retries) if args.max_retries else None
    options = types.HttpOptions(timeout=30_000, retry_options=retries)
    return genai.Client(api_key=key, http_options=options)


def main() -> int:
    args = parse_args(__doc__ or "")
    client = make_client(args)
    sections = [
        ("plain", lambda: plain(client, args)),
        ("stream", lambda: stream(client, args)),
        ("tool", lambda: tool_round_trip(client, args)),
        ("stream_tool", lambda: stream_tool(client, args)),
    ]
    return run_sections(sections, args, (errors.APIError, httpx.HTTPError), describe)


if __name__ == "__main__":
    sys.exit(main())
