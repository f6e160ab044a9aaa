"""What the Python client agents share: prompts, the weather tool, output and error handling.

Each agent runs the same sections (plain, stream, tool round trip, streamed tool call) and
prints one deterministic line per fact, so a replay's stdout can be compared to a
recording's. A section that fails prints ``<section> error: <status> <ExceptionName>``
(or ``connection``) and the agent exits 1 after running the rest.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-haiku-4-5", "gemini": "gemini-2.0-flash"}
PLAIN_PROMPT = "Say hello to Rewind."
STREAM_PROMPT = "Count from one to five."
WEATHER_PROMPT = "What's the weather in Paris?"
WEATHER_DESCRIPTION = "Get the current weather for a city."
WEATHER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string", "description": "The city name"}},
    "required": ["city"],
}

Section = tuple[str, Callable[[], None]]


def get_weather(city: str) -> dict[str, Any]:
    """The agent's local tool: a fixed forecast."""
    return {"city": city, "forecast": "sunny", "temp_c": 21}


def show(value: Any) -> str:
    """A JSON value as one stable line."""
    return json.dumps(value, sort_keys=True)


def parse_args(description: str, base_url: bool = False) -> argparse.Namespace:
    """The agents' common options: ``--suffix`` (appended to prompts), ``--max-retries``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--suffix", default="", help="text appended to every prompt")
    parser.add_argument("--max-retries", type=int, default=0, help="SDK retries (default 0)")
    parser.add_argument("--sections", default="plain,stream,tool,stream_tool")
    if base_url:
        parser.add_argument("--base-url", default=None, help="pass this base URL to the SDK")
    return parser.parse_args()


def prompt(text: str, args: argparse.Namespace) -> str:
    """``text`` with the ``--suffix`` (test markers such as ``[[status:429]]``)."""
    return f"{text} {args.suffix}".strip()


def run_sections(
    sections: list[Section],
    args: argparse.Namespace,
    errors: tuple[type[BaseException], ...],
    describe: Callable[[BaseException], str],
) -> int:
    """Run the selected sections; print failures; 0 when all passed, else 1."""
    wanted = args.sections.split(",")
    failed = False
    for label, section in sections:
        if label not in wanted:
            continue
        try:
            section()
        except errors as error:
            print(f"{label} error: {describe(error)}", flush=True)
            failed = True
    return 1 if failed else 0
