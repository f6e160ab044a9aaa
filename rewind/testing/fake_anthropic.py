"""Anthropic messages (``POST /v1/messages``) as the fake provider speaks them.

JSON and SSE (``message_start``, ``content_block_start``, ``ping``,
``content_block_delta`` with ``text_delta`` or ``input_json_delta``,
``content_block_stop``, ``message_delta`` with ``stop_reason`` and
``usage.output_tokens``, ``message_stop``), ``tool_use`` blocks, usage with
``input_tokens``, ``output_tokens``, ``cache_creation_input_tokens`` and
``cache_read_input_tokens``, and errors shaped ``{"type": "error", "error": {...}}``.

Prompt caching behaves like upstream's, per fake server: the first request whose
``cache_control`` blocks are new reports them as cache creation, later ones as cache reads.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from rewind.testing.fake_common import (
    ChatCall,
    Conversation,
    FakeContext,
    FakeRequest,
    JsonObject,
    JsonReply,
    StreamReply,
    ToolSpec,
    Turn,
    completion_words,
    count_words,
    random_id,
    split_fixed,
    split_words,
    sse_event,
)

PATHS = ("/v1/messages",)
_AUTH_MESSAGES = {"missing": "x-api-key header is required", "invalid": "invalid x-api-key"}
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


class AnthropicMessages:
    """The :class:`~rewind.testing.fake_common.ChatFormat` of Anthropic messages."""

    def presented_key(self, request: FakeRequest) -> str | None:
        return request.headers.get("x-api-key") or request.bearer()

    def auth_error(self, problem: str) -> JsonReply:
        return error_reply(401, _AUTH_MESSAGES[problem])

    def error(self, status: int, message: str) -> JsonReply:
        return error_reply(status, message)

    def invalid(self, request: FakeRequest, body: JsonObject) -> str | None:
        for name in ("model", "max_tokens", "messages"):
            if name not in body:
                return f"{name}: Field required"
        if not isinstance(body["messages"], list) or not body["messages"]:
            return "messages: at least one message is required"
        return None

    def conversation(self, body: JsonObject) -> Conversation:
        return conversation_of(body)

    def wants_stream(self, request: FakeRequest, body: JsonObject) -> bool:
        return bool(body.get("stream"))

    def json_reply(self, call: ChatCall, context: FakeContext) -> JsonReply:
        message = _message(call, usage(call, context), content_blocks(call.turn))
        return JsonReply(200, message, headers=response_headers())

    def stream_reply(self, call: ChatCall, context: FakeContext) -> StreamReply:
        events = tuple(sse_event(e["type"], e) for e in stream_events(call, context))
        return StreamReply(events, delay_ms=call.markers.delay_ms, headers=response_headers())


def error_reply(status: int, message: str) -> JsonReply:
    """An Anthropic-shaped error body with ``status``."""
    kind = _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    headers = response_headers()
    error = {"type": kind, "message": message}
    body = {"type": "error", "error": error, "request_id": headers[0][1]}
    return JsonReply(status, body, headers=headers)


def response_headers() -> tuple[tuple[str, str], ...]:
    """Headers Anthropic sends with every response (``request-id`` first)."""
    return (("request-id", random_id("req_011", 21)),)


def conversation_of(body: JsonObject) -> Conversation:
    """The conversation in an Anthropic ``messages`` list."""
    messages: list[JsonObject] = body["messages"]
    last = messages[-1]
    results = _tool_results(last.get("content")) if last.get("role") == "user" else []
    choice = (body.get("tool_choice") or {}).get("type")
    return Conversation(
        last_user_text=_last_user_text(messages),
        tool_result="\n".join(results) if results else None,
        tools=tuple(ToolSpec(t["name"], t.get("input_schema") or {}) for t in _tools(body)),
        tools_allowed=last.get("role") == "user" and choice != "none",
    )


def _tools(body: JsonObject) -> list[JsonObject]:
    return [t for t in body.get("tools") or [] if isinstance(t, dict) and "name" in t]


def _last_user_text(messages: list[JsonObject]) -> str:
    for message in reversed(messages):
        text = text_of(message.get("content")) if message.get("role") == "user" else ""
        if text:
            return text
    return ""


def text_of(content: Any) -> str:
    """The text of a message or tool-result ``content`` (a string or blocks)."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    texts = [b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text"]
    return " ".join(texts)


