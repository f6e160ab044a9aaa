"""Gemini ``generateContent`` and ``streamGenerateContent`` as the fake provider speaks them.

``POST /v1beta/models/{model}:generateContent`` answers one GenerateContentResponse;
``:streamGenerateContent?alt=sse`` answers ``data: {GenerateContentResponse}`` events
(without ``alt=sse``, a JSON array sent piece by piece, as upstream does).
``functionCall`` parts answer requests whose ``tools`` carry ``functionDeclarations``;
``usageMetadata`` carries word counts. Errors are ``{"error": {"code", "message", "status"}}``;
a request without a key gets upstream's 403 ``PERMISSION_DENIED``.
"""

from __future__ import annotations

import json
import re
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
    split_words,
    sse_data,
)

PATH = re.compile(r"^/(?:v1beta|v1|v1alpha)/models/(?P<model>[^/:]+):(?P<method>\w+)$")
METHODS = ("generateContent", "streamGenerateContent")
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_NO_KEY = (
    "Method doesn't allow unregistered callers (callers without established identity). "
    "Please use API Key or other form of API consumer identity to call this API."
)
_JSON_TYPE = "application/json; charset=UTF-8"
_WORDS_PER_CHUNK = 3


class GeminiGenerate:
    """The :class:`~rewind.testing.fake_common.ChatFormat` of Gemini generateContent."""

    def presented_key(self, request: FakeRequest) -> str | None:
        return request.headers.get("x-goog-api-key") or request.param("key")

    def auth_error(self, problem: str) -> JsonReply:
        if problem == "missing":
            return error_reply(403, _NO_KEY)
        return error_reply(400, "API key not valid. Please pass a valid API key.")

    def error(self, status: int, message: str) -> JsonReply:
        return error_reply(status, message)

    def invalid(self, request: FakeRequest, body: JsonObject) -> str | None:
        match = PATH.match(request.path)
        if match is None or match["method"] not in METHODS:
            return f"Unknown method in {request.path}"
        if not isinstance(body.get("contents"), list) or not body["contents"]:
            return "* GenerateContentRequest.contents: contents is not specified"
        return None

    def conversation(self, body: JsonObject) -> Conversation:
        return conversation_of(body)

    def wants_stream(self, request: FakeRequest, body: JsonObject) -> bool:
        return request.path.endswith(":streamGenerateContent")

    def json_reply(self, call: ChatCall, context: FakeContext) -> JsonReply:
        response = _response(call, random_id("", 22), turn_parts(call.turn), final=True)
        return JsonReply(200, response, headers=(("content-type", _JSON_TYPE),))

    def stream_reply(self, call: ChatCall, context: FakeContext) -> StreamReply:
        responses = stream_responses(call)
        if call.request.param("alt") == "sse":
            events = tuple(sse_data(r, eol="\r\n") for r in responses)
            return StreamReply(events, "text/event-stream", delay_ms=call.markers.delay_ms)
        return StreamReply(_json_array(responses), _JSON_TYPE, delay_ms=call.markers.delay_ms)


def model_of(path: str) -> str:
    """The model named in a Gemini request path."""
    match = PATH.match(path)
    return match["model"] if match else ""


def error_reply(status: int, message: str) -> JsonReply:
    """A Google-API-shaped error body with ``status``."""
    name = _STATUS_NAMES.get(status, "INTERNAL" if status >= 500 else "INVALID_ARGUMENT")
    body = {"error": {"code": status, "message": message, "status": name}}
    return JsonReply(status, body, headers=(("content-type", _JSON_TYPE),))


def conversation_of(body: JsonObject) -> Conversation:
    """The conversation in a Gemini ``contents`` list."""
    contents: list[JsonObject] = body["contents"]
    last = contents[-1]
    results = [json.dumps(r) for r in _function_responses(last)]
    mode = ((body.get("toolConfig") or {}).get("functionCallingConfig") or {}).get("mode", "AUTO")
    return Conversation(
        last_user_text=_last_user_text(contents),
        tool_result="\n".join(results) if results else None,
        tools=tuple(_tool_specs(body.get("tools") or [])),
        tools_allowed=last.get("role", "user") == "user" and str(mode).upper() != "NONE",
    )


def _parts(content: JsonObject) -> list[JsonObject]:
    return [p for p in content.get("parts") or [] if isinstance(p, dict)]


def _function_responses(content: JsonObject) -> list[Any]:
    parts = _parts(content)
    calls = [p.get("functionResponse") or p.get("function_response") for p in parts]
    return [c.get("response") for c in calls if isinstance(c, dict)]


def _last_user_text(contents: list[JsonObject]) -> str:
    for content in reversed(contents):
        if content.get("role", "user") != "user":
            continue
        text = " ".join(p["text"] for p in _parts(content) if isinstance(p.get("text"), str))
        if text:
            return text
    return ""


def _tool_specs(tools: list[JsonObject]) -> list[ToolSpec]:
    declarations = [
        d
        for tool in tools
        for d in tool.get("functionDeclarations") or tool.get("function_declarations") or []
    ]
    return [ToolSpec(d["name"], _schema(d)) for d in declarations if "name" in d]


def _schema(declaration: JsonObject) -> JsonObject:
    names = ("parameters", "parametersJsonSchema", "parameters_json_schema")
    schema = next((declaration[n] for n in names if declaration.get(n)), None)
    return schema if isinstance(schema, dict) else {}


def turn_parts(turn: Turn) -> list[JsonObject]:
    """The model's ``parts``: one text part, or one ``functionCall`` part."""
    if turn.is_tool_call:
        return [{"functionCall": {"name": turn.tool_name, "args": turn.tool_args}}]
    return [{"text": turn.text}]


def usage_metadata(call: ChatCall, final: bool) -> JsonObject:
    """Word-count ``usageMetadata``; output counts appear on the final response only."""
    prompt = max(1, count_words([call.body.get("systemInstruction"), call.body["contents"]]))
    output = completion_words(call.turn) if final else 0
    usage: JsonObject = {"promptTokenCount": prompt}
    if final:
        usage["candidatesTokenCount"] = output
    usage["totalTokenCount"] = prompt + output
    usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": prompt}]
    return usage


def _response(call: ChatCall, response_id: str, parts: list[JsonObject], final: bool) -> JsonObject:
    candidate: JsonObject = {"content": {"parts": parts, "role": "model"}}
    if final:
        candidate["finishReason"] = "STOP"
    candidate["index"] = 0
    return {
        "candidates": [candidate],
        "usageMetadata": usage_metadata(call, final),
        "modelVersion": model_of(call.request.path),
        "responseId": response_id,
    }


def stream_responses(call: ChatCall) -> list[JsonObject]:
    """The GenerateContentResponse objects of a streamed answer."""
    response_id = random_id("", 22)
    pieces = _stream_parts(call.turn)
    last = len(pieces) - 1
    return [_response(call, response_id, p, final=i == last) for i, p in enumerate(pieces)]


def _stream_parts(turn: Turn) -> list[list[JsonObject]]:
    if turn.is_tool_call:
        return [turn_parts(turn)]
    words = split_words(turn.text)
    groups = range(0, len(words), _WORDS_PER_CHUNK)
    return [[{"text": "".join(words[i : i + _WORDS_PER_CHUNK])}] for i in groups]


def _json_array(responses: list[JsonObject]) -> tuple[bytes, ...]:
    pieces = [("[" if i == 0 else ",\r\n") + json.dumps(r) for i, r in enumerate(responses)]
    return (*(p.encode() for p in pieces), b"]")
