"""Why a request missed: its nearest recorded steps and which parts differ.

Like vcrpy's matcher report, a miss names the recorded steps closest to the request
and, for each, the parts that differ, one short line per difference:

    model: 'gpt-4o-mini' != recorded 'gpt-4o'
    system prompt differs: 'You are terse.' vs recorded 'You are helpful.'
    messages: 5 vs recorded 4
    messages[3] differs (role user): 'Paris' vs recorded 'London'
    tools differ: added get_time, removed get_weather
    parameters differ: temperature 0.2 vs recorded 0.7
    endpoint differs: POST /v1/messages vs recorded POST /v1/chat/completions

Requests are compared through ``rewind.canon.describe_parts`` of their canonical form
(keys ``endpoint``, ``model``, ``system``, ``messages``, ``tools``, ``parameters`` and
``body`` for non-JSON bodies). Steps on the same endpoint rank first, then those with
the fewest differing parts. Header values never appear in a report (they may hold
secrets); only bodies, which the store has already redacted, are previewed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from rewind.canon.fingerprint import describe_parts
from rewind.store.models import StepRecord

__all__ = [
    "MissReport",
    "Neighbour",
    "Parts",
    "describe_differences",
    "explain_miss",
    "explain_parts",
]

Parts = Mapping[str, Any]
PREVIEW_CHARS = 60
NEAREST = 3
_CONTEXT_CHARS = 20
_MAX_MESSAGE_LINES = 3
_SECRET_WORDS = ("key", "token", "secret", "password", "auth", "sig")


@dataclass(frozen=True)
class Neighbour:
    """A recorded step near a missed request, and how the request differs from it."""

    step: StepRecord
    differences: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.step.step,
            "method": self.step.method,
            "url": safe_url(self.step.url),
            "fingerprint": self.step.fingerprint,
            "differences": list(self.differences),
        }


@dataclass
class MissReport:
    """An unmatched request and its nearest recorded steps."""

    method: str
    url: str
    fingerprint: str
    nearest: list[Neighbour] = field(default_factory=list)

    def headline(self) -> str:
        return f"no recorded response for {self.method} {safe_url(self.url)}"

    def text(self) -> str:
        """A multi-line explanation for people (error bodies and the CLI)."""
        lines = [f"Rewind replay miss: {self.headline()} (fingerprint {self.fingerprint})."]
        lines += _nearest_lines(self.nearest)
        lines.append(
            "Nothing was sent upstream. Re-record the session, or replay with "
            "--on-miss live to send unmatched requests upstream."
        )
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "url": safe_url(self.url),
            "fingerprint": self.fingerprint,
            "nearest": [n.to_json() for n in self.nearest],
        }


def _nearest_lines(nearest: Sequence[Neighbour]) -> list[str]:
    if not nearest:
        return ["No recorded step to compare with: the session has no replayable steps."]
    lines = ["Nearest recorded steps:"]
    for n in nearest:
        lines.append(f"  step {n.step.step} ({n.step.method} {safe_url(n.step.url)}):")
        lines += [f"    - {d}" for d in n.differences] or [f"    - {_SAME_REQUEST}"]
    return lines


_SAME_REQUEST = (
    "same request, but every recorded answer to it was already served (--reuse serves the last one again)"
)


def explain_miss(
    method: str,
    url: str,
    fingerprint: str,
    canonical: dict[str, Any],
    candidates: Sequence[tuple[StepRecord, dict[str, Any]]],
    *,
    limit: int = NEAREST,
) -> MissReport:
    """Explain a miss from canonical requests (``rewind.canon.canonical_request``)."""
    recorded = [(step, describe_parts(canon)) for step, canon in candidates]
    return explain_parts(method, url, fingerprint, describe_parts(canonical), recorded, limit=limit)


def explain_parts(
    method: str,
    url: str,
    fingerprint: str,
    parts: Parts,
    candidates: Sequence[tuple[StepRecord, Parts]],
    *,
    limit: int = NEAREST,
) -> MissReport:
    """Explain a miss from described parts: the ``limit`` nearest candidates."""
    scored = [
        (_rank(parts, rec, step), Neighbour(step, describe_differences(parts, rec)))
        for step, rec in candidates
    ]
    scored.sort(key=lambda pair: pair[0])
    return MissReport(method, url, fingerprint, [n for _, n in scored[:limit]])


def _rank(parts: Parts, recorded: Parts, step: StepRecord) -> tuple[bool, int, int]:
    other_endpoint = parts.get("endpoint") != recorded.get("endpoint")
    differing = sum(parts.get(k) != recorded.get(k) for k in _keys(parts, recorded))
    return other_endpoint, differing, step.step


def _keys(parts: Parts, recorded: Parts) -> list[str]:
    ordered = [k for k in _DIFFERS if k in parts or k in recorded]
    extra = sorted((set(parts) | set(recorded)) - set(_DIFFERS))
    return ordered + extra


def describe_differences(parts: Parts, recorded: Parts) -> list[str]:
    """One line per difference between a request's parts and a recorded step's."""
    lines: list[str] = []
    for key in _keys(parts, recorded):
        mine, theirs = parts.get(key), recorded.get(key)
        if mine != theirs:
            lines += _DIFFERS.get(key, _other_differs(key))(mine, theirs)
    return lines


# --- one small matcher per part ---------------------------------------------------


def _endpoint_differs(mine: Any, theirs: Any) -> list[str]:
    return [f"endpoint differs: {_endpoint(mine, theirs)} vs recorded {_endpoint(theirs, mine)}"]


def _endpoint(value: Any, other: Any) -> str:
    """``POST /path?query``, with host and content type when those differ too."""
    if not isinstance(value, Mapping):
        return _plain(value)
    other = other if isinstance(other, Mapping) else {}
    query = "&".join(f"{k}={v}" for k, v in _pairs(value.get("query")))
    text = f"{value.get('method')} {value.get('path')}" + (f"?{query}" if query else "")
    if value.get("host") != other.get("host"):
        text = text.replace(" ", f" {value.get('host')}", 1)
    if value.get("content_type") != other.get("content_type"):
        text += f" ({value.get('content_type') or 'no content type'})"
    return text


def _pairs(query: Any) -> list[tuple[Any, Any]]:
    return [(p[0], p[1]) for p in _as_list(query) if isinstance(p, list | tuple) and len(p) == 2]


def _model_differs(mine: Any, theirs: Any) -> list[str]:
    return [f"model: {_short(mine)} != recorded {_short(theirs)}"]


def _system_differs(mine: Any, theirs: Any) -> list[str]:
    a, b = _contrast_values(mine, theirs)
    return [f"system prompt differs: {a} vs recorded {b}"]


def _body_differs(mine: Any, theirs: Any) -> list[str]:
    return ["body differs"]


def _other_differs(key: str) -> Callable[[Any, Any], list[str]]:
    return lambda mine, theirs: [f"{key} differs"]


def _messages_differ(mine: Any, theirs: Any) -> list[str]:
    ours, recorded = _as_list(mine), _as_list(theirs)
    lines = [f"messages: {len(ours)} vs recorded {len(recorded)}"] if len(ours) != len(recorded) else []
    changed = [i for i, (a, b) in enumerate(zip(ours, recorded, strict=False)) if a != b]
    lines += [_message_line(i, ours[i], recorded[i]) for i in changed[:_MAX_MESSAGE_LINES]]
    if len(changed) > _MAX_MESSAGE_LINES:
        lines.append(f"... and {len(changed) - _MAX_MESSAGE_LINES} more messages differ")
    return lines


def _message_line(index: int, mine: Any, theirs: Any) -> str:
    role, recorded_role = _role(mine), _role(theirs)
    if role != recorded_role and _text_of(mine) == _text_of(theirs):
        return f"messages[{index}] differs (role {role} vs recorded {recorded_role})"
    roles = f"role {role}" if role == recorded_role else f"role {role} vs recorded {recorded_role}"
    a, b = _contrast_values(mine, theirs)
    return f"messages[{index}] differs ({roles}): {a} vs recorded {b}"


def _tools_differ(mine: Any, theirs: Any) -> list[str]:
    ours, recorded = _tool_map(mine), _tool_map(theirs)
    added = sorted(set(ours) - set(recorded))
    removed = sorted(set(recorded) - set(ours))
    changed = sorted(n for n in set(ours) & set(recorded) if ours[n] != recorded[n])
    words = [f"added {', '.join(added)}"] * bool(added)
    words += [f"removed {', '.join(removed)}"] * bool(removed)
    words += [f"changed {', '.join(changed)}"] * bool(changed)
    return [f"tools differ: {'; '.join(words) or 'order or shape'}"]


def _parameters_differ(mine: Any, theirs: Any) -> list[str]:
    ours, recorded = _as_dict(mine), _as_dict(theirs)
    names = sorted(n for n in set(ours) | set(recorded) if ours.get(n) != recorded.get(n))
    pairs = [f"{n} {_param(ours, n)} vs recorded {_param(recorded, n)}" for n in names]
    return [f"parameters differ: {', '.join(pairs)}"]


_DIFFERS: dict[str, Callable[[Any, Any], list[str]]] = {
    "endpoint": _endpoint_differs,
    "model": _model_differs,
    "system": _system_differs,
    "messages": _messages_differ,
    "tools": _tools_differ,
    "parameters": _parameters_differ,
    "body": _body_differs,
}


# --- previews ------------------------------------------------------------------------


def _contrast(mine: str | None, theirs: str | None) -> tuple[str, str]:
    """Short previews of two texts, starting a little before where they first differ."""
    if mine is None or theirs is None:
        return _clip(mine, 0), _clip(theirs, 0)
    longest = max(len(mine), len(theirs))
    start = 0 if longest <= PREVIEW_CHARS else max(0, _common_prefix(mine, theirs) - _CONTEXT_CHARS)
    return _clip(mine, start), _clip(theirs, start)


def _common_prefix(a: str, b: str) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))


def _clip(text: str | None, start: int) -> str:
    if text is None:
        return "(none)"
    piece = text[start : start + PREVIEW_CHARS]
    shown = ("…" if start else "") + piece + ("…" if start + PREVIEW_CHARS < len(text) else "")
    return "'" + shown.replace("\r", "\\r").replace("\n", "\\n") + "'"


def _short(value: Any) -> str:
    return _clip(value, 0) if isinstance(value, str) or value is None else _clip(_json(value), 0)


def _plain(value: Any) -> str:
    return value if isinstance(value, str) else _json(value)


def _param(params: Mapping[str, Any], name: str) -> str:
    if name not in params:
        return "(unset)"
    value = params[name]
    return _short(value) if isinstance(value, str) else _json(value)[:PREVIEW_CHARS]


def _text_of(value: Any) -> str | None:
    """The human text of a system prompt or message: its texts and tool calls, else JSON."""
    if value is None or isinstance(value, str):
        return value
    return " ".join(_pieces(value)) or _json(value)


_NESTED = ("content", "parts", "tool_calls", "function", "functionCall", "functionResponse")


def _pieces(value: Any) -> list[str]:
    """Texts (``text`` fields) and tool calls (``name(args)``) found in a message."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [piece for item in value for piece in _pieces(item)]
    if not isinstance(value, Mapping):
        return []
    if isinstance(value.get("text"), str):
        return [value["text"]]
    call = _call(value)
    return [call] if call else [p for key in _NESTED if key in value for p in _pieces(value[key])]


