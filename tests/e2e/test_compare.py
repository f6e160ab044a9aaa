"""``rewind diff`` and ``rewind bisect`` on real recordings: an agent run twice through the
proxy against the fake provider, with one thing changed between the runs."""

from __future__ import annotations

import textwrap
from typing import Any

from rewind.testing.fake_provider import FakeProvider
from tests.e2e.harness import PYTHON, Rewind

# Two LLM calls around a tool: the tool is local (its result from TOOL_RESULT) unless
# TOOL_URL is set, then fetched over HTTP. The rest of what it sends comes from the
# environment too; [[vary]] makes the fake's answer depend on the model and system prompt.
AGENT = textwrap.dedent(
    """
    import json, os, urllib.request
    env = os.environ.get
    def post(messages):
        body = {"model": env("MODEL", "gpt-4o"), "messages": messages}
        if env("TEMPERATURE"):
            body["temperature"] = float(env("TEMPERATURE"))
        if env("TOOLS"):
            body["tools"] = [{"type": "function", "function": {"name": n, "parameters": {"type": "object"}}}
                             for n in env("TOOLS").split(",")]
        req = urllib.request.Request(env("OPENAI_BASE_URL") + "/chat/completions", json.dumps(body).encode(),
                                     {"Authorization": "Bearer k", "Content-Type": "application/json"})
        return json.load(urllib.request.urlopen(req))["choices"][0]["message"]["content"]
    system = {"role": "system", "content": env("SYSTEM", "You are helpful.")}
    user = {"role": "user", "content": env("QUESTION", "Weather in Paris? [[vary]]")}
    first = post([system, user])
    if env("EXTRA_URL"):
        urllib.request.urlopen(env("EXTRA_URL")).read()
    result = env("TOOL_RESULT", "sunny")
    call = {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{}"}}
    tool = [{"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_1", "content": result}]
    print(first)
    print(post([system, user, *tool]))
    """
)


def record(rw: Rewind, fake: FakeProvider, name: str, **env: str) -> None:
    route = ["--route", f"weather.example={fake.url}"]
    rw.record("--name", name, *route, "--", PYTHON, "-c", AGENT, OPENAI_BASE_URL=f"{fake.url}/v1", **env)


def bisect(rw: Rewind) -> Any:
    return rw.json("bisect", "good", "bad")


def test_changed_system_prompt_is_the_cause(rw: Rewind, fake: FakeProvider) -> None:
    record(rw, fake, "good")
    record(rw, fake, "bad", SYSTEM="You are terse.")
    found = bisect(rw)
    assert found["identical"] is False
    assert found["first_divergence"]["step"] == 1
    assert found["cause"]["kind"] == "system_prompt"
    assert found["cause"]["evidence"][:2] == ["good: 'You are helpful.'", "bad: 'You are terse.'"]
    assert (found["matched"], found["total"]) == (0, 2)
    assert found["later"][0]["propagated"] is True
    text = rw("bisect", "good", "bad").stdout
    assert "Steps matched: 0 / 2" in text and "system_prompt" in text


def test_changed_model_is_the_cause(rw: Rewind, fake: FakeProvider) -> None:
    record(rw, fake, "good")
    record(rw, fake, "bad", MODEL="gpt-4o-mini")
    found = bisect(rw)
    assert found["cause"]["kind"] == "model"
    assert "gpt-4o-mini" in found["cause"]["detail"]


def test_changed_tool_result_is_the_cause(rw: Rewind, fake: FakeProvider) -> None:
    record(rw, fake, "good")
    record(rw, fake, "bad", TOOL_RESULT="raining")
    found = bisect(rw)
    assert found["first_divergence"]["step"] == 2
    assert found["cause"]["kind"] == "tool_result"
    assert found["cause"]["evidence"][:2] == ["good: 'sunny'", "bad: 'raining'"]
    assert (found["matched"], found["total"]) == (1, 2)
    changes = found["first_divergence"]["changes"]
    assert {(c["side"], c["field"]) for c in changes} == {("request", "messages"), ("response", "text")}


def test_changed_user_input_is_the_cause(rw: Rewind, fake: FakeProvider) -> None:
    record(rw, fake, "good")
    record(rw, fake, "bad", QUESTION="Weather in Rome? [[vary]]")
    assert bisect(rw)["cause"]["kind"] == "user_input"


def test_runs_differing_only_in_random_ids_are_identical(rw: Rewind, fake: FakeProvider) -> None:
    record(rw, fake, "good")
    record(rw, fake, "bad")
    found = bisect(rw)
    assert found == {**found, "identical": True, "first_divergence": None, "cause": None}
    assert (found["matched"], found["total"]) == (2, 2)
    assert rw.json("diff", "good", "bad")["identical"] is True
    assert "Identical" in rw("bisect", "good", "bad").stdout


