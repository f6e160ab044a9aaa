"""``rewind list`` and ``rewind inspect`` through the CLI, on sessions written by the store."""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

from rewind.analysis.pricing import bundled_prices
from rewind.store.home import Home
from rewind.store.ids import new_session_id
from rewind.store.models import SessionStart
from rewind.store.writer import SessionWriter

from .conftest import URL, Invoke, make_step, write_session

HOSTILE = "\x1b[2J\x1b[31m[bold]x"
DAY = 86400


def names(result_stdout: str) -> list[str | None]:
    return [s["name"] for s in json.loads(result_stdout)]


def test_list_filters_by_name_age_and_count(home: Home, rewind: Invoke) -> None:
    write_session(home, "old", started_at=time.time() - 10 * DAY)
    write_session(home, "nightly", started_at=time.time() - 2 * DAY)
    write_session(home, "nightly", started_at=time.time() - 1 * DAY)
    write_session(home, "other")
    assert names(rewind("list", "--json").stdout) == ["other", "nightly", "nightly", "old"]
    assert names(rewind("list", "--name", "nightly", "--json").stdout) == ["nightly", "nightly"]
    assert names(rewind("list", "--since", "7d", "--json").stdout) == ["other", "nightly", "nightly"]
    assert names(rewind("list", "--limit", "2", "--json").stdout) == ["other", "nightly"]
    assert names(rewind("list", "--since", "2100-01-01", "--json").stdout) == []


def test_bad_since_is_a_usage_error_with_an_example(rewind: Invoke) -> None:
    result = rewind("list", "--since", "last tuesday")
    assert result.exit_code == 2
    assert "'last tuesday' is not a date or an age" in result.stderr and "7d" in result.stderr


def test_bad_limit_is_a_usage_error(rewind: Invoke) -> None:
    assert rewind("list", "--limit", "0").exit_code == 2


def test_no_match_says_so_on_stderr(home: Home, rewind: Invoke) -> None:
    write_session(home, "a")
    result = rewind("list", "--name", "zzz")
    assert result.exit_code == 0 and result.stdout == "" and "No sessions match." in result.stderr


def test_list_and_inspect_show_mode_and_parent(home: Home, rewind: Invoke) -> None:
    parent = write_session(home, "base")
    child = write_session(home, "base-live", mode="replay-live", parent_id=parent)
    table = rewind("list").stdout
    assert "MODE" in table and "PARENT" in table and "replay-live" in table
    assert f"mode replay-live  parent {parent}" in rewind("inspect", child).stdout
    doc = json.loads(rewind("inspect", child, "--json").stdout)
    assert (doc["mode"], doc["parent_id"]) == ("replay-live", parent)


def test_a_branch_shows_its_parent_fork_step_and_fault(home: Home, rewind: Invoke) -> None:
    parent = write_session(home, "base")
    child = write_session(home, "base-429@2", mode="mutate", parent_id=parent, fork_step=2, fault="429")
    listed = {s["id"]: s for s in json.loads(rewind("list", "--json").stdout)}
    assert {k: listed[child][k] for k in ("parent", "fork_step", "fault")} == {
        "parent": parent, "fork_step": 2, "fault": "429"}
    assert (listed[parent]["parent"], listed[parent]["fork_step"]) == (None, None)
    doc = json.loads(rewind("inspect", child, "--json").stdout)
    assert (doc["parent"], doc["fork_step"], doc["fault"]) == (parent, 2, "429")
    assert f"parent {parent}  fork at step 2  fault 429" in rewind("inspect", child).stdout


def test_list_tree_draws_branches_under_their_parent(home: Home, rewind: Invoke) -> None:
    parent = write_session(home, "base")
    child = write_session(home, "fix", mode="branch", parent_id=parent, fork_step=3)
    write_session(home, HOSTILE, mode="branch", parent_id=child, fork_step=4)
    lines = rewind("list", "--tree").stdout.splitlines()
    columns = [line.index(word) for line, word in zip(lines, ("base", "fix", "\\x1b[2J"), strict=True)]
    assert columns[0] < columns[1] < columns[2], lines  # each one level deeper
    assert "fork at step 3" in lines[1] and "fork at step 4" in lines[2]
    assert "\x1b" not in "".join(lines)  # a hostile name is shown escaped
    (root,) = json.loads(rewind("list", "--tree", "--json").stdout)
    assert root["id"] == parent and root["children"][0]["children"][0]["fork_step"] == 4


