"""Replaying one recorded WebSocket conversation: which server messages answer which
client message. Pure; the playback server (``replay.playback``) does the I/O.

The recorded messages are read in order. The server messages before the first client
message are sent as soon as the handshake is answered. Each client message the agent
sends is matched by content (``canon.websocket.message_key``) against the recorded client
messages not yet matched, from the current place on; the server messages recorded after
the matched one, up to the next client message, are its answer, each at its recorded
delay after that client message (scaled by the pace). A client message that matches
nothing is a miss: the conversation is closed with code 1011 and the miss is reported
like an unmatched request. When the recorded server closed the conversation, the close is
played once everything before it was.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rewind.canon.websocket import Transcript, message_key, preview
from rewind.core.exchange import Close, Frame
from rewind.replay.explain import MissReport, safe_url

MISS_CLOSE_CODE = 1011  # "internal error": the server cannot go on
MISS_CLOSE_REASON = "rewind replay miss: this message is not in the recording"


@dataclass(frozen=True)
class Reply:
    """Server messages to send (with their recorded times), and maybe the close after them."""

    anchor_ms: float  # the recorded time they are timed from (the matched client message's)
    frames: tuple[Frame, ...]
    close: Close | None = None


class Conversation:
    """The state of one replayed conversation (used from one connection's task only)."""

    def __init__(self, transcript: Transcript) -> None:
        self.frames = transcript.frames
        self.close = transcript.close
        self._next = 0  # index of the first recorded message not yet played or matched

    def opening(self) -> Reply:
        """What the server sent before the first client message."""
        return self._reply_from(0.0, 0)

    def answer(self, message: Frame) -> Reply | None:
        """The reply to a client message; ``None`` when it is not in the recording."""
        key = message_key(message)
        for index in range(self._next, len(self.frames)):
            recorded = self.frames[index]
            if recorded.from_client and message_key(recorded) == key:
                return self._reply_from(recorded.t_ms, index + 1)
        return None

    def _reply_from(self, anchor_ms: float, start: int) -> Reply:
        end = start
        while end < len(self.frames) and not self.frames[end].from_client:
            end += 1
        self._next = end
        ends_here = end == len(self.frames) and self.close is not None and not self.close.by_client
        return Reply(anchor_ms, self.frames[start:end], self.close if ends_here else None)


@dataclass
class WebSocketMiss(MissReport):
    """A client WebSocket message that no recorded one matches."""

    message: str = ""
    nearest: list[Any] = field(default_factory=list)

    def headline(self) -> str:
        return f"WebSocket message to {safe_url(self.url)} not in the recording: {self.message}"

    def text(self) -> str:
        return "\n".join([
            f"Rewind replay miss: {self.headline()}.",
            f"The conversation was closed with code {MISS_CLOSE_CODE}; nothing was sent upstream.",
            "Re-record the session if the agent now says something else.",
        ])

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "websocket_message": self.message}


def websocket_miss(url: str, message: Frame) -> WebSocketMiss:
    return WebSocketMiss("WEBSOCKET", url, "-", message=preview(message))


@dataclass
class HandshakeOnly(MissReport):
    """A recorded WebSocket handshake with no conversation: a session recorded before
    Rewind recorded WebSocket messages. Answering it ``101`` would leave the agent talking
    to nothing, so it is refused, saying why."""

    nearest: list[Any] = field(default_factory=list)

    def headline(self) -> str:
        return f"the WebSocket to {safe_url(self.url)} was recorded without its messages"

    def text(self) -> str:
        return "\n".join([
            f"Rewind replay miss: {self.headline()} (a session recorded before Rewind recorded "
            "WebSocket conversations).",
            "Re-record the session to replay it.",
        ])
