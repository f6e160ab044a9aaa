"""Bisecting two runs: the first divergence and its cause, from real request bodies."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest

from rewind.analysis import cause as cause_module
from rewind.analysis.align import StepView, align
from rewind.analysis.cause import Bisection, CauseKind, bisect
from rewind.canon.fingerprint import canonical_request, describe_parts, fingerprint_of

OPENAI = "https://api.openai.com/v1/chat/completions"
RESPONSES = "https://api.openai.com/v1/responses"
ANTHROPIC = "https://api.anthropic.com/v1/messages"
GEMINI = "https://generativelanguage.googleapis.com/v1beta/models/{model}:generateContent"
WEATHER = "https://api.weather.example/v1/now?city=London"
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


# --- request bodies as each provider's SDK sends them ---------------------------------------


def openai_chat(
    *,
    system: str = "You are helpful.",
    user: str = "Weather in London?",
    result: str | None = None,
    model: str = "gpt-4o",
    tools: tuple[str, ...] = ("get_weather",),
    temperature: float | None = None,
    **params: Any,
) -> tuple[str, dict[str, Any]]:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": system},
        {"role": "user", "content": user},
    ]
    if result is not None:
        call = {"id": "call_abc", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
        messages += [
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_abc", "content": result},
        ]
    body = {
        "model": model,
        "messages": messages,
        "tools": [{"type": "function", "function": {"name": n, "parameters": SCHEMA}} for n in tools],
        **_temperature(temperature),
        **params,
    }
    return OPENAI, body


def openai_responses(
    *,
    system: str = "You are helpful.",
    user: str = "Weather in London?",
    result: str | None = None,
    model: str = "gpt-4o",
    tools: tuple[str, ...] = ("get_weather",),
    temperature: float | None = None,
    **params: Any,
) -> tuple[str, dict[str, Any]]:
    items: list[dict[str, Any]] = [{"role": "user", "content": user}]
    if result is not None:
        items += [
            {"type": "function_call", "call_id": "call_abc", "name": "get_weather", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_abc", "output": result},
        ]
    body = {
        "model": model,
        "instructions": system,
        "input": items,
        "tools": [{"type": "function", "name": n, "parameters": SCHEMA} for n in tools],
        **_temperature(temperature),
        **params,
    }
    return RESPONSES, body


def anthropic(
    *,
    system: str = "You are helpful.",
    user: str = "Weather in London?",
    result: str | None = None,
    model: str = "claude-sonnet-4-5",
    tools: tuple[str, ...] = ("get_weather",),
    temperature: float | None = None,
    **params: Any,
) -> tuple[str, dict[str, Any]]:
    messages: list[dict[str, Any]] = [{"role": "user", "content": user}]
    if result is not None:
        use = {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "London"}}
        answer = {"type": "tool_result", "tool_use_id": "toolu_01", "content": result}
        messages += [{"role": "assistant", "content": [use]}, {"role": "user", "content": [answer]}]
    body = {
        "model": model,
        "max_tokens": 1024,
        "system": system,
        "messages": messages,
        "tools": [{"name": n, "description": "Tool", "input_schema": SCHEMA} for n in tools],
        **_temperature(temperature),
        **params,
    }
    return ANTHROPIC, body


def gemini(
    *,
    system: str = "You are helpful.",
    user: str = "Weather in London?",
    result: str | None = None,
    model: str = "gemini-2.5-flash",
    tools: tuple[str, ...] = ("get_weather",),
    temperature: float | None = None,
    **params: Any,
) -> tuple[str, dict[str, Any]]:
    contents: list[dict[str, Any]] = [{"role": "user", "parts": [{"text": user}]}]
    if result is not None:
        call = {"functionCall": {"name": "get_weather", "args": {"city": "London"}}}
        answer = {"functionResponse": {"name": "get_weather", "response": {"result": result}}}
        contents += [{"role": "model", "parts": [call]}, {"role": "user", "parts": [answer]}]
    config = {"maxOutputTokens": 1024, **_temperature(temperature)}
    body = {
        "systemInstruction": {"parts": [{"text": system}]},
        "contents": contents,
        "tools": [{"functionDeclarations": [{"name": n, "parameters": SCHEMA} for n in tools]}],
        "generationConfig": config,
        **params,
    }
    return GEMINI.format(model=model), body


def _temperature(value: float | None) -> dict[str, Any]:
    return {} if value is None else {"temperature": value}


Builder = Callable[..., tuple[str, dict[str, Any]]]
PROVIDERS: dict[str, Builder] = {
    "openai": openai_chat,
    "responses": openai_responses,
    "anthropic": anthropic,
    "gemini": gemini,
}
SAMPLING_NAME = {
    "openai": "temperature",
    "responses": "temperature",
    "anthropic": "temperature",
    "gemini": "generationConfig.temperature",
}


# --- recorded runs --------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    url: str
    body: dict[str, Any] | None
    meaning: str
    method: str = "POST"
    kind: str = "llm"
    reported: str | None = None


def llm(request: tuple[str, dict[str, Any]], meaning: str, reported: str | None = None) -> Call:
    return Call(request[0], request[1], f"m1:{meaning}", reported=reported)


def http(url: str, meaning: str) -> Call:
    return Call(url, None, f"m1:{meaning}", method="GET", kind="http")


class Recorder:
    """Runs built from real request bodies, and their parts as the caller would load them."""

    def __init__(self) -> None:
        self.described: dict[StepView, dict[str, Any]] = {}
        self.loaded: list[StepView] = []

    def run(self, *calls: Call) -> list[StepView]:
        return [self._step(n, call) for n, call in enumerate(calls, start=1)]

    def _step(self, n: int, call: Call) -> StepView:
        body = json.dumps(call.body).encode() if call.body is not None else b""
        headers = (("content-type", "application/json"),) if call.body is not None else ()
        canonical = canonical_request(call.method, call.url, headers, body, None)
        parts = describe_parts(canonical)
        where = urlsplit(call.url)
        view = StepView(
            step=n,
            kind=call.kind,
            method=call.method,
            endpoint=f"{call.method} {where.netloc}{where.path}",
            fingerprint=fingerprint_of(canonical),
            meaning=call.meaning,
            model=parts["model"],
            reported_model=call.reported,
        )
        self.described[view] = parts
        return view

    def parts(self, step: StepView) -> Mapping[str, Any]:
        self.loaded.append(step)
        return self.described[step]

    def bisect(self, good: list[StepView], bad: list[StepView]) -> Bisection:
        return bisect(align(good, bad), self.parts)


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


def two_turns(build: Builder, meaning: str = "answer", **changes: Any) -> tuple[Call, Call]:
    """An agent's weather question: a tool call, then an answer from the tool's result."""
    return (
        llm(build(**changes), "call get_weather"),
        llm(build(result="18C", **changes), meaning),
    )


def test_public_names() -> None:
    assert cause_module.__all__ == [
        "PREVIEW_CHARS",
        "Bisection",
        "Cause",
        "CauseKind",
        "Divergence",
        "bisect",
    ]


# --- one cause per kind, for every provider shape -------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_system_prompt(rec: Recorder, provider: str) -> None:
    build = PROVIDERS[provider]
    good = rec.run(*two_turns(build))
    bad = rec.run(llm(build(system="You are terse."), "call get_time"), llm(build(result="18C"), "x"))
    found = rec.bisect(good, bad)
    assert found.first is not None and found.first.pair.a == good[0]
    assert found.cause is not None and found.cause.kind is CauseKind.SYSTEM_PROMPT
    assert found.cause.detail == "the system prompt changed"
    assert found.cause.evidence == ["good: 'You are helpful.'", "bad: 'You are terse.'"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_model(rec: Recorder, provider: str) -> None:
    build = PROVIDERS[provider]
    good = rec.run(*two_turns(build, model="model-large"))
    bad = rec.run(*two_turns(build, "other answer", model="model-small"))
    found = rec.bisect(good, bad)
    assert found.cause is not None and found.cause.kind is CauseKind.MODEL
    assert found.cause.detail == "the requested model changed: 'model-large' in good, 'model-small' in bad"
    assert not any("endpoint" in line for line in found.cause.evidence)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_sampling(rec: Recorder, provider: str) -> None:
    build = PROVIDERS[provider]
    good = rec.run(*two_turns(build, temperature=0.2))
    bad = rec.run(*two_turns(build, "other answer", temperature=0.9))
    found = rec.bisect(good, bad)
    name = SAMPLING_NAME[provider]
    assert found.cause is not None and found.cause.kind is CauseKind.SAMPLING
    assert found.cause.detail == f"sampling parameters changed: {name}"
    assert found.cause.evidence == [f"good: '{name}=0.2'", f"bad: '{name}=0.9'"]
    assert found.first is not None and found.first.pair.a == good[1]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_tools(rec: Recorder, provider: str) -> None:
    build = PROVIDERS[provider]
    good = rec.run(*two_turns(build))
    bad = rec.run(*two_turns(build, "other answer", tools=("get_time", "get_weather")))
    found = rec.bisect(good, bad)
    assert found.cause is not None and found.cause.kind is CauseKind.TOOLS
    assert found.cause.detail == "the tools or tool settings changed: added get_time"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_tool_result(rec: Recorder, provider: str) -> None:
    build = PROVIDERS[provider]
    good = rec.run(*two_turns(build))
    bad = rec.run(llm(build(), "call get_weather"), llm(build(result="25C"), "hot"))
    found = rec.bisect(good, bad)
    assert found.first is not None and found.first.pair.a == good[1]
    assert found.cause is not None and found.cause.kind is CauseKind.TOOL_RESULT
    assert found.cause.detail.startswith("a tool result sent to the model changed: messages[")
    good_line, bad_line = found.cause.evidence[:2]
    assert "18C" in good_line and "25C" in bad_line


@pytest.mark.parametrize("provider", PROVIDERS)
def test_user_input(rec: Recorder, provider: str) -> None:
    build = PROVIDERS[provider]
    good = rec.run(*two_turns(build))
    bad = rec.run(*two_turns(build, "other answer", user="Weather in Paris?"))
    found = rec.bisect(good, bad)
    assert found.cause is not None and found.cause.kind is CauseKind.USER_INPUT
    assert found.cause.evidence == ["good: 'Weather in London?'", "bad: 'Weather in Paris?'"]


def test_model_version_with_the_same_request(rec: Recorder) -> None:
    good = rec.run(llm(openai_chat(), "sunny", reported="gpt-4o-2024-08-06"))
    bad = rec.run(llm(openai_chat(), "cloudy", reported="gpt-4o-2024-11-20"))
    found = rec.bisect(good, bad)
    assert found.cause is not None and found.cause.kind is CauseKind.MODEL_VERSION
    assert found.cause.detail == (
        "the same model was requested, but the provider reported "
        "'gpt-4o-2024-08-06' in good and 'gpt-4o-2024-11-20' in bad"
    )
    assert found.cause.evidence[-1] == f"request: identical ({good[0].fingerprint})"


def test_model_version_ranks_above_a_changed_prompt(rec: Recorder) -> None:
    good = rec.run(llm(openai_chat(), "sunny", reported="gpt-4o-2024-08-06"))
    bad = rec.run(llm(openai_chat(system="Be brief."), "cloudy", reported="gpt-4o-2024-11-20"))
    found = rec.bisect(good, bad)
    assert found.cause is not None and found.cause.kind is CauseKind.MODEL_VERSION
    assert any(line.startswith("also system prompt: good ") for line in found.cause.evidence)


def test_nondeterminism(rec: Recorder) -> None:
    good = rec.run(llm(anthropic(), "sunny", reported="claude-sonnet-4-5-20250929"))
    bad = rec.run(llm(anthropic(), "cloudy", reported="claude-sonnet-4-5-20250929"))
    found = rec.bisect(good, bad)
    assert found.cause is not None and found.cause.kind is CauseKind.NONDETERMINISM
    assert found.cause.evidence == [
        f"request: identical ({good[0].fingerprint})",
        "good response: m1:sunny",
        "bad response: m1:cloudy",
    ]


def test_external(rec: Recorder) -> None:
    first = llm(openai_chat(), "call get_weather")
    good = rec.run(first, http(WEATHER, "18C"), llm(openai_chat(result="18C"), "mild"))
    bad = rec.run(first, http(WEATHER, "25C"), llm(openai_chat(result="25C"), "hot"))
    found = rec.bisect(good, bad)
    assert found.first is not None and found.first.pair.a == good[1]
    assert found.cause is not None and found.cause.kind is CauseKind.EXTERNAL
    assert "GET api.weather.example/v1/now" in found.cause.detail
    assert [(d.pair.a, d.propagated) for d in found.later] == [(good[2], True)]


def test_endpoint(rec: Recorder) -> None:
    good = rec.run(llm(openai_chat(), "sunny"))
    bad = rec.run(llm(openai_responses(), "cloudy"))
    found = rec.bisect(good, bad)
    assert found.cause is not None and found.cause.kind is CauseKind.ENDPOINT
    assert found.cause.evidence[:2] == [
        "good: 'POST api.openai.com/v1/chat/completions'",
        "bad: 'POST api.openai.com/v1/responses'",
    ]


def test_step_added(rec: Recorder) -> None:
    good = rec.run(*two_turns(openai_chat))
    bad = rec.run(
        llm(openai_chat(), "call get_weather"),
        http(WEATHER, "18C"),
        llm(openai_chat(result="18C"), "answer"),
    )
    found = rec.bisect(good, bad)
    assert found.cause is not None and found.cause.kind is CauseKind.STEP_ADDED
    assert found.first is not None and found.first.to_json()["step"] == 2
    assert found.cause.detail == (
        "the bad run makes a call the good run does not: step 2 GET api.weather.example/v1/now"
    )
    assert found.later == []
    assert (found.matched, found.total) == (2, 3)


def test_step_added_as_a_retry(rec: Recorder) -> None:
    good = rec.run(*two_turns(openai_chat))
    bad = rec.run(
        llm(openai_chat(), "call get_weather"),
        llm(openai_chat(result="18C"), "error rate_limit_exceeded"),
        llm(openai_chat(result="18C"), "answer"),
    )
    found = rec.bisect(good, bad)
    assert found.cause is not None and found.cause.kind is CauseKind.STEP_ADDED
    assert found.cause.detail.endswith("(a retry: the same request as its step 3)")


def test_step_removed(rec: Recorder) -> None:
    good = rec.run(
        llm(openai_chat(), "call get_weather"),
        http(WEATHER, "18C"),
        llm(openai_chat(result="18C"), "answer"),
    )
    bad = rec.run(*two_turns(openai_chat))
    found = rec.bisect(good, bad)
    assert found.cause is not None and found.cause.kind is CauseKind.STEP_REMOVED
    assert found.cause.evidence == ["good: step 2 GET api.weather.example/v1/now", "bad: (no call)"]
    assert found.to_json()["first_divergence"]["bad"] is None


def test_other_parameter(rec: Recorder) -> None:
    good = rec.run(llm(openai_chat(), "sunny"))
    bad = rec.run(llm(openai_chat(response_format={"type": "json_object"}), "{}"))
    found = rec.bisect(good, bad)
    assert found.cause is not None and found.cause.kind is CauseKind.OTHER
    assert found.cause.detail == "the request changed: response_format"


def test_tool_choice_counts_as_tools(rec: Recorder) -> None:
    good = rec.run(llm(anthropic(), "sunny"))
    bad = rec.run(llm(anthropic(tool_choice={"type": "any"}), "call get_weather"))
    found = rec.bisect(good, bad)
    assert found.cause is not None and found.cause.kind is CauseKind.TOOLS
    assert found.cause.detail == "the tools or tool settings changed: tool_choice"


def test_reasoning_effort_counts_as_sampling(rec: Recorder) -> None:
    good = rec.run(llm(openai_responses(reasoning={"effort": "low"}), "short"))
    bad = rec.run(llm(openai_responses(reasoning={"effort": "high"}), "long"))
    found = rec.bisect(good, bad)
    assert found.cause is not None and found.cause.kind is CauseKind.SAMPLING
    assert found.cause.evidence == ["good: 'reasoning.effort=low'", "bad: 'reasoning.effort=high'"]


def test_edited_history_is_other(rec: Recorder) -> None:
    _, body = openai_chat(result="18C")
    edited = json.loads(json.dumps(body))
    edited["messages"][2]["content"] = "Let me check."
    good = rec.run(llm((OPENAI, body), "mild"))
    bad = rec.run(llm((OPENAI, edited), "hot"))
    found = rec.bisect(good, bad)
    assert found.cause is not None and found.cause.kind is CauseKind.OTHER
    assert found.cause.detail == "the request changed: messages[1] (assistant)"


def test_a_changed_http_request_is_other(rec: Recorder) -> None:
    good = rec.run(http(WEATHER, "18C"))
    bad = rec.run(http(WEATHER.replace("London", "Paris"), "25C"))
    found = rec.bisect(good, bad)
    assert found.cause is not None and found.cause.kind is CauseKind.OTHER
    assert found.cause.detail == "the request changed: query"


# --- priorities and evidence ---------------------------------------------------------------


def test_several_differences_rank_and_the_rest_are_listed(rec: Recorder) -> None:
    good = rec.run(llm(openai_chat(temperature=0.2), "sunny"))
    changes: dict[str, Any] = {"system": "You are terse.", "temperature": 0.9, "user": "Weather in Paris?"}
    bad = rec.run(llm(openai_chat(**changes), "cloudy"))
    found = rec.bisect(good, bad)
    assert found.cause is not None and found.cause.kind is CauseKind.SYSTEM_PROMPT
    assert found.cause.evidence == [
        "good: 'You are helpful.'",
        "bad: 'You are terse.'",
        "also sampling parameters temperature: good 'temperature=0.2' vs bad 'temperature=0.9'",
        "also user message messages[0] (user): good 'Weather in London?' vs bad 'Weather in Paris?'",
    ]


def test_model_ranks_first(rec: Recorder) -> None:
    good = rec.run(llm(anthropic(), "sunny"))
    bad = rec.run(llm(anthropic(model="claude-haiku-4-5", system="Be brief.", tools=()), "cloudy"))
    found = rec.bisect(good, bad)
    assert found.cause is not None and found.cause.kind is CauseKind.MODEL
    assert [line.split(":")[0] for line in found.cause.evidence[2:]] == [
        "also system prompt",
        "also tools removed get_weather",
    ]


def test_a_tool_result_names_the_earlier_http_call(rec: Recorder) -> None:
    """The weather call was made differently (a time parameter) and answered the same;
    the agent passed the raw body, timestamp included, to the model."""
    first = llm(openai_chat(), "call get_weather")
    good = rec.run(first, http(WEATHER + "&t=1", "18C"), llm(openai_chat(result="18C at 1"), "mild"))
    bad = rec.run(first, http(WEATHER + "&t=2", "18C"), llm(openai_chat(result="18C at 2"), "warm"))
    found = rec.bisect(good, bad)
    assert found.cause is not None and found.cause.kind is CauseKind.TOOL_RESULT
    assert found.cause.detail == (
        "a tool result sent to the model changed: messages[2] (tool); "
        "earlier http step 2 (GET api.weather.example/v1/now) changed and propagated"
    )


def test_an_earlier_changed_request_is_evidence(rec: Recorder) -> None:
    good = rec.run(llm(openai_chat(temperature=0.2), "sunny"), llm(openai_chat(result="18C"), "mild"))
    bad = rec.run(llm(openai_chat(temperature=0.9), "sunny"), llm(openai_chat(result="18C"), "warm"))
    found = rec.bisect(good, bad)
    assert found.cause is not None and found.cause.kind is CauseKind.NONDETERMINISM
    assert found.cause.evidence[-1] == (
        "earlier step 1: sampling parameters temperature: good 'temperature=0.2' vs bad 'temperature=0.9'"
    )


def test_long_text_is_cut_around_the_difference(rec: Recorder) -> None:
    prompt = "You are a careful assistant. " * 40
    good = rec.run(llm(openai_chat(system=prompt + "Answer in English."), "sunny"))
    bad = rec.run(llm(openai_chat(system=prompt + "Answer in French."), "ensoleillé"))
    found = rec.bisect(good, bad)
    assert found.cause is not None
    good_line, bad_line = found.cause.evidence
    assert good_line.startswith("good: …'") and good_line.endswith("Answer in English.'")
    assert bad_line.endswith("Answer in French.'")
    assert len(good_line) <= len("good: …''…") + cause_module.PREVIEW_CHARS


def test_evidence_escapes_control_characters(rec: Recorder) -> None:
    good = rec.run(llm(openai_chat(system="plain"), "a"))
    bad = rec.run(llm(openai_chat(system="\x1b[31mred\x1b[0m\nnext"), "b"))
    found = rec.bisect(good, bad)
    assert found.cause is not None
    assert found.cause.evidence[1] == "bad: '\\x1b[31mred\\x1b[0m\\nnext'"
    assert "\x1b" not in json.dumps(found.to_json(), ensure_ascii=False).replace("\\u001b", "")


# --- the bisection as a whole --------------------------------------------------------------


def test_identical_runs(rec: Recorder) -> None:
    good = rec.run(*two_turns(anthropic))
    found = rec.bisect(good, rec.run(*two_turns(anthropic)))
    assert found.to_json() == {
        "identical": True,
        "first_divergence": None,
        "cause": None,
        "matched": 2,
        "total": 2,
        "later": [],
    }
    assert rec.loaded == []


def test_changed_requests_with_the_same_answers_are_not_identical(rec: Recorder) -> None:
    good = rec.run(*two_turns(gemini))
    found = rec.bisect(good, rec.run(*two_turns(gemini, temperature=0.1)))
    assert (found.identical, found.first, found.cause, found.matched, found.total) == (
        False,
        None,
        None,
        2,
        2,
    )


def test_later_divergences_are_propagated_or_independent(rec: Recorder) -> None:
    first = llm(openai_chat(), "call get_weather")
    good = rec.run(first, http(WEATHER, "18C"), llm(openai_chat(result="18C"), "mild"), http(WEATHER, "fine"))
    bad = rec.run(first, http(WEATHER, "25C"), llm(openai_chat(result="25C"), "hot"), http(WEATHER, "storm"))
    found = rec.bisect(good, bad)
    assert [(d.index, d.propagated) for d in found.later] == [(2, True), (3, False)]
    assert [item["propagated"] for item in found.to_json()["later"]] == [True, False]
    assert (found.matched, found.total) == (1, 4)


def test_json_contract(rec: Recorder) -> None:
    good = rec.run(*two_turns(openai_chat))
    paris: dict[str, Any] = {"user": "Weather in Paris?"}
    bad = rec.run(llm(openai_chat(**paris), "call get_time"), llm(openai_chat(result="18C", **paris), "x"))
    found = rec.bisect(good, bad).to_json(lambda step: {"preview": f"step {step.step}"})
    assert set(found) == {"identical", "first_divergence", "cause", "matched", "total", "later"}
    first = found["first_divergence"]
    assert (first["step"], first["kind"]) == (1, "llm")
    assert first["good"] == {
        "step": 1,
        "endpoint": "POST api.openai.com/v1/chat/completions",
        "model": "gpt-4o",
        "reported_model": None,
        "fingerprint": good[0].fingerprint,
        "meaning": "m1:call get_weather",
        "preview": "step 1",
    }
    assert first["bad"]["meaning"] == "m1:call get_time"
    assert found["cause"]["kind"] == "user_input"
    assert found["later"] == [
        {
            "step": 2,
            "kind": "llm",
            "good": {**first["good"], **_changes(good[1], "step 2")},
            "bad": {**first["bad"], **_changes(bad[1], "step 2")},
            "propagated": True,
        }
    ]
    json.dumps(found)


def _changes(step: StepView, preview: str) -> dict[str, Any]:
    return {"step": step.step, "fingerprint": step.fingerprint, "meaning": step.meaning, "preview": preview}


def test_first_divergence_names_the_good_step(rec: Recorder) -> None:
    """When the runs have drifted apart, the first divergence's step is the good run's."""
    good = rec.run(http(WEATHER, "a"), http(WEATHER, "b"), llm(openai_chat(), "x"))
    bad = rec.run(http(WEATHER, "b"), llm(openai_chat(), "y"))
    found = rec.bisect(good, bad).to_json()
    assert found["first_divergence"]["step"] == 1
    assert found["first_divergence"]["bad"] is None


def test_parts_are_loaded_only_for_the_steps_that_explain(rec: Recorder) -> None:
    calls = [llm(openai_chat(user=f"question {i}"), f"answer {i}") for i in range(50)]
    changed = [
        llm(openai_chat(user=f"question {i}", temperature=0.5 if i == 10 else None), f"answer {i}")
        for i in range(50)
    ]
    changed[40] = llm(openai_chat(user="question 40", system="Be brief."), "short")
    good, bad = rec.run(*calls), rec.run(*changed)
    found = rec.bisect(good, bad)
    assert found.cause is not None and found.cause.kind is CauseKind.SYSTEM_PROMPT
    assert sorted(step.step for step in rec.loaded) == [11, 11, 41, 41]
