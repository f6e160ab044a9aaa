"""The OpenAI Responses API (``POST /v1/responses``) as the fake provider speaks it.

Requests: ``input`` as a string or a list of items (``message`` items, or bare
``{"role", "content"}``; ``function_call``; ``function_call_output``; ``reasoning``;
``item_reference``), flat ``tools`` (``{"type": "function", "name", "parameters"}``),
``instructions``, ``previous_response_id``, ``stream``, ``store``, ``reasoning``, ``include``.

Answers: a ``response`` object whose ``output`` holds a ``message`` (one ``output_text``
part) or a ``function_call``, after a ``reasoning`` item when ``reasoning`` is asked for
(with ``encrypted_content`` when ``include`` names ``reasoning.encrypted_content``);
usage ``{input_tokens, output_tokens, total_tokens, input_tokens_details,
output_tokens_details}``. Streamed, the same response as named SSE events with a
``sequence_number``: ``response.created``, ``response.in_progress``, per output item
``response.output_item.added``, its content events (``response.content_part.added``,
``response.output_text.delta``…, ``response.output_text.done``,
``response.content_part.done``, or ``response.function_call_arguments.delta``…/``.done``),
``response.output_item.done``; then ``response.completed``. Ids are random, as upstream's
(``resp_``, ``msg_``, ``fc_``, ``rs_`` and 48 hex digits; ``call_`` and 24 characters).

Stored responses: every response not created with ``store: false`` is remembered per fake
server. ``previous_response_id`` makes its conversation (input and output items) the prefix
of the new request's; an id the server did not issue (or did not store) is a 404
``previous_response_not_found``, as upstream. ``item_reference`` items resolve to stored
items. ``GET`` and ``DELETE /v1/responses/{id}`` retrieve and forget one.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from rewind.testing.fake_common import (
    ChatCall,
    Conversation,
    FakeContext,
    FakeRequest,
    JsonObject,
    JsonReply,
    PerContext,
    Reply,
    StreamReply,
    ToolSpec,
    Turn,
    completion_words,
    count_words,
    random_id,
    serve_chat,
    split_fixed,
    split_words,
    sse_event,
)
from rewind.testing.fake_openai import OpenAIChat, content_text, error_reply, response_headers

PATHS = ("/v1/responses", "/responses")
_ONE = re.compile(r"^(?:/v1)?/responses/([A-Za-z0-9_-]+)$")
_CHAT = OpenAIChat()
Event = tuple[str, JsonObject]


def handles(path: str) -> bool:
    """Whether ``path`` is a Responses API path: create, or one response by id."""
    return path in PATHS or _ONE.match(path) is not None


def hex_id(prefix: str) -> str:
    """An id shaped like upstream's Responses ids: ``prefix`` and 48 hex digits."""
    return prefix + secrets.token_hex(24)


# --- what the fake server remembers -------------------------------------------------------


@dataclass
class ResponseStore:
    """Stored responses of one fake server: objects, conversations and items by id."""

    responses: dict[str, JsonObject] = field(default_factory=dict)
    histories: dict[str, list[JsonObject]] = field(default_factory=dict)
    items: dict[str, JsonObject] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def has(self, response_id: str) -> bool:
        with self.lock:
            return response_id in self.histories

    def clear(self) -> None:
        """Forget every stored response."""
        with self.lock:
            self.responses.clear()
            self.histories.clear()
            self.items.clear()

    def history(self, response_id: str | None) -> list[JsonObject]:
        """The items of response ``response_id``'s conversation (none for None or unknown)."""
        with self.lock:
            return list(self.histories.get(response_id or "", []))

    def item(self, item_id: str) -> JsonObject | None:
        with self.lock:
            return self.items.get(item_id)

    def response(self, response_id: str) -> JsonObject | None:
        with self.lock:
            return self.responses.get(response_id)

    def remember(self, response: JsonObject, history: list[JsonObject]) -> None:
        """Keep ``response`` and its whole conversation ``history`` (output included)."""
        with self.lock:
            self.responses[response["id"]] = response
            self.histories[response["id"]] = history
            self.items.update({str(i["id"]): i for i in history if i.get("id")})

    def forget(self, response_id: str) -> bool:
        with self.lock:
            self.histories.pop(response_id, None)
            return self.responses.pop(response_id, None) is not None