def test_extra_http_call_is_only_in_b_and_later_steps_still_match(rw: Rewind, fake: FakeProvider) -> None:
    record(rw, fake, "good")
    record(rw, fake, "bad", EXTRA_URL="http://weather.example/tools/weather?city=Paris")
    diff = rw.json("diff", "good", "bad")
    assert [(s["status"], s["a"], s["b"]) for s in diff["steps"]] == [
        ("same", 1, 1),
        ("only_b", None, 2),
        ("same", 2, 3),
    ]
    assert diff["counts"] == {"same": 2, "changed": 0, "only_a": 0, "only_b": 1}
    found = bisect(rw)
    assert found["cause"]["kind"] == "step_added"
    table = rw("diff", "good", "bad").stdout
    assert "only in B" in table


def test_diff_shows_text_diffs_of_prompt_and_answer(rw: Rewind, fake: FakeProvider) -> None:
    record(rw, fake, "good")
    record(rw, fake, "bad", SYSTEM="You are terse.")
    step = rw.json("diff", "good", "bad")["steps"][0]
    assert step["status"] == "changed"
    system = next(c for c in step["changes"] if c["field"] == "system")
    assert "-You are helpful." in system["diff"] and "+You are terse." in system["diff"]
    answer = next(c for c in step["changes"] if c["field"] == "text")
    assert any(line.startswith("+") and "terse" in line for line in answer["diff"])


def test_unknown_session_is_a_clear_error(rw: Rewind, fake: FakeProvider) -> None:
    record(rw, fake, "good")
    result = rw("bisect", "good", "nosuch")
    assert result.returncode != 0 and "nosuch" in result.stderr and not result.stdout


def test_changed_sampling_is_the_cause(rw: Rewind, fake: FakeProvider) -> None:
    record(rw, fake, "good", TEMPERATURE="0.2")
    record(rw, fake, "bad", TEMPERATURE="0.9")
    found = bisect(rw)
    assert found["cause"]["kind"] == "sampling" and found["first_divergence"]["step"] == 1
    assert any("0.2" in line for line in found["cause"]["evidence"])
    assert any("0.9" in line for line in found["cause"]["evidence"])


def test_changed_tool_definitions_are_the_cause(rw: Rewind, fake: FakeProvider) -> None:
    question = "Say hello. [[vary]]"  # a text answer: the fake does not call the tools
    record(rw, fake, "good", TOOLS="lookup", QUESTION=question)
    record(rw, fake, "bad", TOOLS="lookup,search", QUESTION=question)
    found = bisect(rw)
    assert found["cause"]["kind"] == "tools"
    assert "search" in " ".join(found["cause"]["evidence"]) + found["cause"]["detail"]


def test_a_new_model_snapshot_behind_the_same_name_is_the_cause(rw: Rewind, fake: FakeProvider) -> None:
    record(rw, fake, "good")
    fake.context.model_versions["gpt-4o"] = "gpt-4o-2099-01-01"
    try:
        record(rw, fake, "bad")
    finally:
        fake.context.model_versions.clear()
    found = bisect(rw)
    assert found["cause"]["kind"] == "model_version"
    assert "gpt-4o-2099-01-01" in found["cause"]["detail"] + " ".join(found["cause"]["evidence"])


def test_the_same_request_answered_differently_is_nondeterminism(rw: Rewind, fake: FakeProvider) -> None:
    question = "Weather in Paris? [[random]]"
    record(rw, fake, "good", QUESTION=question)
    record(rw, fake, "bad", QUESTION=question)
    found = bisect(rw)
    assert found["first_divergence"]["step"] == 1
    assert found["cause"]["kind"] == "nondeterminism"
    # The second call does not resend the first answer: its request is the same, its
    # answer random again, so that divergence is independent, not propagated.
    assert [(d["step"], d["propagated"]) for d in found["later"]] == [(2, False)]


def test_a_call_the_bad_run_no_longer_makes_is_only_in_a(rw: Rewind, fake: FakeProvider) -> None:
    record(rw, fake, "good", EXTRA_URL="http://weather.example/tools/weather?city=Paris")
    record(rw, fake, "bad")
    diff = rw.json("diff", "good", "bad")
    assert [(s["status"], s["a"], s["b"]) for s in diff["steps"]] == [
        ("same", 1, 1),
        ("only_a", 2, None),
        ("same", 3, 2),
    ]
    found = bisect(rw)
    assert found["cause"]["kind"] == "step_removed" and (found["matched"], found["total"]) == (2, 3)
