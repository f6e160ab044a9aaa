"""Bisect two runs: the first step where the bad run's answers part from the good run's, and why.

    bisect(align(good, bad), parts)  ->  Bisection(identical, first, cause, later, matched, total)

The first divergence is the first aligned pair whose responses differ, or a call only one
run makes. Its cause is read from the requests at and before it; ``parts(step)`` gives
``rewind.canon.describe_parts`` of a step's canonical request and is called only for the
divergent pair and for the first earlier pair whose request changed:

    a call only one run makes          STEP_ADDED, STEP_REMOVED (a retry says so)
    same request, another answer       MODEL_VERSION when the provider reports another
                                       model, else NONDETERMINISM (LLM) or EXTERNAL (HTTP)
    the requests differ                the first that applies of ENDPOINT, MODEL,
                                       MODEL_VERSION, SYSTEM_PROMPT, TOOLS, SAMPLING,
                                       TOOL_RESULT, USER_INPUT, OTHER; the rest are evidence

Evidence is short lines with the differing text of both runs, cut to ``PREVIEW_CHARS``
around where they first differ and escaped (recorded text is data, never markup):

    good: 'You are helpful.'
    bad: 'You are terse.'
    also sampling parameters temperature: good temperature=0.2 vs bad temperature=0.9

Later divergences are ``propagated`` when their request changed too (an earlier
difference reached them) and independent when the same request got another answer.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from rewind.analysis.align import Pair, Status, StepView, generic_path

__all__ = [
    "PREVIEW_CHARS",
    "Bisection",
    "Cause",
    "CauseKind",
    "Divergence",
    "bisect",
]

Parts = Mapping[str, Any]
PartsOf = Callable[[StepView], Parts]
RenderStep = Callable[[StepView], dict[str, Any]]

PREVIEW_CHARS = 200
_ALSO_CHARS = 80
_MAX_ALSO = 6
_MAX_EARLIER = 3


class CauseKind(StrEnum):
    """Why the first divergent step differs."""

    SYSTEM_PROMPT = "system_prompt"
    MODEL = "model"
    MODEL_VERSION = "model_version"
    SAMPLING = "sampling"
    TOOLS = "tools"
    TOOL_RESULT = "tool_result"
    USER_INPUT = "user_input"
    NONDETERMINISM = "nondeterminism"
    EXTERNAL = "external"  # the same request to a non-LLM endpoint got another answer
    ENDPOINT = "endpoint"
    STEP_ADDED = "step_added"
    STEP_REMOVED = "step_removed"
    OTHER = "other"


@dataclass(frozen=True)
class Cause:
    """The likely cause of the first divergence, and the differing text behind it."""

    kind: CauseKind
    detail: str
    evidence: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"kind": str(self.kind), "detail": self.detail, "evidence": list(self.evidence)}


@dataclass(frozen=True)
class Divergence:
    """A pair whose responses differ; ``index`` is its position in the alignment."""

    index: int
    pair: Pair
    propagated: bool

    def to_json(self, render_step: RenderStep | None = None) -> dict[str, Any]:
        good, bad = self.pair.a, self.pair.b
        either = good or bad
        return {
            "step": either.step if either else None,
            "kind": either.kind if either else None,
            "good": _step_json(good, render_step),
            "bad": _step_json(bad, render_step),
        }


@dataclass(frozen=True)
class Bisection:
    """Where a bad run first parts from a good one, why, and what followed."""

    identical: bool  # every pair has the same request and the same response
    first: Divergence | None
    cause: Cause | None
    later: list[Divergence]
    matched: int  # aligned pairs whose responses are the same
    total: int  # steps in the longer run

    def to_json(self, render_step: RenderStep | None = None) -> dict[str, Any]:
        return {
            "identical": self.identical,
            "first_divergence": self.first.to_json(render_step) if self.first else None,
            "cause": self.cause.to_json() if self.cause else None,
            "matched": self.matched,
            "total": self.total,
            "later": [{**d.to_json(render_step), "propagated": d.propagated} for d in self.later],
        }


def _step_json(step: StepView | None, render_step: RenderStep | None) -> dict[str, Any] | None:
    if step is None:
        return None
    plain = {
        "step": step.step,
        "endpoint": step.endpoint,
        "model": step.model,
        "reported_model": step.reported_model,
        "fingerprint": step.fingerprint,
        "meaning": step.meaning,
    }
    return {**plain, **render_step(step)} if render_step else plain


def bisect(pairs: Sequence[Pair], parts: PartsOf) -> Bisection:
    """The first divergence of an alignment of a good run (``a``) and a bad one (``b``)."""
    diverging = [i for i, pair in enumerate(pairs) if not pair.response_same]
    matched = len(pairs) - len(diverging)
    total = max(sum(p.a is not None for p in pairs), sum(p.b is not None for p in pairs))
    if not diverging:
        identical = all(p.status is Status.SAME for p in pairs)
        return Bisection(identical, None, None, [], matched, total)
    first = Divergence(diverging[0], pairs[diverging[0]], propagated=False)
    later = [Divergence(i, pairs[i], not pairs[i].request_same) for i in diverging[1:]]
    return Bisection(False, first, _cause(pairs, first.index, parts), later, matched, total)


# --- the cause of the first divergence ---------------------------------------------------


@dataclass(frozen=True)
class _Finding:
    """One difference between the two requests of a pair."""

    kind: CauseKind
    what: str  # where: "temperature", "messages[3]", "added get_time"
    good: Any
    bad: Any


_PRIORITY = (
    CauseKind.ENDPOINT,
    CauseKind.MODEL,
    CauseKind.MODEL_VERSION,
    CauseKind.SYSTEM_PROMPT,
    CauseKind.TOOLS,
    CauseKind.SAMPLING,
    CauseKind.TOOL_RESULT,
    CauseKind.USER_INPUT,
    CauseKind.OTHER,
)
_DETAILS = {
    CauseKind.ENDPOINT: "the request went to another endpoint: {good} in good, {bad} in bad",
    CauseKind.MODEL: "the requested model changed: {good} in good, {bad} in bad",
    CauseKind.MODEL_VERSION: (
        "the same model was requested, but the provider reported {good} in good and {bad} in bad"
    ),
    CauseKind.SYSTEM_PROMPT: "the system prompt changed",
    CauseKind.TOOLS: "the tools or tool settings changed: {what}",
    CauseKind.SAMPLING: "sampling parameters changed: {what}",
    CauseKind.TOOL_RESULT: "a tool result sent to the model changed: {what}",
    CauseKind.USER_INPUT: "a user message changed: {what}",
    CauseKind.OTHER: "the request changed: {what}",
}
_LABELS = {
    CauseKind.ENDPOINT: "endpoint",
    CauseKind.MODEL: "model",
    CauseKind.MODEL_VERSION: "reported model",
    CauseKind.SYSTEM_PROMPT: "system prompt",
    CauseKind.TOOLS: "tools",
    CauseKind.SAMPLING: "sampling parameters",
    CauseKind.TOOL_RESULT: "tool result",
    CauseKind.USER_INPUT: "user message",
    CauseKind.OTHER: "request",
}


def _cause(pairs: Sequence[Pair], index: int, parts: PartsOf) -> Cause:
    good, bad = pairs[index].a, pairs[index].b
    found: list[_Finding] = []
    if good is None or bad is None:
        cause = _one_sided(pairs, index, good is None)
    elif pairs[index].request_same:
        cause = _same_request(good, bad)
    else:
        found = _findings(parts(good), parts(bad), good, bad)
        cause = _from_findings(found, pairs[:index])
    earlier = _earlier(pairs[:index], parts, found, cause.kind)
    return replace(cause, evidence=cause.evidence + earlier)


def _one_sided(pairs: Sequence[Pair], index: int, added: bool) -> Cause:
    side: Callable[[Pair], StepView | None] = (lambda p: p.b) if added else (lambda p: p.a)
    step = side(pairs[index])
    if step is None:
        raise ValueError("a pair with no step on either side")
    retry = _retry_of(pairs, index, side)
    if added:
        detail = f"the bad run makes a call the good run does not: step {step.step} {step.endpoint}"
        evidence = ["good: (no call)", f"bad: step {step.step} {step.endpoint}"]
    else:
        detail = f"the bad run does not make good step {step.step}: {step.endpoint}"
        evidence = [f"good: step {step.step} {step.endpoint}", "bad: (no call)"]
    note = f" (a retry: the same request as its step {retry})" if retry else ""
    kind = CauseKind.STEP_ADDED if added else CauseKind.STEP_REMOVED
    return Cause(kind, detail + note, evidence)


def _retry_of(pairs: Sequence[Pair], index: int, side: Callable[[Pair], StepView | None]) -> int | None:
    """The neighbouring step of the same run that made the very same request, if any."""
    step = side(pairs[index])
    for near in (index - 1, index + 1):
        other = side(pairs[near]) if 0 <= near < len(pairs) else None
        if step and other and other.fingerprint == step.fingerprint:
            return other.step
    return None


def _same_request(good: StepView, bad: StepView) -> Cause:
    same = f"request: identical ({good.fingerprint})"
    version = _version(good, bad)
    if version:
        cause = _from_findings([version], [])
        return replace(cause, evidence=[*cause.evidence, same])
    evidence = [
        same,
        f"good response: {good.meaning}",
        f"bad response: {bad.meaning}",
    ]
    if good.kind == "llm":
        detail = "the same request got another response: the model answered differently (nondeterminism)"
        return Cause(CauseKind.NONDETERMINISM, detail, evidence)
    detail = f"the same request to {good.endpoint} got another response: the service answered differently"
    return Cause(CauseKind.EXTERNAL, detail, evidence)


def _version(good: StepView, bad: StepView) -> _Finding | None:
    """The provider served another version of the same requested model."""
    reported = good.reported_model, bad.reported_model
    if good.model != bad.model or None in reported or reported[0] == reported[1]:
        return None
    return _Finding(CauseKind.MODEL_VERSION, "", good.reported_model, bad.reported_model)


def _from_findings(findings: list[_Finding], before: Sequence[Pair]) -> Cause:
    if not findings:
        return Cause(CauseKind.OTHER, "the request changed", [])
    main = findings[0]
    good, bad = _previews(main.good, main.bad, PREVIEW_CHARS)
    detail = _DETAILS[main.kind].format(what=main.what, good=good, bad=bad)
    if main.kind is CauseKind.TOOL_RESULT:
        detail += _tool_step_note(before)
    evidence = [f"good: {good}", f"bad: {bad}"] + [f"also {_also(f)}" for f in findings[1:_MAX_ALSO]]
    if len(findings) > _MAX_ALSO:
        evidence.append(f"... and {len(findings) - _MAX_ALSO} more differences")
    return Cause(main.kind, detail, evidence)


def _also(finding: _Finding) -> str:
    good, bad = _previews(finding.good, finding.bad, _ALSO_CHARS)
    where = " ".join(w for w in (_LABELS[finding.kind], finding.what) if w)
    return f"{where}: good {good} vs bad {bad}"


def _tool_step_note(before: Sequence[Pair]) -> str:
    """Names the last earlier non-LLM call whose request changed: where the result came from."""
    for pair in reversed(before):
        good = pair.a
        if good and pair.b and good.kind != "llm" and not pair.request_same:
            return f"; earlier {good.kind} step {good.step} ({good.endpoint}) changed and propagated"
    return ""


def _earlier(before: Sequence[Pair], parts: PartsOf, known: list[_Finding], kind: CauseKind) -> list[str]:
    """Evidence from the first earlier pair whose request changed though its answer did not:
    the differences not already shown for the divergent pair."""
    pair = next((p for p in before if p.a and p.b and not p.request_same), None)
    if pair is None or pair.a is None or pair.b is None:
        return []
    found = _findings(parts(pair.a), parts(pair.b), pair.a, pair.b)
    new = [f for f in found if f not in known and f.kind is not kind]
    return [f"earlier step {pair.a.step}: {_also(f)}" for f in new[:_MAX_EARLIER]]


# --- what differs between two requests ----------------------------------------------------


def _findings(good: Parts, bad: Parts, good_step: StepView, bad_step: StepView) -> list[_Finding]:
    """Every difference between two requests' parts, most likely cause first."""
    found = [f for check in _CHECKS for f in check(good, bad)]
    version = _version(good_step, bad_step)
    found += [version] if version and good.get("model") == bad.get("model") else []
    return sorted(found, key=lambda f: _PRIORITY.index(f.kind))


