"""Fingerprint normalisation of a JSON request body: what varies between runs is evened out.

Applied to every JSON object body whatever the provider, and only where the shapes
occur (the full contract is ``docs/fingerprint.md``). Version 1:

- top-level volatile keys are dropped: ``VOLATILE_KEYS``;
- tool-call ids are replaced by ``tool_call_<n>``, numbered by first appearance
  across the request, so an id and its later reference get the same token and two
  different calls stay different;
- tool lists are sorted by tool name (then by content), so their order does not count.

Version 2 also evens out what providers issue and agents echo back, and what
frameworks randomise:

- top-level ``V2_VOLATILE_KEYS`` (``previous_response_id``, ``prompt_cache_key``,
  ``conversation``) are dropped;
- Responses API input items: their ``id`` (``msg_…``, ``rs_…``, ``fc_…``, and the id an
  ``item_reference`` points to) becomes ``item_<n>`` by first appearance, and reasoning
  items lose ``encrypted_content``;
- Anthropic ``cache_control`` markers (wherever a framework puts them), thinking-block
  ``signature`` and redacted-thinking ``data``, and Gemini ``thoughtSignature`` are dropped.

What the model sees (roles, content, tool calls and outputs, order) stays. Pure: the
value passed in is never modified.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

from rewind.canon.jsonget import dicts as _dicts

__all__ = [
    "ITEM_ID_PREFIX", "TOOL_ID_PREFIX", "V2_VOLATILE_KEYS", "VOLATILE_KEYS", "load_json", "normalise_body",
]

VOLATILE_KEYS = frozenset(
    {"user", "safety_identifier", "metadata", "stream_options", "request_id", "idempotency_key"}
)
TOOL_ID_PREFIX = "tool_call_"
V2_VOLATILE_KEYS = frozenset({"previous_response_id", "prompt_cache_key", "conversation"})
ITEM_ID_PREFIX = "item_"
_V2_DROPPED_ANYWHERE = frozenset({"cache_control", "thoughtSignature", "thought_signature"})


def load_json(data: bytes) -> Any:
    """Strict JSON from UTF-8 bytes; ``ValueError`` when not JSON (NaN and Infinity included)."""
    return json.loads(data.decode("utf-8"), parse_constant=_reject_constant)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def normalise_body(value: Any, version: int = 2) -> Any:
    """The normal form of a parsed JSON body under fingerprint ``version`` (non-objects
    are returned as they are)."""
    if not isinstance(value, dict):
        return value
    dropped = VOLATILE_KEYS | V2_VOLATILE_KEYS if version >= 2 else VOLATILE_KEYS
    body = {k: copy.deepcopy(v) for k, v in value.items() if k not in dropped}
    if version >= 2:
        _drop_provider_marks(body)
        _renumber_item_ids(body)
    _sort_tools(body)
    _renumber_tool_ids(body)
    return body


# --- v2: provider-issued marks and item ids ----------------------------------------------


def _drop_provider_marks(value: Any) -> None:
    """Remove cache markers and signatures wherever they are (in place, on a copy)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key in _V2_DROPPED_ANYWHERE & item.keys():
                del item[key]
            if item.get("type") == "thinking":
                item.pop("signature", None)
            elif item.get("type") == "redacted_thinking":
                item.pop("data", None)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _renumber_item_ids(body: dict[str, Any]) -> None:
    """Responses API input items: ``id`` by first appearance; no encrypted reasoning."""
    ids = _Ids(prefix=ITEM_ID_PREFIX)
    for item in _dicts(body.get("input")):
        ids.swap(item, "id")
        if item.get("type") == "reasoning":
            item.pop("encrypted_content", None)


# --- tool lists -------------------------------------------------------------------


def _sort_tools(body: dict[str, Any]) -> None:
    tools = body.get("tools")
    if isinstance(tools, list):
        body["tools"] = _sorted_by_name([_sort_declarations(t) for t in tools])
    if isinstance(body.get("functions"), list):
        body["functions"] = _sorted_by_name(body["functions"])


def _sort_declarations(tool: Any) -> Any:
    """Gemini's ``{"functionDeclarations": [...]}``: declarations sorted by name."""
    if isinstance(tool, dict) and isinstance(tool.get("functionDeclarations"), list):
        tool["functionDeclarations"] = _sorted_by_name(tool["functionDeclarations"])
    return tool


def _sorted_by_name(tools: list[Any]) -> list[Any]:
    return sorted(tools, key=lambda t: (tool_name(t), _stable_text(t)))


def tool_name(tool: Any) -> str:
    """A tool's name in the OpenAI, Responses, Anthropic or Gemini shape; ``""`` if none."""
    if not isinstance(tool, dict):
        return ""
    function = tool.get("function")
    name = function.get("name") if isinstance(function, dict) else tool.get("name")
    return name if isinstance(name, str) else ""


def _stable_text(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


# --- tool-call ids -----------------------------------------------------------------


@dataclass
class _Ids:
    tokens: dict[str, str] = field(default_factory=dict)
    prefix: str = TOOL_ID_PREFIX

    def swap(self, holder: dict[str, Any], key: str) -> None:
        """Replace ``holder[key]``, a string id, by its token."""
        value = holder.get(key)
        if isinstance(value, str):
            token = f"{self.prefix}{len(self.tokens) + 1}"
            holder[key] = self.tokens.setdefault(value, token)


def _renumber_tool_ids(body: dict[str, Any]) -> None:
    ids = _Ids()
    for message in _dicts(body.get("messages")):
        _renumber_message(message, ids)
    for item in _dicts(body.get("input")):
        _renumber_response_item(item, ids)
    for content in _dicts(body.get("contents")):
        _renumber_gemini_parts(content, ids)


def _renumber_message(message: dict[str, Any], ids: _Ids) -> None:
    """OpenAI ``tool_calls[].id`` / ``tool_call_id``; Anthropic tool_use / tool_result."""
    for call in _dicts(message.get("tool_calls")):
        ids.swap(call, "id")
    ids.swap(message, "tool_call_id")
    for block in _dicts(message.get("content")):
        if block.get("type") == "tool_use":
            ids.swap(block, "id")
        elif block.get("type") == "tool_result":
            ids.swap(block, "tool_use_id")


def _renumber_response_item(item: dict[str, Any], ids: _Ids) -> None:
    """Responses API ``input[].call_id``, and the ``id`` of function_call items."""
    ids.swap(item, "call_id")
    if item.get("type") == "function_call":
        ids.swap(item, "id")


def _renumber_gemini_parts(content: dict[str, Any], ids: _Ids) -> None:
    """Gemini ``parts[].functionCall.id`` / ``functionResponse.id`` (when present)."""
    for part in _dicts(content.get("parts")):
        for key in ("functionCall", "functionResponse"):
            inner = part.get(key)
            if isinstance(inner, dict):
                ids.swap(inner, "id")