# The response store of the fake server whose context is given.
store_of = PerContext(ResponseStore)


# --- serving ------------------------------------------------------------------------------


def serve(request: FakeRequest, context: FakeContext) -> Reply:
    """Create (``POST``), retrieve (``GET``) or delete (``DELETE``) a response."""
    store = store_of(context)
    fmt = OpenAIResponses(store)
    refused = context.key_problem(fmt.presented_key(request))
    if refused:
        return fmt.auth_error(refused)
    one = _ONE.match(request.path)
    if one is None:
        return _create(fmt, request, context) if request.method == "POST" else _not_allowed(request)
    if request.method == "GET":
        return _retrieve(store, one.group(1))
    if request.method == "DELETE":
        return _delete(store, one.group(1))
    return _not_allowed(request)


def _create(fmt: OpenAIResponses, request: FakeRequest, context: FakeContext) -> Reply:
    previous = _previous_id(request)
    if previous is not None and not fmt.store.has(previous):
        message = f"Previous response with id '{previous}' not found."
        return param_error(404, message, "previous_response_id", "previous_response_not_found")
    return serve_chat(fmt, request, context)


def _previous_id(request: FakeRequest) -> str | None:
    try:
        body = request.json()
    except ValueError:
        return None
    previous = body.get("previous_response_id") if isinstance(body, dict) else None
    return previous if isinstance(previous, str) else None


def _retrieve(store: ResponseStore, response_id: str) -> JsonReply:
    response = store.response(response_id)
    if response is None:
        return _missing(response_id)
    return JsonReply(200, response, headers=response_headers())


def _delete(store: ResponseStore, response_id: str) -> JsonReply:
    if not store.forget(response_id):
        return _missing(response_id)
    deleted = {"id": response_id, "object": "response.deleted", "deleted": True}
    return JsonReply(200, deleted, headers=response_headers())


def _missing(response_id: str) -> JsonReply:
    return error_reply(404, f"Response with id '{response_id}' not found.")


def _not_allowed(request: FakeRequest) -> JsonReply:
    return error_reply(405, f"Method {request.method} not allowed on {request.path}")


def param_error(status: int, message: str, param: str, code: str | None = None) -> JsonReply:
    """An OpenAI error body that names the request parameter at fault."""
    reply = error_reply(status, message, code=code)
    return JsonReply(status, {"error": {**reply.payload["error"], "param": param}}, reply.headers)


class OpenAIResponses:
    """The :class:`~rewind.testing.fake_common.ChatFormat` of the Responses API, over one store."""

    def __init__(self, store: ResponseStore) -> None:
        self.store = store

    def presented_key(self, request: FakeRequest) -> str | None:
        return request.bearer()

    def auth_error(self, problem: str) -> JsonReply:
        return _CHAT.auth_error(problem)

    def error(self, status: int, message: str) -> JsonReply:
        return error_reply(status, message)

    def invalid(self, request: FakeRequest, body: JsonObject) -> str | None:
        if not body.get("model"):
            return "Missing required parameter: 'model'."
        if not isinstance(body.get("input"), str | list) and not body.get("previous_response_id"):
            return "Missing required parameter: 'input'."
        return unmatched_output(self.items_of(body))

    def conversation(self, body: JsonObject) -> Conversation:
        return conversation_of(body, self.items_of(body))

    def wants_stream(self, request: FakeRequest, body: JsonObject) -> bool:
        return bool(body.get("stream"))

    def json_reply(self, call: ChatCall, context: FakeContext) -> JsonReply:
        return JsonReply(200, self._answer(call), headers=response_headers())

    def stream_reply(self, call: ChatCall, context: FakeContext) -> StreamReply:
        obfuscate = (call.body.get("stream_options") or {}).get("include_obfuscation") is not False
        events = stream_events(self._answer(call), obfuscate)
        return StreamReply(sse(events), delay_ms=call.markers.delay_ms, headers=response_headers())

    def items_of(self, body: JsonObject) -> list[JsonObject]:
        """The request's whole conversation: the previous response's, then ``input``."""
        prefix = self.store.history(body.get("previous_response_id"))
        return prefix + [self._resolved(item) for item in input_items(body)]

    def _resolved(self, item: JsonObject) -> JsonObject:
        if item.get("type") == "item_reference":
            return self.store.item(str(item.get("id"))) or item
        return item

    def _answer(self, call: ChatCall) -> JsonObject:
        items = self.items_of(call.body)
        response = response_object(call, items)
        if call.body.get("store") is not False:
            self.store.remember(response, items + response["output"])
        return response