def _endpoint(good: Parts, bad: Parts) -> list[_Finding]:
    mine, theirs = good.get("endpoint"), bad.get("endpoint")
    if mine == theirs:
        return []
    if _slot(mine) != _slot(theirs):
        return [_Finding(CauseKind.ENDPOINT, "", _where(mine), _where(theirs))]
    if isinstance(mine, Mapping) and isinstance(theirs, Mapping):
        rest = [k for k in ("query", "content_type") if mine.get(k) != theirs.get(k)]
        if rest:
            return [_Finding(CauseKind.OTHER, " and ".join(rest), _rest(mine, rest), _rest(theirs, rest))]
    return []


def _where(endpoint: Any) -> str:
    if not isinstance(endpoint, Mapping):
        return str(endpoint)
    return f"{endpoint.get('method')} {endpoint.get('host')}{endpoint.get('path')}"


def _slot(endpoint: Any) -> str:
    """The endpoint without its query and with model names elided (they count as the model)."""
    return generic_path(_where(endpoint))


def _rest(endpoint: Mapping[str, Any], keys: list[str]) -> str:
    return _json({k: endpoint.get(k) for k in keys})


def _model(good: Parts, bad: Parts) -> list[_Finding]:
    if good.get("model") == bad.get("model"):
        return []
    return [_Finding(CauseKind.MODEL, "", good.get("model"), bad.get("model"))]


