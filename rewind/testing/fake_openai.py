"""OpenAI chat completions (``POST /v1/chat/completions``) as the fake provider speaks them.

JSON and SSE (``stream: true``; ``data: {chunk}`` events ending in ``data: [DONE]``,
plus a ``choices: []`` usage chunk when ``stream_options.include_usage`` is set),
tool calls (streamed as ``delta.tool_calls`` fragments), usage with
``prompt_tokens``/``completion_tokens``/``total_tokens``, and errors shaped
``{"error": {"message", "type", "param", "code"}}``.
"""

from __future__ import annotations

import json
import time
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
    sse_data,
)

PATHS = ("/v1/chat/completions", "/chat/completions")
SYSTEM_FINGERPRINT = "fp_fake0000"
_AUTH_MESSAGES = {
    "missing": "You didn't provide an API key. You need to provide your API key in an "
    "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
    "invalid": "Incorrect API key provided. You can find your API key in your account settings.",
}


class OpenAIChat:
    """The :class:`~rewind.testing.fake_common.ChatFormat` of OpenAI chat completions."""

    def presented_key(self, request: FakeRequest) -> str | None:
        return request.bearer()

    def auth_error(self, problem: str) -> JsonReply:
        code = "invalid_api_key" if problem == "invalid" else None
        return error_reply(401, _AUTH_MESSAGES[problem], code=code)

    def error(self, status: int, message: str) -> JsonReply:
        return error_reply(status, message)

    def invalid(self, request: FakeRequest, body: JsonObject) -> str | None:
        if not body.get("model"):
            return "you must provide a model parameter"
        if not isinstance(body.get("messages"), list) or not body["messages"]:
            return "Missing required parameter: 'messages'."
        return None

    def conversation(self, body: JsonObject) -> Conversation:
        return conversation_of(body)

    def wants_stream(self, request: FakeRequest, body: JsonObject) -> bool:
        return bool(body.get("stream"))

    def json_reply(self, call: ChatCall, context: FakeContext) -> JsonReply:
        return JsonReply(200, completion(call), headers=response_headers())

    def stream_reply(self, call: ChatCall, context: FakeContext) -> StreamReply:
        events = tuple(sse_data(chunk) for chunk in chunks(call)) + (b"data: [DONE]\n\n",)
        return StreamReply(events, delay_ms=call.markers.delay_ms, headers=response_headers())


def error_reply(status: int, message: str, code: str | None = None) -> JsonReply:
    """An OpenAI-shaped error body with ``status``."""
    kind, default_code = _error_kind(status)
    error = {"message": message, "type": kind, "param": None, "code": code or default_code}
    return JsonReply(status, {"error": error}, headers=response_headers())


def _error_kind(status: int) -> tuple[str, str | None]:
    if status == 429:
        return "requests", "rate_limit_exceeded"
    if status >= 500:
        return "server_error", None
    return "invalid_request_error", None


def response_headers() -> tuple[tuple[str, str], ...]:
    """Headers OpenAI sends with every response."""
    return (
        ("x-request-id", random_id("req_", 32)),
        ("openai-processing-ms", "1"),
        ("openai-version", "2020-10-01"),
    )


def conversation_of(body: JsonObject) -> Conversation:
    """The conversation in an OpenAI ``messages`` list."""
    messages: list[JsonObject] = body["messages"]
    last_role = messages[-1].get("role")
    trailing = _trailing_tool_results(messages) if last_role == "tool" else None
    return Conversation(
        last_user_text=_last_user_text(messages),
        tool_result=trailing,
        tools=tuple(_tool_specs(body.get("tools") or [])),
        tools_allowed=last_role == "user" and body.get("tool_choice") != "none",
    )


def _last_user_text(messages: list[JsonObject]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return content_text(message.get("content"))
    return ""


def _trailing_tool_results(messages: list[JsonObject]) -> str:
    results: list[str] = []
    for message in reversed(messages):
        if message.get("role") != "tool":
            break
        results.insert(0, content_text(message.get("content")))
    return "\n".join(results)


def content_text(content: Any) -> str:
    """The text of a message ``content``: a string or a list of ``text`` parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _tool_specs(tools: list[JsonObject]) -> list[ToolSpec]:
    functions = [t.get("function") or {} for t in tools if t.get("type") == "function"]
    return [ToolSpec(f["name"], f.get("parameters") or {}) for f in functions if "name" in f]


def usage(call: ChatCall) -> JsonObject:
    """Word-count usage in OpenAI's shape."""
    prompt = max(1, count_words([m.get("content") for m in call.body["messages"]]))
    output = completion_words(call.turn)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": output,
        "total_tokens": prompt + output,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def completion(call: ChatCall) -> JsonObject:
    """A ``chat.completion`` object."""
    choice = {
        "index": 0,
        "message": _message(call.turn),
        "logprobs": None,
        "finish_reason": _finish_reason(call.turn),
    }
    return {
        **_envelope(call, "chat.completion"),
        "choices": [choice],
        "usage": usage(call),
    }


def _envelope(call: ChatCall, kind: str) -> JsonObject:
    return {
        "id": random_id("chatcmpl-", 29),
        "object": kind,
        "created": int(time.time()),
        "model": call.reported_model or call.body["model"],
        "service_tier": "default",
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }


def _message(turn: Turn) -> JsonObject:
    message: JsonObject = {"role": "assistant", "content": turn.text or None, "refusal": None}
    if turn.is_tool_call:
        message["tool_calls"] = [_tool_call(turn)]
    message["annotations"] = []
    return message


def _tool_call(turn: Turn) -> JsonObject:
    return {
        "id": random_id("call_"),
        "type": "function",
        "function": {"name": turn.tool_name, "arguments": json.dumps(turn.tool_args)},
    }


def _finish_reason(turn: Turn) -> str:
    return "tool_calls" if turn.is_tool_call else "stop"


def chunks(call: ChatCall) -> list[JsonObject]:
    """The ``chat.completion.chunk`` objects of a streamed answer, usage chunk included."""
    envelope = _envelope(call, "chat.completion.chunk")
    with_usage = bool((call.body.get("stream_options") or {}).get("include_usage"))
    out = [_chunk(envelope, delta, finish, with_usage) for delta, finish in _deltas(call.turn)]
    if with_usage:
        out.append({**envelope, "choices": [], "usage": usage(call)})
    return out


def _chunk(envelope: JsonObject, delta: JsonObject, finish: str | None, usage: bool) -> JsonObject:
    choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
    chunk = {**envelope, "choices": [choice]}
    if usage:
        chunk["usage"] = None
    return chunk


def _deltas(turn: Turn) -> list[tuple[JsonObject, str | None]]:
    if turn.is_tool_call:
        return _tool_deltas(turn)
    first: JsonObject = {"role": "assistant", "content": "", "refusal": None}
    pieces: list[JsonObject] = [{"content": piece} for piece in split_words(turn.text)]
    return [(d, None) for d in [first, *pieces]] + [({}, "stop")]


def _tool_deltas(turn: Turn) -> list[tuple[JsonObject, str | None]]:
    call = _tool_call(turn)
    opening = {
        "index": 0,
        "id": call["id"],
        "type": "function",
        "function": {"name": turn.tool_name, "arguments": ""},
    }
    first: JsonObject = {"role": "assistant", "content": None, "tool_calls": [opening], "refusal": None}
    fragments = split_fixed(call["function"]["arguments"])
    rest: list[JsonObject] = [{"tool_calls": [{"index": 0, "function": {"arguments": f}}]} for f in fragments]
    return [(d, None) for d in [first, *rest]] + [({}, "tool_calls")]