def test_recorded_escapes_and_markup_are_shown_not_run(home: Home, rewind: Invoke) -> None:
    sid = write_session(home, HOSTILE, command=("echo", HOSTILE), body=HOSTILE.encode())
    for args in (["list"], ["inspect", sid], ["inspect", sid, "--step", "1"]):
        out = rewind(*args).stdout
        assert "\x1b" not in out and "\\x1b[2J\\x1b[31m[bold]x" in out, args


def test_json_keeps_recorded_content_exact(home: Home, rewind: Invoke) -> None:
    sid = write_session(home, HOSTILE, body=HOSTILE.encode())
    assert json.loads(rewind("list", "--json").stdout)[0]["name"] == HOSTILE
    step = json.loads(rewind("inspect", sid, "--step", "1", "--json").stdout)
    assert step["request"]["body"] == HOSTILE


def test_steps_that_could_not_be_recorded_are_shown(home: Home, rewind: Invoke) -> None:
    sid = write_session(home, "holey", gaps=[(2, "disk full")])
    assert "LOST" in rewind("list").stdout
    shown = rewind("inspect", sid).stdout
    assert "NOT RECORDED 1 call(s)" in shown and "step 2: NOT RECORDED: disk full" in shown
    doc = json.loads(rewind("inspect", sid, "--json").stdout)
    assert doc["lost"] == 1 and doc["gaps"] == [{"step": 2, "reason": "disk full"}]


def test_list_json_has_cost_tags_and_failed(home: Home, rewind: Invoke) -> None:
    write_session(home, "a")
    [doc] = json.loads(rewind("list", "--json").stdout)
    price = bundled_prices().models["gpt-4o"]
    assert price is not None
    assert doc["cost_usd"] == (3 * price.input + 4 * price.output) / 1e6  # conftest's step: 3 in, 4 out
    assert (doc["unpriced_calls"], doc["failed"], doc["tags"]) == (0, False, {})


def test_failed_sessions_are_marked_and_filtered(home: Home, rewind: Invoke) -> None:
    write_session(home, "fine", started_at=time.time() - 30)
    failed = record_session(
        home, "broken", exit_code=1, status=429, tag="rate_limited", model="no-such-model-x"
    )
    recovered = record_session(home, "retried", exit_code=0, status=429, tag="rate_limited")
    table = rewind("list").stdout
    assert "COST" in table and "RESULT" in table and "failed: rate_limited×1" in table
    assert "ok: rate_limited×1" in table and "unpriced" in table
    docs = {d["name"]: d for d in json.loads(rewind("list", "--json").stdout)}
    assert docs["broken"]["cost_usd"] is None and docs["broken"]["unpriced_calls"] == 1
    assert (docs["retried"]["failed"], docs["retried"]["tags"]) == (False, {"rate_limited": 1})
    assert [d["id"] for d in json.loads(rewind("list", "--failed", "--json").stdout)] == [failed]
    assert recovered not in rewind("list", "--failed").stdout
    assert names(rewind("list", "--failed", "--limit", "1", "--json").stdout) == ["broken"]
    assert "No sessions match." in rewind("list", "--failed", "--name", "fine").stderr


def test_a_session_with_no_exit_code_fails_by_its_tags(home: Home, rewind: Invoke) -> None:
    record_session(home, "legacy", exit_code=None, status=503, tag=None)  # recorded before tags
    [doc] = json.loads(rewind("list", "--failed", "--json").stdout)
    assert (doc["name"], doc["failed"], doc["tags"]) == ("legacy", True, {"server_error": 1})


def record_session(home: Home, name: str, exit_code: int | None, **step: Any) -> str:
    """A one-step session whose step has these fields changed; unfinished if no exit code."""
    start = SessionStart(new_session_id(), name, "record", time.time(), ("agent",), "/w")
    writer = SessionWriter(home, start)
    writer.add_step(dataclasses.replace(make_step(writer, URL, b"{}"), **step))
    if exit_code is not None:
        writer.finish(exit_code, b"", b"", ended_at=time.time())
    else:
        writer.close()
    return writer.session_id