def _tool_results(content: Any) -> list[str]:
    if not isinstance(content, list):
        return []
    blocks = [b for b in content if isinstance(b, dict) and b.get("type") == "tool_result"]
    return [text_of(b.get("content")) for b in blocks]


def usage(call: ChatCall, context: FakeContext) -> JsonObject:
    """Word-count usage in Anthropic's shape, with prompt caching."""
    total = count_words([call.body.get("system"), call.body["messages"]])
    marked = _cache_marked(call.body)
    cached = count_words(marked)
    seen = bool(marked) and context.seen_before(_prefix_key(marked))
    return {
        "input_tokens": max(1, total - cached),
        "cache_creation_input_tokens": 0 if seen else cached,
        "cache_read_input_tokens": cached if seen else 0,
        "output_tokens": completion_words(call.turn),
        "service_tier": "standard",
    }


def _cache_marked(value: Any) -> list[JsonObject]:
    """Every block carrying ``cache_control`` in system, messages and tools."""
    if isinstance(value, list):
        return [block for item in value for block in _cache_marked(item)]
    if not isinstance(value, dict):
        return []
    own = [value] if "cache_control" in value else []
    return own + [b for v in value.values() for b in _cache_marked(v)]


def _prefix_key(blocks: list[JsonObject]) -> str:
    return hashlib.sha256(json.dumps(blocks, sort_keys=True).encode()).hexdigest()


def content_blocks(turn: Turn) -> list[JsonObject]:
    """The finished ``content`` of the assistant message."""
    if turn.is_tool_call:
        return [{**_tool_block(turn), "input": turn.tool_args}]
    return [{"type": "text", "text": turn.text}]


def _tool_block(turn: Turn) -> JsonObject:
    return {"type": "tool_use", "id": random_id("toolu_01", 22), "name": turn.tool_name, "input": {}}


def _message(call: ChatCall, usage: JsonObject, content: list[JsonObject]) -> JsonObject:
    return {
        "id": random_id("msg_01", 22),
        "type": "message",
        "role": "assistant",
        "model": call.reported_model or call.body["model"],
        "content": content,
        "stop_reason": _stop_reason(call.turn) if content else None,
        "stop_sequence": None,
        "usage": usage,
    }


def _stop_reason(turn: Turn) -> str:
    return "tool_use" if turn.is_tool_call else "end_turn"


def stream_events(call: ChatCall, context: FakeContext) -> list[JsonObject]:
    """The SSE events of a streamed message, in upstream's order."""
    final = usage(call, context)
    opening = {**final, "output_tokens": 1}
    block, deltas = _block_and_deltas(call.turn)
    return [
        {"type": "message_start", "message": _message(call, opening, [])},
        {"type": "content_block_start", "index": 0, "content_block": block},
        {"type": "ping"},
        *({"type": "content_block_delta", "index": 0, "delta": d} for d in deltas),
        {"type": "content_block_stop", "index": 0},
        _message_delta(call.turn, final),
        {"type": "message_stop"},
    ]


def _block_and_deltas(turn: Turn) -> tuple[JsonObject, list[JsonObject]]:
    if turn.is_tool_call:
        pieces = ["", *split_fixed(json.dumps(turn.tool_args))]
        return _tool_block(turn), [{"type": "input_json_delta", "partial_json": p} for p in pieces]
    texts = [{"type": "text_delta", "text": p} for p in split_words(turn.text)]
    return {"type": "text", "text": ""}, texts


def _message_delta(turn: Turn, usage: JsonObject) -> JsonObject:
    return {
        "type": "message_delta",
        "delta": {"stop_reason": _stop_reason(turn), "stop_sequence": None},
        "usage": {"output_tokens": usage["output_tokens"]},
    }
