"""``rewind branch`` checks, before anything runs: where a run can fork, what it may do
there, how a fault-injection run is classified, and the result's JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rewind.capture.runner import CommandResult
from rewind.cli.branching import BranchRequest, BranchResult, Outcome, classify, fork_spec, fork_target
from rewind.cli.run import RecordOutcome, Tally
from rewind.errors import ConfigError
from rewind.replay.faults import Serve
from rewind.replay.forking import ForkSpec
from rewind.store.models import StepRecord
from tests.unit.cli.conftest import session_info as parent
from tests.unit.replay.factories import make_step

JSON_HEADERS = (("content-type", "application/json"),)
REQUEST = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
COMPLETION = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "model": "gpt-4o-mini",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello"}, "finish_reason": "stop"}],
}
EDITED = {
    **COMPLETION,
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Bye"}, "finish_reason": "stop"}],
}
TELEMETRY_URL = "https://api.smith.langchain.com/runs/batch"


def llm_step(step: int, **fields: Any) -> StepRecord:
    return make_step(step, f"v1:{step}", response_headers=JSON_HEADERS, reason="OK", **fields)


def blobs(
    *steps: StepRecord, request: bytes | None = None, response: bytes | None = None
) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for s in steps:
        out[s.request_sha] = json.dumps(REQUEST).encode() if request is None else request
        if s.response_sha:
            out[s.response_sha] = json.dumps(COMPLETION).encode() if response is None else response
    return out


def recording() -> list[StepRecord]:
    """Steps 1-3 and 5 answered; 4 a telemetry upload; 6 interrupted; 7 a WebSocket; 8 a
    refused connection."""
    return [
        llm_step(1),
        llm_step(2),
        llm_step(3),
        make_step(4, "v1:t", kind="telemetry", url=TELEMETRY_URL, provider=None),
        llm_step(5),
        make_step(6, "v1:6", status=None, response_sha=None),
        make_step(
            7, "v1:7", kind="websocket", method="GET", status=101, url="wss://api.openai.com/v1/realtime"
        ),
        make_step(8, "v1:8", status=None, error="connection refused", response_sha=None),
    ]


def request(at: int = 1, **fields: Any) -> BranchRequest:
    return BranchRequest(ref="s-parent", at=at, environ={}, **fields)


def refusal(caught: pytest.ExceptionInfo[ConfigError]) -> tuple[str, str | None]:
    return str(caught.value), caught.value.hint


# --- fork_target ------------------------------------------------------------------------------


def test_fork_target_is_the_recorded_step() -> None:
    steps = recording()
    assert fork_target(steps, 5, parent()) is steps[4]


@pytest.mark.parametrize("at", [1, 7, 8])
def test_a_websocket_or_a_failed_step_can_be_forked_at(at: int) -> None:
    assert fork_target(recording(), at, parent()).step == at


@pytest.mark.parametrize("at", [0, 9])
def test_no_such_step_names_the_steps_one_can_fork_at(at: int) -> None:
    with pytest.raises(ConfigError) as caught:
        fork_target(recording(), at, parent())
    assert refusal(caught) == (
        f"session s-parent has no step {at} (it has steps 1 to 8)",
        "steps a run can fork at: 1-3, 5, 7-8; `rewind inspect s-parent` lists them",
    )


def test_a_telemetry_step_cannot_be_forked_at() -> None:
    with pytest.raises(ConfigError) as caught:
        fork_target(recording(), 4, parent())
    assert refusal(caught) == (
        "step 4 is a telemetry upload, which replay always answers itself",
        "fork at a call the agent reads: 1-3, 5, 7-8",
    )


def test_a_step_never_answered_cannot_be_forked_at() -> None:
    with pytest.raises(ConfigError) as caught:
        fork_target(recording(), 6, parent())
    assert refusal(caught) == (
        "step 6 was never answered (the recording was interrupted there)",
        "fork at an answered step: 1-3, 5, 7-8",
    )


def test_a_session_without_forkable_steps_says_none() -> None:
    with pytest.raises(ConfigError) as caught:
        fork_target([make_step(1, status=None, response_sha=None)], 1, parent())
    assert refusal(caught)[1] == "fork at an answered step: none"


def test_a_session_without_steps_says_so() -> None:
    with pytest.raises(ConfigError) as caught:
        fork_target([], 1, parent())
    assert "1 to 0" not in str(caught.value)


# --- fork_spec --------------------------------------------------------------------------------


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    response = tmp_path / "response.json"
    response.write_text(json.dumps(EDITED))
    patch = tmp_path / "patch.json"
    patch.write_text(json.dumps({"model": "gpt-4o", "temperature": None}))
    return {"response": response, "patch": patch}


@pytest.mark.parametrize(
    ("given", "named"),
    [
        (("response", "request_patch"), "--response and --request-patch"),
        (("response", "fault"), "--response and --fault"),
        (("request_patch", "fault"), "--request-patch and --fault"),
        (("response", "request_patch", "fault"), "--response and --request-patch and --fault"),
    ],
)
def test_options_that_change_the_step_cannot_be_combined(
    files: dict[str, Path], given: tuple[str, ...], named: str
) -> None:
    values: dict[str, Any] = {"response": files["response"], "request_patch": files["patch"], "fault": "429"}
    step = llm_step(1)
    with pytest.raises(ConfigError) as caught:
        fork_spec(request(**{name: values[name] for name in given}), step, blobs(step))
    assert str(caught.value) == f"{named} cannot be combined: a step is either answered, patched or faulted"


@pytest.mark.parametrize("other", [{}, {"fault": "500"}])
def test_status_without_response_is_refused(other: dict[str, Any]) -> None:
    step = llm_step(1)
    with pytest.raises(ConfigError, match=r"^--status goes with --response FILE"):
        fork_spec(request(status=429, **other), step, blobs(step))


def test_nothing_given_lets_the_step_go_live() -> None:
    step = llm_step(3)
    assert fork_spec(request(3), step, blobs(step)) == ForkSpec(3)


def test_a_response_is_checked_and_served_with_the_status_given(files: dict[str, Path]) -> None:
    step = llm_step(2)
    spec = fork_spec(request(2, response=files["response"]), step, blobs(step))
    assert spec.at == 2 and spec.patch is None and spec.fault is None
    assert isinstance(spec.response, Serve)
    assert (spec.response.status, spec.response.body) == (200, files["response"].read_bytes())
    error = files["response"].with_name("error.json")
    error.write_text(json.dumps({"error": {"message": "slow down", "type": "requests", "code": "429"}}))
    limited = fork_spec(request(2, response=error, status=429), step, blobs(step)).response
    assert limited is not None and (limited.status, limited.reason) == (429, "Too Many Requests")


def test_a_response_the_client_could_not_read_is_refused(tmp_path: Path) -> None:
    step = llm_step(1)
    wrong = tmp_path / "wrong.json"
    wrong.write_text('{"answer": "Bye"}')
    with pytest.raises(ConfigError, match="is not a openai response that step 1's client could read"):
        fork_spec(request(response=wrong), step, blobs(step))


def test_a_missing_response_file_is_refused(tmp_path: Path) -> None:
    step = llm_step(1)
    with pytest.raises(ConfigError, match=r"^--response .*missing\.json: No such file"):
        fork_spec(request(response=tmp_path / "missing.json"), step, blobs(step))


@pytest.mark.parametrize(
    ("at", "why"),
    [(7, "it is a WebSocket conversation"), (8, r"its upstream never answered \(connection refused\)")],
)
def test_a_websocket_or_failed_step_takes_no_response(files: dict[str, Path], at: int, why: str) -> None:
    step = recording()[at - 1]
    with pytest.raises(ConfigError, match=f"^--response cannot change step {at}: {why}") as caught:
        fork_spec(request(at, response=files["response"]), step, blobs(step))
    assert caught.value.hint is not None and "branch there without it" in caught.value.hint


def test_a_request_patch_is_applied_to_the_live_request(files: dict[str, Path]) -> None:
    step = llm_step(2)
    spec = fork_spec(request(2, request_patch=files["patch"]), step, blobs(step))
    assert spec.at == 2 and spec.patch is not None and spec.response is None
    live = json.dumps({**REQUEST, "temperature": 0.5, "messages": []}).encode()
    assert json.loads(spec.patch(live)) == {"model": "gpt-4o", "messages": []}


def test_a_request_patch_for_a_non_json_request_is_refused_before_the_run(files: dict[str, Path]) -> None:
    step = llm_step(2)
    with pytest.raises(ConfigError) as caught:
        fork_spec(request(2, request_patch=files["patch"]), step, blobs(step, request=b"model=gpt-4o"))
    assert refusal(caught) == (
        "step 2's request body is not JSON, so --request-patch cannot apply",
        "--request-patch edits JSON requests; branch at a step whose request is JSON",
    )


def test_a_request_patch_that_is_not_json_is_refused(tmp_path: Path) -> None:
    step = llm_step(1)
    bad = tmp_path / "patch.json"
    bad.write_text('{"model": }')
    with pytest.raises(ConfigError, match=r"^--request-patch .*patch\.json is not valid JSON: .* at line 1"):
        fork_spec(request(request_patch=bad), step, blobs(step))


def test_a_fault_that_applies_is_kept_with_its_retry_after() -> None:
    step = llm_step(5)
    assert fork_spec(request(5, fault="429", retry_after_s=7), step, blobs(step)) == ForkSpec(
        5, fault="429", retry_after_s=7
    )


@pytest.mark.parametrize(
    ("fault", "response", "why"),
    [
        ("truncate", b"", "the response body is empty"),
        ("empty", b"", "the response body is empty"),
        ("bad_tool_args", json.dumps(COMPLETION).encode(), "the response has no tool call"),
    ],
)
def test_a_fault_that_does_not_apply_is_refused(fault: str, response: bytes, why: str) -> None:
    step = llm_step(3)
    with pytest.raises(ConfigError) as caught:
        fork_spec(request(3, fault=fault), step, blobs(step, response=response))
    assert str(caught.value) == f"fault {fault!r} does not apply to step 3: {why}"


@pytest.mark.parametrize("at", [7, 8])
def test_a_websocket_or_failed_step_takes_no_fault(at: int) -> None:
    step = recording()[at - 1]
    with pytest.raises(ConfigError, match=f"^--fault 500 cannot change step {at}"):
        fork_spec(request(at, fault="500"), step, blobs(step))


# --- classify ---------------------------------------------------------------------------------


def ran(exit_code: int = 0, timed_out: bool = False) -> CommandResult:
    return CommandResult(exit_code, b"out\n", b"", 1_000.0, 1_002.0, timed_out)


@pytest.mark.parametrize(
    ("result", "missed", "same", "outcome"),
    [
        (ran(143, timed_out=True), True, False, Outcome.HUNG),
        (ran(0, timed_out=True), False, True, Outcome.HUNG),
        (ran(1), True, False, Outcome.DIVERGED),
        (ran(0), True, True, Outcome.DIVERGED),
        (ran(1), False, True, Outcome.FAILED),
        (ran(0), False, True, Outcome.SURVIVED),
        (ran(0), False, False, Outcome.RECOVERED),
    ],
)
def test_classify_picks_the_most_telling_outcome(
    result: CommandResult, missed: bool, same: bool, outcome: Outcome
) -> None:
    assert classify(result, missed, same) is outcome


def test_outcomes_are_the_words_mutate_prints() -> None:
    assert [o.value for o in Outcome] == ["survived", "recovered", "failed", "hung", "diverged"]


# --- BranchResult -----------------------------------------------------------------------------


def branch_result(spec: ForkSpec, **fields: Any) -> BranchResult:
    tally = Tally()
    tally.steps = 4
    outcome = RecordOutcome("s-child", ran(143, timed_out=True), tally, [])
    defaults: dict[str, Any] = {"fork_request": 3, "early": [], "live_calls": 0, "served": 2}
    return BranchResult(parent=parent(), outcome=outcome, spec=spec, **{**defaults, **fields})


def test_a_fault_run_as_json() -> None:
    result = branch_result(
        ForkSpec(3, fault="timeout"), misses=["no recorded response for POST x"], classified=Outcome.HUNG
    )
    assert result.session_id == "s-child"
    assert result.to_json() == {
        "session": "s-child",
        "parent": "s-parent",
        "fork_step": 3,
        "fault": "timeout",
        "outcome": "hung",
        "fault_served": True,
        "forked_at_request": 3,
        "forked_early": False,
        "replayed": 2,
        "live_calls": 0,
        "misses": ["no recorded response for POST x"],
        "exit_code": 143,
        "timed_out": True,
        "output_identical": True,
        "patch_error": None,
        "steps": 4,
    }


def test_a_fault_never_reached_is_not_served() -> None:
    doc = branch_result(ForkSpec(3, fault="500"), fork_request=None, classified=Outcome.SURVIVED).to_json()
    assert (doc["fault_served"], doc["forked_at_request"], doc["outcome"]) == (False, None, "survived")


def test_a_branch_as_json_has_no_outcome() -> None:
    changed = {"early": [2], "live_calls": 3, "served": 1, "patch_error": "bad", "output_identical": False}
    doc = branch_result(ForkSpec(3), fork_request=2, **changed).to_json()
    assert {k: doc[k] for k in ("fault", "outcome", "fault_served", "forked_at_request", "forked_early",
                                "live_calls", "patch_error", "output_identical")} == {
        "fault": None, "outcome": None, "fault_served": None, "forked_at_request": 2, "forked_early": True,
        "live_calls": 3, "patch_error": "bad", "output_identical": False,
    }  # fmt: skip
    json.dumps(doc)