# --- reading a request --------------------------------------------------------------------


def input_items(body: JsonObject) -> list[JsonObject]:
    """``input`` as a list of items; a string is one user message."""
    value = body.get("input")
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": value}]}]
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _is_message(item: JsonObject, role: str) -> bool:
    return item.get("type", "message") == "message" and item.get("role") == role


def unmatched_output(items: list[JsonObject]) -> str | None:
    """Upstream's complaint about a tool output whose call is not in the conversation."""
    calls = {item.get("call_id") for item in items if item.get("type") == "function_call"}
    for item in items:
        if item.get("type") == "function_call_output" and item.get("call_id") not in calls:
            return f"No tool call found for function call output with call_id {item.get('call_id')}."
    return None


def conversation_of(body: JsonObject, items: list[JsonObject]) -> Conversation:
    """The conversation in a Responses request whose whole item list is ``items``."""
    last = items[-1] if items else {}
    trailing = _trailing_outputs(items) if last.get("type") == "function_call_output" else None
    return Conversation(
        last_user_text=_last_user_text(items),
        tool_result=trailing,
        tools=tuple(_tool_specs(body.get("tools") or [])),
        tools_allowed=_is_message(last, "user") and body.get("tool_choice") != "none",
    )


def _last_user_text(items: list[JsonObject]) -> str:
    for item in reversed(items):
        if _is_message(item, "user"):
            return content_text(item.get("content"))
    return ""


def _trailing_outputs(items: list[JsonObject]) -> str:
    results: list[str] = []
    for item in reversed(items):
        if item.get("type") != "function_call_output":
            break
        results.insert(0, content_text(item.get("output")))
    return "\n".join(results)


def _tool_specs(tools: list[Any]) -> list[ToolSpec]:
    functions = [t for t in tools if isinstance(t, dict) and t.get("type") == "function"]
    return [ToolSpec(str(f["name"]), f.get("parameters") or {}) for f in functions if "name" in f]


# --- the response object ------------------------------------------------------------------


def response_object(call: ChatCall, items: list[JsonObject]) -> JsonObject:
    """The completed ``response`` answering ``call``, whose conversation is ``items``."""
    now = int(time.time())
    output = output_items(call)
    return {
        "id": hex_id("resp_"),
        "object": "response",
        "created_at": now,
        "status": "completed",
        "background": False,
        "completed_at": now,
        "error": None,
        "incomplete_details": None,
        **_echoed(call.body),
        "model": call.reported_model or call.body["model"],
        "output": output,
        "usage": usage(call, items),
    }


def _echoed(body: JsonObject) -> JsonObject:
    """The request settings a response repeats, with upstream's defaults."""
    reasoning = body.get("reasoning") or {}
    return {
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": body.get("max_tool_calls"),
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "prompt_cache_key": body.get("prompt_cache_key"),
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "safety_identifier": body.get("safety_identifier"),
        "service_tier": "default",
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": [_echoed_tool(t) for t in body.get("tools") or [] if isinstance(t, dict)],
        "top_logprobs": body.get("top_logprobs", 0),
        "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation", "disabled"),
        "user": body.get("user"),
        "metadata": body.get("metadata") or {},
    }


def _echoed_tool(tool: JsonObject) -> JsonObject:
    if tool.get("type") != "function":
        return tool
    return {"description": None, "strict": True, **tool}


def wants_reasoning(body: JsonObject) -> bool:
    return bool(body.get("reasoning"))


def output_items(call: ChatCall) -> list[JsonObject]:
    """The output: a reasoning item when asked for, then the message or function call."""
    items = [reasoning_item(call.body)] if wants_reasoning(call.body) else []
    turn = call.turn
    return [*items, function_call_item(turn) if turn.is_tool_call else message_item(turn.text)]


