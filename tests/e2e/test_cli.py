"""The command line as a user meets it: clean JSON on stdout, one explanation per miss,
honest summaries, helpful usage errors, inert recorded content, piped output uncut."""

from __future__ import annotations

import json
import signal
import subprocess

import pytest

from rewind.testing.fake_provider import FakeProvider
from tests.e2e.harness import DEMO_AGENT, Rewind, wait_for

pytestmark = pytest.mark.e2e

HOSTILE = "\x1b[2J\x1b[31m[bold]x"
MISS_LINE = "Rewind replay miss: no recorded response for POST https://api.openai.com/v1/chat/completions"


def _record_demo(rw: Rewind, routes: list[str], name: str = "demo") -> None:
    assert rw.record("--name", name, *routes, "--", *DEMO_AGENT).returncode == 0


def test_replay_json_is_the_whole_of_stdout(rw: Rewind, routes: list[str]) -> None:
    _record_demo(rw, routes)
    result = rw("replay", "demo", "--json")
    summary = json.loads(result.stdout)
    assert summary["exit_code"] == 0 and summary["output_identical"] is True
    assert "Answer: According to the tool" in result.stderr  # the agent's own output


def test_a_miss_is_explained_once(rw: Rewind, routes: list[str]) -> None:
    _record_demo(rw, routes)
    result = rw("replay", "demo", "--", *DEMO_AGENT, "What's the weather in Rome?")
    assert result.returncode == 3
    pointers = [line for line in result.stderr.splitlines() if line.startswith("rewind: replay miss:")]
    assert pointers == [
        "rewind: replay miss: no recorded response for POST "
        "https://api.openai.com/v1/chat/completions (explained at the end)"
    ]
    # once in the agent's own error message (the body it got), once in Rewind's summary
    assert result.stderr.count(MISS_LINE) == 2
    summary = result.stderr[result.stderr.index("Missed requests: 1") :]
    assert "Nearest recorded steps:" in summary and "Rome" in summary


def test_replaying_a_proxy_session_with_a_command_compares_no_output(rw: Rewind, fake: FakeProvider) -> None:
    url = "http://weather.example/tools/weather?city=Rome"
    proc = rw.popen("proxy", "--name", "manual", "--route", f"weather.example={fake.url}")
    wait_for(lambda: rw("env").returncode == 0)
    proxy = dict(line.removeprefix("export ").split("=", 1) for line in rw("env").stdout.splitlines())
    curl = ["curl", "-s", "-x", proxy["HTTP_PROXY"].strip("'"), url]
    assert "Rome" in subprocess.run(curl, capture_output=True, text=True, timeout=30).stdout
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)
    result = rw("replay", "manual", "--", "curl", "-s", url)
    assert result.returncode == 0, result.stderr
    assert "Output differs" not in result.stderr
    assert "Output not compared: the session was recorded by `rewind proxy`" in result.stderr
    assert '"city": "Rome"' in result.stdout


def test_unknown_command_suggests_the_nearest(rw: Rewind) -> None:
    result = rw("lst")
    assert result.returncode == 2
    assert "No such command 'lst'. Did you mean 'list'?" in result.stderr


def test_list_filters(rw: Rewind, routes: list[str]) -> None:
    for name in ("a", "b", "a"):
        _record_demo(rw, routes, name)
    assert [s["name"] for s in rw.json("list", "--name", "a")] == ["a", "a"]
    assert [s["name"] for s in rw.json("list", "--limit", "1")] == ["a"]
    assert len(rw.json("list", "--since", "1h")) == 3
    bad = rw("list", "--since", "soon")
    assert bad.returncode == 2 and "e.g. 2024-05-01" in bad.stderr


def test_recorded_terminal_escapes_are_shown_escaped(rw: Rewind, routes: list[str]) -> None:
    _record_demo(rw, routes, HOSTILE)
    listed = rw("list")
    assert "\x1b" not in listed.stdout and "\\x1b[2J\\x1b[31m[bold]x" in listed.stdout
    assert rw.json("list")[0]["name"] == HOSTILE


def test_piped_output_is_not_cut_to_a_fixed_width(rw: Rewind, routes: list[str]) -> None:
    long_name = "n" * 230
    _record_demo(rw, routes, long_name)
    piped = rw("list")
    assert any(long_name in line for line in piped.stdout.splitlines())
    narrow = rw("list", COLUMNS="100")
    assert max(len(line) for line in narrow.stdout.splitlines()) <= 100
