"""A WebSocket conversation as one stored body (its transcript), and what replay matches.

A WebSocket step is its handshake (request, ``101`` response headers) plus a transcript:
the messages in both directions in the order the proxy relayed them, each with its time
since the handshake request, then how the conversation ended. The transcript is JSON
Lines, one object per message, format version 1:

    {"v": 1, "t_ms": 0.8, "from": "server", "text": "{\\"type\\": \\"session.created\\"}"}
    {"v": 1, "t_ms": 3.1, "from": "client", "binary": "AAH+/w=="}
    {"v": 1, "t_ms": 9.0, "close": "client", "code": 1000, "reason": ""}

``text`` holds a text message (bytes that are not UTF-8 survive as surrogate escapes),
``binary`` a binary one in base64; the last line, if the conversation ended while
recorded, says who closed it, with the code and reason. Lossless: ``decode`` gives back
the frames that ``encode`` was given.

What a conversation means to the agent (``transcript_meaning``, whose digest diff and
bisect compare) is its messages in order without their times, a JSON message without the
ids and times a server issues afresh on every run (``id``, ``*_id``, ``*_at``), a binary
one by its sha256, and the close.

Replay matches a client message by ``message_key``: the message itself, except that a
JSON object is compared in canonical form without its ``event_id`` (a client-generated
id, e.g. OpenAI Realtime's), so two runs of the same agent match.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from rewind.canon.canonjson import canonical_json
from rewind.canon.meaning import Meaning
from rewind.core.exchange import Close, Frame

__all__ = [
    "TRANSCRIPT_VERSION", "Transcript", "decode", "encode", "message_key", "preview", "transcript_meaning",
]

TRANSCRIPT_VERSION = 1
VOLATILE_KEYS = frozenset({"event_id"})


@dataclass(frozen=True)
class Transcript:
    frames: tuple[Frame, ...]
    close: Close | None = None


def encode(frames: tuple[Frame, ...], close: Close | None) -> bytes:
    """The transcript body of a conversation."""
    lines = [_frame_line(frame) for frame in frames]
    if close is not None:
        by = "client" if close.by_client else "server"
        lines.append({"v": TRANSCRIPT_VERSION, "t_ms": close.t_ms, "close": by, "code": close.code,
                      "reason": close.reason})
    return b"".join(json.dumps(line).encode("ascii") + b"\n" for line in lines)


def _frame_line(frame: Frame) -> dict[str, Any]:
    line: dict[str, Any] = {"v": TRANSCRIPT_VERSION, "t_ms": frame.t_ms}
    line["from"] = "client" if frame.from_client else "server"
    if frame.text:
        line["text"] = frame.data.decode("utf-8", "surrogateescape")
    else:
        line["binary"] = base64.b64encode(frame.data).decode("ascii")
    return line


def decode(body: bytes) -> Transcript:
    """The conversation a transcript body holds; ``ValueError`` naming the bad line."""
    frames: list[Frame] = []
    close: Close | None = None
    for number, raw in enumerate(body.splitlines(), 1):
        if close is not None:
            raise ValueError(f"WebSocket transcript line {number}: a message after the close")
        try:
            line = _checked(json.loads(raw))
            close = _close(line) if "close" in line else None
            if close is None:
                frames.append(_frame(line))
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            raise ValueError(f"WebSocket transcript line {number}: {exc}") from exc
    return Transcript(tuple(frames), close)


def _checked(line: Any) -> dict[str, Any]:
    if not isinstance(line, dict) or line.get("v") != TRANSCRIPT_VERSION:
        raise ValueError(f"not a version-{TRANSCRIPT_VERSION} transcript line")
    return line


def _frame(line: dict[str, Any]) -> Frame:
    t_ms, side = float(line["t_ms"]), line["from"]
    if side not in ("client", "server"):
        raise ValueError(f"unknown side {side!r}")
    if "text" in line:
        data = str(line["text"]).encode("utf-8", "surrogateescape")
        return Frame(t_ms, side == "client", True, data)
    return Frame(t_ms, side == "client", False, base64.b64decode(line["binary"], validate=True))


def _close(line: dict[str, Any]) -> Close:
    code = line.get("code")
    return Close(float(line["t_ms"]), line["close"] == "client", None if code is None else int(code),
                 str(line.get("reason") or ""))


def message_key(frame: Frame) -> tuple[bool, bytes]:
    """What a client message is matched by in replay (see module)."""
    if not frame.text:
        return False, frame.data
    try:
        value = json.loads(frame.data)
        if isinstance(value, dict):
            return True, canonical_json({k: v for k, v in value.items() if k not in VOLATILE_KEYS})
    except (ValueError, TypeError, RecursionError):
        pass  # not JSON, or JSON that has no canonical form: the bytes themselves
    return True, frame.data


def preview(frame: Frame, limit: int = 80) -> str:
    """A short, printable view of a message for a miss report."""
    if not frame.text:
        return f"<binary, {len(frame.data)} bytes>"
    text = frame.data.decode("utf-8", "replace")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def transcript_meaning(frames: tuple[Frame, ...], close: Close | None) -> Meaning:
    """What a conversation said (see module): kind ``websocket``, its messages as the body."""
    messages: list[Any] = [_meant(frame) for frame in frames]
    if close is not None:
        messages.append({"close": "client" if close.by_client else "server", "code": close.code})
    return Meaning(kind="websocket", status=101, body=messages)


def _meant(frame: Frame) -> dict[str, Any]:
    side = "client" if frame.from_client else "server"
    if not frame.text:
        return {"from": side, "binary": hashlib.sha256(frame.data).hexdigest()}
    try:
        return {"from": side, "json": _without_volatiles(json.loads(frame.data))}
    except ValueError:
        return {"from": side, "text": frame.data.decode("utf-8", "replace")}


def _without_volatiles(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_volatiles(v) for k, v in value.items() if not _volatile(str(k))}
    if isinstance(value, list):
        return [_without_volatiles(v) for v in value]
    return value


def _volatile(key: str) -> bool:
    return key == "id" or key.endswith(("_id", "_at"))