def _call(value: Mapping[str, Any]) -> str | None:
    name = value.get("name")
    args = next((value[k] for k in ("arguments", "input", "args", "response") if k in value), None)
    if not isinstance(name, str) or args is None:
        return None
    return f"{name}({args if isinstance(args, str) else _json(args)})"


def _contrast_values(mine: Any, theirs: Any) -> tuple[str, str]:
    """Previews of two differing values: by their text, or their JSON when texts agree."""
    a, b = _text_of(mine), _text_of(theirs)
    return _contrast(a, b) if a != b else _contrast(_json(mine), _json(theirs))


def _role(message: Any) -> str:
    return str(message.get("role", "?")) if isinstance(message, Mapping) else "?"


def _tool_map(tools: Any) -> dict[str, Any]:
    return {_tool_name(t, i): t for i, t in enumerate(_as_list(tools))}


def _tool_name(tool: Any, index: int) -> str:
    if isinstance(tool, str):
        return tool
    if isinstance(tool, Mapping):
        inner = tool.get("function")
        name = inner.get("name") if isinstance(inner, Mapping) else tool.get("name")
        return str(name) if name is not None else f"#{index}"
    return f"#{index}"


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [] if value is None else [value]


def _as_dict(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def safe_url(url: str) -> str:
    """``url`` with the values of secret-looking query parameters masked."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    query = [
        (k, "[REDACTED]" if _secret_name(k) else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit(parts._replace(query=urlencode(query, safe="[]:/")))


def _secret_name(name: str) -> bool:
    return any(word in name.lower() for word in _SECRET_WORDS)