def _system(good: Parts, bad: Parts) -> list[_Finding]:
    if good.get("system") == bad.get("system"):
        return []
    return [_Finding(CauseKind.SYSTEM_PROMPT, "", good.get("system"), bad.get("system"))]


def _body(good: Parts, bad: Parts) -> list[_Finding]:
    if good.get("body") == bad.get("body"):
        return []
    return [_Finding(CauseKind.OTHER, "body", good.get("body"), bad.get("body"))]


# --- tools ------------------------------------------------------------------------------


def _tools(good: Parts, bad: Parts) -> list[_Finding]:
    if good.get("tools") == bad.get("tools"):
        return []
    mine, theirs = _tool_map(good.get("tools")), _tool_map(bad.get("tools"))
    added = sorted(set(theirs) - set(mine))
    removed = sorted(set(mine) - set(theirs))
    changed = sorted(n for n in set(mine) & set(theirs) if mine[n] != theirs[n])
    words = [f"{verb} {', '.join(names)}" for verb, names in _tool_verbs(added, removed, changed)]
    what = "; ".join(words) or "order or shape"
    if changed:
        return [_Finding(CauseKind.TOOLS, what, mine[changed[0]], theirs[changed[0]])]
    return [_Finding(CauseKind.TOOLS, what, ", ".join(mine) or None, ", ".join(theirs) or None)]


