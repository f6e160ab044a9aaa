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
``body`` for non-JSON bodies). Steps rank by closeness: a distance in [0, 1] per part,
weighted (messages 4, model 2, system prompt 2, non-JSON body 4, tools 1, parameters 1,
anything else 1) and summed, with a differing endpoint costing as much as all the rest
together, so a step on the same endpoint always ranks first. Equally close steps keep
step order, steps not yet served first when the caller says which those are. Header
values never appear in a report (they may hold secrets); only bodies, which the store
has already redacted, are previewed.
"""

from __future__ import annotations

import json
import re
from bisect import insort
from collections import Counter
from collections.abc import Callable, Mapping, Sequence, Set
from dataclasses import dataclass, field
from difflib import SequenceMatcher
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
    similarity: float | None = None  # 1 for the same request; below 0.5 on another endpoint

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.step.step,
            "method": self.step.method,
            "url": safe_url(self.step.url),
            "fingerprint": self.step.fingerprint,
            "differences": list(self.differences),
            "similarity": None if self.similarity is None else round(self.similarity, 4),
        }

    def closeness(self) -> str:
        """``, 97% similar`` (never 100% unless the same request), or nothing if unknown."""
        if self.similarity is None:
            return ""
        percent = min(int(self.similarity * 100), 99) if self.differences else 100
        return f", {percent}% similar"


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
        lines.append(f"  step {n.step.step} ({n.step.method} {safe_url(n.step.url)}){n.closeness()}:")
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
    unserved: Set[int] | None = None,
) -> MissReport:
    """Explain a miss from canonical requests (``rewind.canon.canonical_request``).

    ``unserved``, the step numbers not yet served, puts those first among equally close steps.
    """
    recorded = [(step, describe_parts(canon)) for step, canon in candidates]
    parts = describe_parts(canonical)
    return explain_parts(method, url, fingerprint, parts, recorded, limit=limit, unserved=unserved)


def explain_parts(
    method: str,
    url: str,
    fingerprint: str,
    parts: Parts,
    candidates: Sequence[tuple[StepRecord, Parts]],
    *,
    limit: int = NEAREST,
    unserved: Set[int] | None = None,
) -> MissReport:
    """Explain a miss from described parts: the ``limit`` closest candidates."""
    nearest = [
        Neighbour(r.step, describe_differences(parts, r.recorded), r.similarity)
        for r in _nearest(parts, candidates, limit, unserved)
    ]
    return MissReport(method, url, fingerprint, nearest)


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


# --- closeness: which recorded steps are nearest -------------------------------------
#
# Each part that differs costs its weight times a distance in [0, 1]; a differing endpoint
# costs as much as all other parts together. Every candidate is first scored roughly, a
# text's similarity taken at its upper bound from lengths alone (so the rough distance
# never exceeds the exact one); then the best few are scored exactly, best first, until
# no rough score left could beat the ``limit``-th exact one.

_WEIGHTS = {"model": 2.0, "system": 2.0, "messages": 4.0, "tools": 1.0, "parameters": 1.0, "body": 4.0}
_OTHER_WEIGHT = 1.0
_ELSEWHERE = 0.25  # same text (or same named tools, parameters), but differing in some other way
_ROLE = 0.5  # a message whose role differs
_SHORTLIST = 32  # at most this many candidates are scored exactly
_DIFFLIB_CHARS = 400  # longer middles are compared by word, not by character
_WORDS = re.compile(r"\S+\s*|\s+")

Similar = Callable[[str, str], float]


@dataclass(frozen=True)
class _Ranked:
    key: tuple[bool, float, bool, int, int]
    step: StepRecord
    recorded: Parts
    similarity: float


def _nearest(
    parts: Parts, candidates: Sequence[tuple[StepRecord, Parts]], limit: int, unserved: Set[int] | None
) -> list[_Ranked]:
    if limit <= 0:
        return []
    rank, similarity = _ranker(parts, unserved), _Similarity()
    rough = sorted((rank(i, s, r, similarity.rough) for i, (s, r) in enumerate(candidates)), key=_key)
    best: list[_Ranked] = []
    for bound in rough[: max(_SHORTLIST, limit)]:
        if len(best) >= limit and bound.key > best[limit - 1].key:
            break
        insort(best, rank(bound.key[-1], bound.step, bound.recorded, similarity.exact), key=_key)
    return best[:limit]


def _key(ranked: _Ranked) -> tuple[bool, float, bool, int, int]:
    return ranked.key


def _ranker(parts: Parts, unserved: Set[int] | None) -> Callable[[int, StepRecord, Parts, Similar], _Ranked]:
    def rank(index: int, step: StepRecord, recorded: Parts, similar: Similar) -> _Ranked:
        other_endpoint = parts.get("endpoint") != recorded.get("endpoint")
        keys = [k for k in _keys(parts, recorded) if k != "endpoint"]
        rest = sum(_WEIGHTS.get(k, _OTHER_WEIGHT) for k in keys)
        endpoint = max(rest, 1.0)
        distance = _distance(keys, parts, recorded, similar) + endpoint * other_endpoint
        served = unserved is not None and step.step not in unserved
        key = (other_endpoint, distance, served, step.step, index)
        return _Ranked(key, step, recorded, 1.0 - distance / (rest + endpoint))

    return rank


def _distance(keys: Sequence[str], parts: Parts, recorded: Parts, similar: Similar) -> float:
    """The weighted distance over ``keys``."""
    return sum(
        _WEIGHTS.get(key, _OTHER_WEIGHT) * _part_cost(key, parts.get(key), recorded.get(key), similar)
        for key in keys
        if parts.get(key) != recorded.get(key)
    )


def _part_cost(key: str, mine: Any, theirs: Any, similar: Similar) -> float:
    return _COSTS.get(key, _unequal)(mine, theirs, similar)


def _unequal(mine: Any, theirs: Any, similar: Similar) -> float:
    return 1.0


def _text_cost(mine: Any, theirs: Any, similar: Similar) -> float:
    a, b = _text_of(mine), _text_of(theirs)
    if a == b:
        return _ELSEWHERE
    return 1.0 if a is None or b is None else 1.0 - similar(a, b)


def _messages_cost(mine: Any, theirs: Any, similar: Similar) -> float:
    """Half how much of the conversation follows the first difference, half how much differs.

    So a request that differs only in its last message is closer than one differing only
    in its first, and a message with one word changed is closer than one rewritten.
    """
    ours, recorded = _as_list(mine), _as_list(theirs)
    total = max(len(ours), len(recorded), 1)
    same = _same_prefix(ours, recorded)
    pairs = zip(ours[same:], recorded[same:], strict=False)
    changed = sum(_message_cost(a, b, similar) for a, b in pairs if a != b)
    content = (changed + abs(len(ours) - len(recorded))) / total
    return ((total - same) / total + content) / 2


def _same_prefix(ours: Sequence[Any], recorded: Sequence[Any]) -> int:
    pairs = enumerate(zip(ours, recorded, strict=False))
    return next((i for i, (a, b) in pairs if a != b), min(len(ours), len(recorded)))


def _message_cost(mine: Any, theirs: Any, similar: Similar) -> float:
    return max(_ROLE * (_role(mine) != _role(theirs)), _text_cost(mine, theirs, similar))


def _tools_cost(mine: Any, theirs: Any, similar: Similar) -> float:
    """Tools added or removed count 1, tools changed 1/2, out of all tools named."""
    ours, recorded = _tool_map(mine), _tool_map(theirs)
    names = _differing_names(ours, recorded)
    weight = sum(0.5 if n in ours and n in recorded else 1.0 for n in names)
    return weight / len(set(ours) | set(recorded)) if names else _ELSEWHERE


def _parameters_cost(mine: Any, theirs: Any, similar: Similar) -> float:
    """The fraction of parameters set differently."""
    ours, recorded = _as_dict(mine), _as_dict(theirs)
    names = _differing_names(ours, recorded)
    return len(names) / len(set(ours) | set(recorded)) if names else _ELSEWHERE


def _differing_names(ours: Mapping[str, Any], recorded: Mapping[str, Any]) -> list[str]:
    names = set(ours) | set(recorded)
    return [n for n in names if n not in ours or n not in recorded or ours[n] != recorded[n]]


_COSTS: dict[str, Callable[[Any, Any, Similar], float]] = {
    "system": _text_cost,
    "messages": _messages_cost,
    "tools": _tools_cost,
    "parameters": _parameters_cost,
}


class _Similarity:
    """Text similarity: 2 x matched characters / both lengths, like difflib's ratio.

    Matched are the common prefix and suffix (cached, for a prompt shared by many steps)
    and what difflib matches in between, by character when that is short, else by word.
    ``rough`` bounds what lies between by the characters both have (or, when long, the
    shorter length): it is never below ``exact`` and costs little more than an ``==``.
    """

    def __init__(self) -> None:
        self._affixes: dict[tuple[str, str], tuple[int, int]] = {}
        self._ratios: dict[tuple[str, str, bool], float] = {}

    def rough(self, a: str, b: str) -> float:
        return self._cached(a, b, False)

    def exact(self, a: str, b: str) -> float:
        return self._cached(a, b, True)

    def _cached(self, a: str, b: str, exact: bool) -> float:
        found = self._ratios.get((a, b, exact))
        if found is None:
            short, long = (_char_matches, _word_matches) if exact else (_shared_chars, _shorter)
            found = self._ratios[(a, b, exact)] = self._ratio(a, b, short, long)
        return found

    def _ratio(self, a: str, b: str, short: _Matches, long: _Matches) -> float:
        if not a and not b:
            return 1.0
        head, tail = self._affix(a, b)
        rest_a, rest_b = a[head : len(a) - tail], b[head : len(b) - tail]
        matches = short if len(rest_a) + len(rest_b) <= _DIFFLIB_CHARS else long
        return 2 * (head + tail + matches(rest_a, rest_b)) / (len(a) + len(b))

    def _affix(self, a: str, b: str) -> tuple[int, int]:
        found = self._affixes.get((a, b))
        if found is None:
            head = _common_prefix(a, b)
            found = self._affixes[(a, b)] = (head, _common_prefix(a[head:][::-1], b[head:][::-1]))
        return found


_Matches = Callable[[str, str], int]


def _shared_chars(a: str, b: str) -> int:
    return sum((Counter(a) & Counter(b)).values())


def _shorter(a: str, b: str) -> int:
    return min(len(a), len(b))


def _char_matches(a: str, b: str) -> int:
    return sum(block.size for block in SequenceMatcher(None, a, b, autojunk=False).get_matching_blocks())


def _word_matches(a: str, b: str) -> int:
    words_a, words_b = _WORDS.findall(a), _WORDS.findall(b)
    blocks = SequenceMatcher(None, words_a, words_b).get_matching_blocks()
    return sum(len(word) for block in blocks for word in words_a[block.a : block.a + block.size])


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
    """The length of the common prefix, by bisection: fast on long texts."""
    low, high = 0, min(len(a), len(b))
    while low < high:
        mid = (low + high + 1) // 2
        low, high = (mid, high) if a[:mid] == b[:mid] else (low, mid - 1)
    return low


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
