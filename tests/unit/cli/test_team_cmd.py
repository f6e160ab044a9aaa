"""``rewind push``, ``pull``, ``remote compact`` and ``--remote`` through the CLI, on a real
team store (PostgreSQL catalog, moto S3)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner, Result

from rewind.cli import cli
from rewind.store.home import Home
from tests.services import AWS_ENV, TeamRemote

from .conftest import Invoke, write_session

CATALOG = "postgres://rewind@db.internal:5432/rewind"


@pytest.fixture
def teammate(tmp_path: Path) -> Invoke:
    """``rewind`` on a second home (another machine), as the ``rewind`` fixture is on the first."""
    root = tmp_path / "teammate"

    def invoke(*args: str, **env: str) -> Result:
        environ: dict[str, str | None] = {"COLUMNS": None, **env}
        return CliRunner().invoke(cli, ["--home", str(root), *args], env=environ)

    return invoke


def add_remote(invoke: Invoke, team_remote: TeamRemote) -> None:
    added = invoke("remote", "add", "team", "--catalog", team_remote.catalog, "--data", team_remote.data,
                   "--endpoint", team_remote.endpoint)  # fmt: skip
    assert added.exit_code == 0, added.output


def document(result: Result) -> Any:
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


# --- usage -----------------------------------------------------------------------------


def test_pull_needs_sessions_a_name_or_a_time(rewind: Invoke) -> None:
    done = rewind("pull")
    assert done.exit_code == 2 and "name the sessions to pull, or give --name or --since" in done.stderr


def test_push_without_a_remote_says_how_to_add_one(home: Home, rewind: Invoke) -> None:
    write_session(home, name="x")
    done = rewind("push", "x")
    assert done.exit_code == 2 and done.stdout == ""
    assert "rewind: error: no remote is configured" in done.stderr
    assert "hint: add one: rewind remote add NAME --catalog" in done.stderr


def test_an_unknown_remote_names_the_configured_ones(rewind: Invoke) -> None:
    for name in ("team", "backup"):
        added = rewind("remote", "add", name, "--catalog", CATALOG, "--data", f"s3://{name}-runs")
        assert added.exit_code == 0
    done = rewind("list", "--remote", "nope")
    assert done.exit_code == 2 and "no remote named 'nope'" in done.stderr
    assert "hint: configured: backup, team" in done.stderr
    several = rewind("push", "x")
    assert several.exit_code == 2 and "several remotes are configured (backup, team)" in several.stderr
    assert "--remote NAME" in several.stderr


# --- on a real remote ------------------------------------------------------------------


def test_push_then_pull_into_another_home(
    home: Home, rewind: Invoke, teammate: Invoke, team_remote: TeamRemote
) -> None:
    add_remote(rewind, team_remote)
    add_remote(teammate, team_remote)
    one, two = write_session(home, name="one", body=b'{"a": 1}'), write_session(home, name="two", body=b"{}")
    pushed = document(rewind("push", "one", "two", "--json", **team_remote.env))
    assert {k: v for k, v in pushed.items() if k != "sent_bytes"} == {
        "remote": "team", "added": [one, two], "present": [], "bodies_sent": 4, "bodies_skipped": 0,
        "raw_bytes": len(b'{"a": 1}') + len(b"{}") + len(b"out\n") + 0,
    }  # fmt: skip
    again = document(rewind("push", two, "--json", **team_remote.env))
    assert (again["added"], again["present"], again["bodies_sent"]) == ([], [two], 0)
    pulled = document(teammate("pull", "--name", "one", "--json", **team_remote.env))
    assert pulled == {"remote": "team", "added": [one], "present": [], "refused": [],
                      "received_bytes": pulled["received_bytes"]}  # fmt: skip
    assert pulled["received_bytes"] > 0
    both = document(teammate("pull", one, two, "--json", **team_remote.env))
    assert (both["added"], both["present"]) == ([two], [one])
    assert document(teammate("list", "--json")) == document(rewind("list", "--json"))


def test_push_and_pull_say_what_they_did_on_stderr(
    home: Home, rewind: Invoke, teammate: Invoke, team_remote: TeamRemote
) -> None:
    add_remote(rewind, team_remote)
    add_remote(teammate, team_remote)
    sid = write_session(home, name="one")
    pushed = rewind("push", "one", **team_remote.env)
    assert pushed.exit_code == 0 and pushed.stdout == f"Pushed {sid} to team\n"
    summary = r"3 bodies sent \(6 bytes, \d+ compressed\), 0 already there"
    assert [line for line in pushed.stderr.splitlines() if re.fullmatch(summary, line)]
    assert f"Already on team: {sid}\n" in rewind("push", "one", **team_remote.env).stderr
    pulled = teammate("pull", sid[:6], **team_remote.env)
    assert pulled.exit_code == 0 and pulled.stdout == f"Pulled {sid} from team\n"
    assert f"Already here: {sid}\n" in teammate("pull", sid, **team_remote.env).stderr


def test_a_damaged_session_is_refused_with_exit_1(
    home: Home, rewind: Invoke, teammate: Invoke, team_remote: TeamRemote
) -> None:
    add_remote(rewind, team_remote)
    add_remote(teammate, team_remote)
    sid = write_session(home, name="one")
    assert rewind("push", sid, **team_remote.env).exit_code == 0
    s3 = boto3.client("s3", endpoint_url=team_remote.endpoint, region_name=AWS_ENV["AWS_REGION"],
                      aws_access_key_id=AWS_ENV["AWS_ACCESS_KEY_ID"],
                      aws_secret_access_key=AWS_ENV["AWS_SECRET_ACCESS_KEY"])  # fmt: skip
    for item in s3.list_objects_v2(Bucket=team_remote.bucket, Prefix="team/bundles/")["Contents"]:
        s3.delete_object(Bucket=team_remote.bucket, Key=item["Key"])
    done = teammate("pull", sid, **team_remote.env)
    assert done.exit_code == 1 and done.stdout == ""
    assert f"rewind: error: refused {sid}: session {sid}: step 1 (request body): " in done.stderr
    assert "is missing; nothing of it was written" in done.stderr
    listed = teammate("list", "--json")
    assert listed.exit_code == 0 and json.loads(listed.stdout) == []


def test_list_and_stats_on_the_remote_match_the_local_store(
    home: Home, rewind: Invoke, team_remote: TeamRemote
) -> None:
    add_remote(rewind, team_remote)
    sids = [write_session(home, name="one"), write_session(home, name="two", gaps=[(2, "dropped")])]
    assert rewind("push", *sids, **team_remote.env).exit_code == 0
    remote_list = document(rewind("list", "--remote", "team", "--json", **team_remote.env))
    assert remote_list == document(rewind("list", "--json")) and len(remote_list) == 2
    for by in ("model", "session"):
        remote_stats = document(rewind("stats", "--by", by, "--remote", "team", "--json", **team_remote.env))
        assert remote_stats == document(rewind("stats", "--by", by, "--json"))
    table = rewind("list", "--remote", "team", **team_remote.env)
    assert table.exit_code == 0 and table.stdout == rewind("list").stdout


def test_remote_compact_prints_the_files_line(
    home: Home, rewind: Invoke, team_remote: TeamRemote
) -> None:
    add_remote(rewind, team_remote)
    assert rewind("push", write_session(home, name="one"), **team_remote.env).exit_code == 0
    done = rewind("remote", "compact", "team", "--keep-hours", "0", **team_remote.env)
    assert done.exit_code == 0 and done.stdout == ""
    assert done.stderr.startswith("team: 0 data files before, ")
    assert done.stderr.endswith(" after; 6 rows moved out of the catalog\n")
    again = rewind("remote", "compact", "team", **team_remote.env)
    assert again.exit_code == 0 and again.stderr.endswith(" after; 0 rows moved out of the catalog\n")
