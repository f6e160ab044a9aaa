"""Probe how an official SDK reports the fake provider's failures, one line per case.

usage: sdk_error_probe.py openai|anthropic|gemini

Reads the same environment as the agents (base URL and API key variables). For each
case -- ``[[status:400]]``, ``[[status:429]]``, ``[[status:500]]``, ``[[drop]]`` and a
wrong API key -- and each mode (``json``, ``stream``) it prints
``<case> <mode>: <ExceptionName> <status>`` (status ``-`` for connection errors).
SDK retries are off, so each case is exactly one request.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

CASES = {
    "400": "[[status:400]]",
    "429": "[[status:429]]",
    "500": "[[status:500]]",
    "drop": "[[drop]]",
    "badkey": "",
}
WRONG_KEY = "wrong-test-key"
Call = Callable[[str, str | None, bool], Any]


def openai_call() -> Call:
    import openai

    def call(text: str, key: str | None, stream: bool) -> Any:
        client = openai.OpenAI(max_retries=0, timeout=10, **({"api_key": key} if key else {}))
        messages: Any = [{"role": "user", "content": text}]
        reply = client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=stream)
        return list(reply) if stream else reply

    return call


def anthropic_call() -> Call:
    import anthropic

    def call(text: str, key: str | None, stream: bool) -> Any:
        client = anthropic.Anthropic(max_retries=0, timeout=10, **({"api_key": key} if key else {}))
        messages: Any = [{"role": "user", "content": text}]
        reply = client.messages.create(
            model="claude-haiku-4-5", max_tokens=64, messages=messages, stream=stream
        )
        return list(reply) if stream else reply

    return call


def gemini_call() -> Call:
    import os

    from google import genai
    from google.genai import types

    def call(text: str, key: str | None, stream: bool) -> Any:
        api_key = key or os.environ.get("GEMINI_API_KEY") or os.environ.get("GOOGLE_API_KEY")
        options = types.HttpOptions(timeout=10_000)
        client = genai.Client(api_key=api_key, http_options=options)
        if stream:
            return list(client.models.generate_content_stream(model="gemini-2.0-flash", contents=text))
        return client.models.generate_content(model="gemini-2.0-flash", contents=text)

    return call


def status_of(error: BaseException) -> str:
    for name in ("status_code", "code"):
        value = getattr(error, name, None)
        if isinstance(value, int):
            return str(value)
    return "-"


def main() -> int:
    call = {"openai": openai_call, "anthropic": anthropic_call, "gemini": gemini_call}[sys.argv[1]]()
    for case, marker in CASES.items():
        key = WRONG_KEY if case == "badkey" else None
        for mode in ("json", "stream"):
            try:
                call(f"Hello {marker}".strip(), key, mode == "stream")
                outcome = "no error"
            except Exception as error:  # noqa: BLE001 - the probe reports whatever the SDK raises
                outcome = f"{type(error).__name__} {status_of(error)}"
            print(f"{case} {mode}: {outcome}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
