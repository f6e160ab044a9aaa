"""Recorded steps made from the fake provider's own wire formats (OpenAI chat, the
Responses API, Anthropic, Gemini SSE and its JSON-array stream), for the fault and edit
tests: every fault and edit is tried on exactly the JSON and SSE the fakes send."""

from __future__ import annotations

import json
from typing import Any

from rewind.store.models import StepRecord
from rewind.testing import fake_anthropic, fake_gemini, fake_openai, fake_responses
from rewind.testing.fake_common import (
    ChatFormat,
    FakeContext,
    FakeRequest,
    JsonReply,
    StreamReply,
    serve_chat,
)

from .factories import make_step

WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
TOOL = {"name": "get_weather", "parameters": WEATHER}
KEYS = {"authorization": "Bearer k", "x-api-key": "k", "x-goog-api-key": "k"}
FORMATS: dict[str, ChatFormat] = {
    "openai": fake_openai.OpenAIChat(),
    "anthropic": fake_anthropic.AnthropicMessages(),
    "gemini": fake_gemini.GeminiGenerate(),
    "gemini-array": fake_gemini.GeminiGenerate(),
}
ASK_WEATHER = "What's the weather in Paris?"
# Every wire format the fakes speak: (kind, the provider name a recording stores).
KINDS = {
    "openai": "openai",
    "responses": "openai",
    "anthropic": "anthropic",
    "gemini": "gemini",
    "gemini-array": "gemini",
}
STREAMED_KINDS = list(KINDS)
JSON_KINDS = [kind for kind in KINDS if kind != "gemini-array"]
CHUNK_GAP_MS = 10.0


def _request_body(kind: str, text: str, tools: bool, stream: bool) -> dict[str, Any]:
    if kind.startswith("gemini"):
        body: dict[str, Any] = {"contents": [{"role": "user", "parts": [{"text": text}]}]}
        return {**body, "tools": [{"functionDeclarations": [TOOL]}]} if tools else body
    if kind == "responses":
        body = {"model": "m", "input": text, "stream": stream}
        return {**body, "tools": [{"type": "function", **TOOL}]} if tools else body
    body = {"model": "m", "messages": [{"role": "user", "content": text}], "max_tokens": 64, "stream": stream}
    if tools and kind == "openai":
        body["tools"] = [{"type": "function", "function": TOOL}]
    elif tools:
        body["tools"] = [{"name": "get_weather", "input_schema": WEATHER}]
    return body


def _path(kind: str, stream: bool) -> tuple[str, str]:
    """The request path and query each fake answers on."""
    if kind.startswith("gemini"):
        method = "streamGenerateContent" if stream else "generateContent"
        query = "alt=sse" if stream and kind == "gemini" else ""
        return f"/v1beta/models/gemini-2.0-flash:{method}", query
    return {"openai": "/v1/chat/completions", "responses": "/v1/responses"}.get(kind, "/v1/messages"), ""


def _reply(kind: str, text: str, tools: bool, stream: bool) -> JsonReply | StreamReply:
    path, query = _path(kind, stream)
    body = json.dumps(_request_body(kind, text, tools, stream)).encode()
    request = FakeRequest("POST", path, query, KEYS, body)
    if kind == "responses":
        reply = fake_responses.serve(request, FakeContext())
    else:
        reply = serve_chat(FORMATS[kind], request, FakeContext())
    assert isinstance(reply, JsonReply | StreamReply)
    return reply


def recorded(
    kind: str, *, stream: bool, tools: bool = False, text: str = "Hello there"
) -> tuple[StepRecord, bytes, tuple[tuple[float, bytes], ...] | None]:
    """A recorded step of the fake's answer: (step, body, chunks as split_chunks gives them)."""
    reply = _reply(kind, ASK_WEATHER if tools else text, tools, stream)
    chunks: tuple[tuple[float, bytes], ...] | None = None
    if isinstance(reply, StreamReply):
        chunks = tuple((i * CHUNK_GAP_MS, event) for i, event in enumerate(reply.events))
        content_type, body = reply.content_type, b"".join(reply.events)
    else:
        content_type, body = "application/json", json.dumps(reply.payload).encode()
    headers = (
        ("content-type", content_type),
        ("content-length", str(len(body))),
        ("transfer-encoding", "chunked"),
        ("content-encoding", "gzip"),
        ("x-request-id", "req_1"),
    )
    layout = tuple((t_ms, len(data)) for t_ms, data in chunks) if chunks else None
    step = make_step(3, provider=KINDS[kind], streamed=chunks is not None, chunks=layout,
                     response_headers=headers, reason="OK")  # fmt: skip
    return step, body, chunks