def _tool_verbs(*names: list[str]) -> list[tuple[str, list[str]]]:
    return [
        (verb, found) for verb, found in zip(("added", "removed", "changed"), names, strict=True) if found
    ]


def _tool_map(tools: Any) -> dict[str, Any]:
    return {_tool_name(tool, i): tool for i, tool in enumerate(_as_list(tools))}


def _tool_name(tool: Any, index: int) -> str:
    if not isinstance(tool, Mapping):
        return str(tool) if isinstance(tool, str) else f"#{index}"
    inner = tool.get("function")
    name = inner.get("name") if isinstance(inner, Mapping) else tool.get("name")
    return str(name) if name is not None else next(iter(tool), f"#{index}")


# --- parameters ---------------------------------------------------------------------------

# Compared lower-case without underscores, on every segment of a nested name.
_SAMPLING_NAMES = frozenset(
    {
        "temperature", "topp", "topk", "minp", "seed", "maxtokens", "maxcompletiontokens",
        "maxoutputtokens", "presencepenalty", "frequencypenalty", "repetitionpenalty",
        "reasoningeffort", "reasoning", "thinking", "thinkingconfig", "thinkingbudget", "n",
        "candidatecount", "stop", "stopsequences", "logitbias", "logprobs", "toplogprobs",
        "responselogprobs", "verbosity",
    }
)  # fmt: skip
_TOOL_NAMES = frozenset({"toolchoice", "paralleltoolcalls", "toolconfig", "functions", "functioncall"})
# Parameter objects whose members are compared one by one.
_NESTED = frozenset({"generationconfig", "reasoning", "thinking", "inferenceconfig"})


