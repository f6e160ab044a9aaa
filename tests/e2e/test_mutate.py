"""``rewind mutate`` through the real CLI and proxy: every fault against the real openai
SDK (which retries 429, 5xx, timeouts and dropped connections by itself) and against curl
(which retries nothing), streamed and not; offline, classified, each run a session."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rewind.testing.fake_provider import FakeProvider
from tests.e2e.harness import ROOT, Rewind

pytestmark = pytest.mark.e2e

FAULT_AGENT = ROOT / "tests" / "clients" / "fault_agent.py"


def _record(rw: Rewind, fake: FakeProvider, command: list[str]) -> str:
    done = rw.record("--name", "run", "--route", f"api.openai.com={fake.url}", "--", *command)
    assert done.returncode == 0, done.stdout + done.stderr
    return str(rw.json("inspect", "run")["id"])


def _mutate(rw: Rewind, *args: str, code: int) -> dict[str, Any]:
    done = rw("mutate", "run", "--json", "--jobs", "2", *args, timeout=300)
    assert done.returncode == code, done.stdout + done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    assert all(run["error"] is None for run in report["runs"]), report
    return report


def _outcomes(report: dict[str, Any]) -> dict[tuple[int, str], str]:
    return {(run["step"], run["fault"]): run["outcome"] for run in report["runs"]}


def test_openai_sdk_against_every_fault(rw: Rewind, fake: FakeProvider, clients_python: Path) -> None:
    parent = _record(rw, fake, [str(clients_python), str(FAULT_AGENT)])  # 1 tool call, 2 streamed answer
    before = fake.request_count
    report = _mutate(rw, "--at", "1", code=7)
    assert fake.request_count == before  # every run was offline
    assert _outcomes(report) == {
        (1, "429"): "survived",  # the SDK waits Retry-After and retries: the retry gets the recording
        (1, "500"): "survived",
        (1, "503"): "survived",
        (1, "timeout"): "survived",  # the client gives up after its 2 s timeout and retries
        (1, "reset"): "survived",
        (1, "truncate"): "survived",
        (1, "empty"): "failed",  # an empty 200 is not JSON: the SDK raises
        (1, "bad_tool_args"): "diverged",  # the agent tells the model: a request never recorded
    }
    assert report["counts"]["bad_tool_args"] == {"diverged": 1}
    sessions = {s["id"]: s for s in rw.json("list")}
    for run in report["runs"]:
        session = sessions[run["session"]]
        assert (session["mode"], session["parent"], session["fork_step"], session["fault"]) == (
            "mutate",
            parent,
            1,
            run["fault"],
        )
    retried = rw.json("inspect", _session_of(report, 1, "429"))["steps"]
    assert [s["status"] for s in retried] == [429, 200, 200]  # the fault, the SDK's retry, step 2
    missed = rw.json("inspect", _session_of(report, 1, "bad_tool_args"))["steps"]
    assert missed[-1]["status"] == 404  # the miss, as the agent saw it

    # the streamed answer (step 2): faulted in its chunks
    recorded = rw.json("inspect", "run")["steps"][1]
    report = _mutate(rw, "--at", "2", "--faults", "503,truncate,empty,bad_tool_args", code=0)
    assert _outcomes(report) == {
        (2, "503"): "survived",  # an error comes before a stream, as from the provider
        (2, "truncate"): "recovered",  # the agent prints what it got of the cut stream
        (2, "empty"): "recovered",
    }
    assert report["skipped"] == [
        {"step": 2, "fault": "bad_tool_args", "why": "the response has no tool call"}
    ]
    cut = rw.json("inspect", _session_of(report, 2, "truncate"))["steps"][1]
    assert cut["streamed"] and 0 < cut["chunks"] < recorded["chunks"]  # cut between its events
    assert fake.request_count == before


def test_curl_against_faults_streamed_and_not(rw: Rewind, fake: FakeProvider, curl_agent: list[str]) -> None:
    _record(rw, fake, curl_agent)  # 1 plain, 2 streamed, 3 tool call, 4 final
    before = fake.request_count
    streamed = _mutate(rw, "--at", "2", "--faults", "429,500,503,reset,truncate,empty", code=7)
    assert _outcomes(streamed) == {
        (2, "429"): "failed",  # curl does not retry: the script reports the error and exits 1
        (2, "500"): "failed",
        (2, "503"): "failed",
        (2, "reset"): "failed",  # curl: empty reply from server
        (2, "truncate"): "recovered",  # the script prints the events that arrived (and exits 0)
        (2, "empty"): "recovered",
    }
    # a bound of its own, so that no other run is called hung on a busy machine
    hung = _mutate(rw, "--at", "2", "--faults", "timeout", "--timeout", "4", code=7)
    assert _outcomes(hung) == {(2, "timeout"): "hung"}  # curl waits forever without --max-time
    plain = _mutate(rw, "--at", "1,3", "--faults", "truncate,bad_tool_args", code=7)
    assert _outcomes(plain) == {
        (1, "truncate"): "recovered",
        (3, "truncate"): "diverged",  # a cut tool call: the script then posts an empty body
        (3, "bad_tool_args"): "diverged",  # likewise
    }
    assert fake.request_count == before


def _session_of(report: dict[str, Any], step: int, fault: str) -> str:
    return str(next(r["session"] for r in report["runs"] if (r["step"], r["fault"]) == (step, fault)))