def message_item(text: str) -> JsonObject:
    part = {"type": "output_text", "annotations": [], "logprobs": [], "text": text}
    return {
        "id": hex_id("msg_"),
        "type": "message",
        "status": "completed",
        "content": [part],
        "role": "assistant",
    }


def function_call_item(turn: Turn) -> JsonObject:
    return {
        "id": hex_id("fc_"),
        "type": "function_call",
        "status": "completed",
        "arguments": json.dumps(turn.tool_args, separators=(",", ":")),
        "call_id": random_id("call_"),
        "name": turn.tool_name,
    }


def reasoning_item(body: JsonObject) -> JsonObject:
    item: JsonObject = {"id": hex_id("rs_"), "type": "reasoning", "summary": []}
    if "reasoning.encrypted_content" in (body.get("include") or []):
        item["encrypted_content"] = "gAAAAAB" + base64.urlsafe_b64encode(secrets.token_bytes(96)).decode()
    return item


def usage(call: ChatCall, items: list[JsonObject]) -> JsonObject:
    """Word-count usage in the Responses API's shape; reasoning as long as the answer."""
    prompt = max(1, count_words([call.body.get("instructions"), items]))
    answer = completion_words(call.turn)
    reasoning = answer if wants_reasoning(call.body) else 0
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": answer + reasoning,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": prompt + answer + reasoning,
    }


# --- the stream ---------------------------------------------------------------------------


def stream_events(response: JsonObject, obfuscate: bool = True) -> list[Event]:
    """The named events that stream ``response``, without their sequence numbers."""
    opening = {**response, "status": "in_progress", "completed_at": None, "output": [], "usage": None}
    events: list[Event] = [
        ("response.created", {"response": opening}),
        ("response.in_progress", {"response": opening}),
    ]
    for index, item in enumerate(response["output"]):
        events += _item_events(index, item, obfuscate)
    return [*events, ("response.completed", {"response": response})]


def sse(events: list[Event]) -> tuple[bytes, ...]:
    """The events as ``event:``/``data:`` SSE, each numbered with ``sequence_number``."""
    return tuple(
        sse_event(kind, {"type": kind, **payload, "sequence_number": number})
        for number, (kind, payload) in enumerate(events)
    )


def _item_events(index: int, item: JsonObject, obfuscate: bool) -> list[Event]:
    added = ("response.output_item.added", {"output_index": index, "item": _opened(item)})
    done = ("response.output_item.done", {"output_index": index, "item": item})
    if item["type"] == "message":
        return [added, *_text_events(index, item, obfuscate), done]
    if item["type"] == "function_call":
        return [added, *_argument_events(index, item, obfuscate), done]
    return [added, done]


def _opened(item: JsonObject) -> JsonObject:
    """``item`` as ``response.output_item.added`` shows it, before its content arrives."""
    if item["type"] == "message":
        return {**item, "status": "in_progress", "content": []}
    if item["type"] == "function_call":
        return {**item, "status": "in_progress", "arguments": ""}
    return {key: value for key, value in item.items() if key != "encrypted_content"}


def _text_events(index: int, item: JsonObject, obfuscate: bool) -> list[Event]:
    part = item["content"][0]
    where = {"item_id": item["id"], "output_index": index, "content_index": 0}
    deltas = [
        ("response.output_text.delta", {**where, "delta": piece, "logprobs": [], **_noise(obfuscate)})
        for piece in split_words(part["text"])
    ]
    return [
        ("response.content_part.added", {**where, "part": {**part, "text": ""}}),
        *deltas,
        ("response.output_text.done", {**where, "text": part["text"], "logprobs": []}),
        ("response.content_part.done", {**where, "part": part}),
    ]


def _argument_events(index: int, item: JsonObject, obfuscate: bool) -> list[Event]:
    where = {"item_id": item["id"], "output_index": index}
    deltas: list[Event] = [
        ("response.function_call_arguments.delta", {**where, "delta": piece, **_noise(obfuscate)})
        for piece in split_fixed(item["arguments"])
    ]
    done = {**where, "name": item["name"], "arguments": item["arguments"]}
    return [*deltas, ("response.function_call_arguments.done", done)]


def _noise(obfuscate: bool) -> JsonObject:
    """Upstream's random ``obfuscation`` padding of delta events (unless turned off)."""
    return {"obfuscation": random_id("", 10)} if obfuscate else {}