_UNSET = object()


def _parameters(good: Parts, bad: Parts) -> list[_Finding]:
    mine, theirs = _flat(good.get("parameters")), _flat(bad.get("parameters"))
    names = sorted(n for n in set(mine) | set(theirs) if mine.get(n, _UNSET) != theirs.get(n, _UNSET))
    groups: dict[CauseKind, list[str]] = {}
    for name in names:
        groups.setdefault(_parameter_kind(name), []).append(name)
    return [
        _Finding(kind, ", ".join(group), _assignments(mine, group), _assignments(theirs, group))
        for kind, group in groups.items()
    ]


def _flat(parameters: Any) -> dict[str, Any]:
    """Parameters by name, members of generation/reasoning settings as ``outer.inner``."""
    flat: dict[str, Any] = {}
    for key, value in parameters.items() if isinstance(parameters, Mapping) else ():
        if _norm(key) in _NESTED and isinstance(value, Mapping):
            flat.update({f"{key}.{inner}": v for inner, v in value.items()})
        else:
            flat[key] = value
    return flat


def _parameter_kind(name: str) -> CauseKind:
    segments = {_norm(s) for s in name.split(".")}
    if segments & _TOOL_NAMES:
        return CauseKind.TOOLS
    return CauseKind.SAMPLING if segments & _SAMPLING_NAMES else CauseKind.OTHER


def _norm(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "")


def _assignments(parameters: Mapping[str, Any], names: list[str]) -> str:
    return ", ".join(f"{n}={_json(parameters[n]) if n in parameters else '(unset)'}" for n in names)


# --- messages -----------------------------------------------------------------------------

_TOOL_RESULT_TYPES = frozenset({"tool_result", "function_call_output", "custom_tool_call_output"})
_TOOL_RESULT_ROLES = frozenset({"tool", "function", "ipython"})
_OWN_ROLES = frozenset({"assistant", "model"})  # the run's own earlier answers
_OWN_TYPES = frozenset({"function_call", "custom_tool_call", "reasoning", "tool_use"})


def _messages(good: Parts, bad: Parts) -> list[_Finding]:
    """The differing messages between the common start and the common end of two histories."""
    mine, theirs = _as_list(good.get("messages")), _as_list(bad.get("messages"))
    start = _common_prefix(mine, theirs)
    end = _common_prefix(mine[start:][::-1], theirs[start:][::-1])
    middle = max(len(mine), len(theirs)) - start - end
    found: list[_Finding] = []
    for i in range(start, start + middle):
        found += _message(i, _at(mine, i, len(mine) - end), _at(theirs, i, len(theirs) - end))
    return found


