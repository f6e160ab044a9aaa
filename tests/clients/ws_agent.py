"""An agent on the websockets library (sync client), for Rewind's WebSocket tests.

Talks to OpenAI's Realtime endpoint (or the fake provider's, which adds ``echo`` for text
that is not JSON, binary echo and a ``session.close`` event):

    python ws_agent.py [URL] [TEXT]

URL defaults to ``wss://api.openai.com/v1/realtime?model=gpt-4o-realtime-preview``;
``ws://`` works too (no TLS). TEXT defaults to "hello over websocket". The key is
``OPENAI_API_KEY``, sent as ``Authorization: Bearer``.

The proxy and CA trust come from the environment, as Rewind sets them: websockets ≥ 15
connects through ``HTTPS_PROXY`` for ``wss://`` (``HTTP_PROXY`` for ``ws://``), minus
``NO_PROXY``, read by ``urllib.request.getproxies()``; the TLS context trusts
``SSL_CERT_FILE`` when it is set. Prints one deterministic line per fact (no random ids)
and exits 1 with ``error: …`` on stderr on anything unexpected.
"""

from __future__ import annotations

import json
import os
import ssl
import sys
from typing import Any

from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException
from websockets.sync.client import ClientConnection, connect
from websockets.sync.connection import Connection

DEFAULT_URL = "wss://api.openai.com/v1/realtime?model=gpt-4o-realtime-preview"
DEFAULT_TEXT = "hello over websocket"
NOT_JSON = "this is not json"
BINARY = b"\x00\x01\xfe\xff"
TIMEOUT_S = 30


class Unexpected(Exception):
    """The server said something the agent did not expect."""


def tls_context(url: str) -> ssl.SSLContext | None:
    """For ``wss://``, a default context that trusts ``SSL_CERT_FILE`` (Rewind's CA bundle)."""
    if not url.startswith("wss://"):
        return None  # websockets refuses an ssl context for ws://
    return ssl.create_default_context(cafile=os.environ.get("SSL_CERT_FILE") or None)


def open_connection(url: str) -> ClientConnection:
    """Connect with the key; ``proxy=True`` (the default) says: use the environment's proxy."""
    headers = {"Authorization": f"Bearer {os.environ.get('OPENAI_API_KEY', '')}"}
    return connect(url, ssl=tls_context(url), additional_headers=headers, proxy=True,
                   open_timeout=TIMEOUT_S, close_timeout=TIMEOUT_S)  # fmt: skip


def receive_event(ws: Connection) -> dict[str, Any]:
    """The next message, which must be a JSON event that is not an ``error``."""
    message = ws.recv(timeout=TIMEOUT_S)
    if not isinstance(message, str):
        raise Unexpected(f"binary message {message.hex()} where an event was expected")
    event = json.loads(message)
    if not isinstance(event, dict) or event.get("type") == "error":
        raise Unexpected(f"event {message}")
    return event


def expect(ws: Connection, kind: str) -> dict[str, Any]:
    """The next event, which must be of type ``kind``."""
    event = receive_event(ws)
    if event.get("type") != kind:
        raise Unexpected(f"{event.get('type')!r} where {kind!r} was expected")
    return event


def send_event(ws: Connection, event: dict[str, Any]) -> None:
    ws.send(json.dumps(event))


def session(ws: Connection) -> None:
    created = expect(ws, "session.created")
    print(f"session: {created['type']} model={created['session'].get('model')}", flush=True)


def conversation(ws: Connection, text: str) -> None:
    content = [{"type": "input_text", "text": text}]
    send_event(ws, {"type": "conversation.item.create",
                    "item": {"type": "message", "role": "user", "content": content}})  # fmt: skip
    item = expect(ws, "conversation.item.created")["item"]
    print(f"item: {item['role']} {item['content'][0]['text']}", flush=True)
    send_event(ws, {"type": "response.create"})
    expect(ws, "response.created")
    answer(ws)


def answer(ws: Connection) -> None:
    """Collect ``response.text.delta`` events until ``response.done``."""
    deltas: list[str] = []
    while (event := receive_event(ws))["type"] != "response.done":
        if event["type"] == "response.text.delta":
            deltas.append(event["delta"])
        elif event["type"] != "response.text.done":
            raise Unexpected(f"{event['type']!r} during a response")
    print(f"answer ({len(deltas)} deltas): {''.join(deltas)}", flush=True)
    print(f"usage: total_tokens={event['response']['usage']['total_tokens']}", flush=True)


def echoes(ws: Connection) -> None:
    ws.send(NOT_JSON)
    print(f"echo: {expect(ws, 'echo')['text']}", flush=True)
    ws.send(BINARY)
    echoed = ws.recv(timeout=TIMEOUT_S)
    if not isinstance(echoed, bytes):
        raise Unexpected(f"text {echoed!r} where the binary echo was expected")
    print(f"binary: {echoed.hex()}", flush=True)


def server_close(ws: Connection) -> None:
    """Ask the server to close; print the code and reason it closed with."""
    send_event(ws, {"type": "session.close"})
    try:
        extra = ws.recv(timeout=TIMEOUT_S)
    except ConnectionClosed as closed:
        if closed.rcvd is None:
            raise Unexpected(f"connection ended without a close frame ({closed})") from None
        print(f"close: {closed.rcvd.code} {closed.rcvd.reason}", flush=True)
        return
    raise Unexpected(f"message {extra!r} where the server's close was expected")


def run(url: str, text: str) -> None:
    with open_connection(url) as ws:
        session(ws)
        conversation(ws, text)
        echoes(ws)
        server_close(ws)


def main(argv: list[str]) -> int:
    url = argv[1] if len(argv) > 1 else DEFAULT_URL
    text = argv[2] if len(argv) > 2 else DEFAULT_TEXT
    try:
        run(url, text)
    except InvalidStatus as refused:
        print(f"error: handshake refused: HTTP {refused.response.status_code}", file=sys.stderr)
    except (Unexpected, WebSocketException, OSError, ValueError, KeyError) as error:
        print(f"error: {type(error).__name__}: {error}", file=sys.stderr)
    else:
        return 0
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
