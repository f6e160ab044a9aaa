"""An agent on httpx that speaks only HTTP/2 (``http2=True, http1=False``), over TLS.

Calls ``https://api.openai.com/v1/chat/completions`` (or ``--base-url``) through the proxy
named by ``HTTPS_PROXY``, once plain and once streamed. Prints ``plain:``, ``stream:`` and
the HTTP version each response came with. The streamed call stops reading and closes the
connection as soon as the ``[DONE]`` event arrives, as impatient clients do.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import httpx

MODEL = "gpt-4o-mini"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base-url", default="https://api.openai.com/v1")
    parser.add_argument("--sections", default="plain,stream")
    return parser.parse_args()


def body(text: str, stream: bool) -> dict[str, Any]:
    return {"model": MODEL, "stream": stream, "messages": [{"role": "user", "content": text}]}


def plain(client: httpx.Client, url: str) -> None:
    reply = client.post(url, json=body("Say hello to Rewind.", False))
    reply.raise_for_status()
    print(f"plain: {reply.json()['choices'][0]['message']['content']}", flush=True)
    print(f"plain version: {reply.http_version}", flush=True)


def stream(client: httpx.Client, url: str) -> None:
    parts: list[str] = []
    with client.stream("POST", url, json=body("Count from one to five.", True)) as reply:
        reply.raise_for_status()
        version = reply.http_version
        for line in reply.iter_lines():
            data = line.removeprefix("data: ").strip()
            if data == "[DONE]":
                break  # close at once, before the stream's end is read
            if data:
                choices = json.loads(data).get("choices") or [{}]
                parts.append(choices[0].get("delta", {}).get("content") or "")
    print(f"stream: {''.join(parts)}", flush=True)
    print(f"stream version: {version}", flush=True)


def main() -> int:
    args = parse_args()
    url = args.base_url.rstrip("/") + "/chat/completions"
    headers = {"Authorization": "Bearer sk-test-fake"}
    sections = {"plain": plain, "stream": stream}
    with httpx.Client(http1=False, http2=True, headers=headers, timeout=30) as client:
        for name in args.sections.split(","):
            sections[name](client, url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