def _at(items: list[Any], index: int, stop: int) -> Any:
    return items[index] if index < stop else None


def _message(index: int, mine: Any, theirs: Any) -> list[_Finding]:
    """One finding per kind of content that differs in a message."""
    kind = _message_kind(mine if mine is not None else theirs)
    groups = [(kind, mine, theirs)]
    if kind is CauseKind.USER_INPUT:
        (tools_a, rest_a), (tools_b, rest_b) = _blocks(mine), _blocks(theirs)
        groups = [(CauseKind.TOOL_RESULT, tools_a, tools_b), (CauseKind.USER_INPUT, rest_a, rest_b)]
    what = f"messages[{index}] ({_role(mine if mine is not None else theirs)})"
    found = [_Finding(k, what, a, b) for k, a, b in groups if a != b]
    return found or [_Finding(kind, what, mine, theirs)]


def _message_kind(message: Any) -> CauseKind:
    if not isinstance(message, Mapping):
        return CauseKind.USER_INPUT  # Responses API input given as a plain string
    role, kind = message.get("role"), message.get("type")
    if role in _TOOL_RESULT_ROLES or kind in _TOOL_RESULT_TYPES:
        return CauseKind.TOOL_RESULT
    if role in _OWN_ROLES or kind in _OWN_TYPES:
        return CauseKind.OTHER
    return CauseKind.USER_INPUT if role in (None, "user") else CauseKind.OTHER


def _role(message: Any) -> str:
    if not isinstance(message, Mapping):
        return "input"
    return str(message.get("role") or message.get("type") or "item")


def _blocks(message: Any) -> tuple[list[Any], Any]:
    """A user message's tool results (Anthropic ``tool_result`` blocks, Gemini
    ``functionResponse`` parts) apart from the rest of its content."""
    if not isinstance(message, Mapping):
        return [], message
    content = message.get("content", message.get("parts"))
    if not isinstance(content, list):
        return [], content
    tools = [block for block in content if _is_tool_result(block)]
    return tools, [block for block in content if not _is_tool_result(block)]


def _is_tool_result(block: Any) -> bool:
    if not isinstance(block, Mapping):
        return False
    return (
        block.get("type") in _TOOL_RESULT_TYPES or "functionResponse" in block or "function_response" in block
    )


_CHECKS: tuple[Callable[[Parts, Parts], list[_Finding]], ...] = (
    _endpoint,
    _model,
    _system,
    _tools,
    _parameters,
    _messages,
    _body,
)


# --- previews -------------------------------------------------------------------------------


def _previews(good: Any, bad: Any, width: int) -> tuple[str, str]:
    """Quoted, escaped previews of two values, centred on where their texts first differ."""
    mine, theirs = _text(good), _text(bad)
    if mine == theirs and good != bad:
        mine, theirs = _json(good), _json(bad)
    if mine is None or theirs is None:
        return _clip(mine, 0, width), _clip(theirs, 0, width)
    longest = max(len(mine), len(theirs))
    start = max(0, min(_common_prefix(mine, theirs) - width // 2, longest - width))
    return _clip(mine, start, width), _clip(theirs, start, width)


def _clip(text: str | None, start: int, width: int) -> str:
    if text is None:
        return "(none)"
    piece = text[start : start + width]
    return ("…" if start else "") + repr(piece) + ("…" if start + width < len(text) else "")


_TEXT_KEYS = ("text", "content", "parts", "output")


def _text(value: Any) -> str | None:
    """The human text of a prompt, message or content block; JSON for anything else."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n".join(t for t in map(_text, value) if t is not None)
    if isinstance(value, Mapping):
        key = next((k for k in _TEXT_KEYS if isinstance(value.get(k), str | list)), None)
        if key is not None:
            return _text(value[key])
    return _json(value)


def _common_prefix(a: Sequence[Any], b: Sequence[Any]) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [] if value is None else [value]


def _json(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
