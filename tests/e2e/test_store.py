"""The store a user can trust, through the real CLI and proxy: nothing lost silently,
lossless headers, bad journal lines, sessions independent, an index rebuilt from the
files, private file modes, and setup failures that leave nothing behind."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import time
from pathlib import Path

import pytest

from rewind.testing.fake_provider import FakeProvider
from tests.e2e.harness import DEMO_AGENT, PYTHON, REWIND, Rewind, wait_for

pytestmark = pytest.mark.e2e

# Sends a header whose bytes are not UTF-8 and prints the bytes of the one it gets back.
HEADER_AGENT = r"""
import http.client, os
from urllib.parse import urlsplit
proxy = urlsplit(os.environ["HTTP_PROXY"])
conn = http.client.HTTPConnection(proxy.hostname, proxy.port, timeout=10)
conn.putrequest("GET", "http://tools.example/tools/headers", skip_accept_encoding=True)
conn.putheader("X-Trace", b"\xff\xfe")
conn.endheaders()
response = conn.getresponse()
print("x-trace", response.getheader("x-trace").encode("latin-1").hex(), response.read().decode())
"""

# Calls the weather tool N times (argv[1]) then sleeps until killed (argv[2] == "hang").
CALLS_AGENT = r"""
import os, sys, time, urllib.request
for n in range(int(sys.argv[1])):
    with urllib.request.urlopen("http://tools.example/tools/weather?city=c%d" % n) as r:
        r.read()
    print("call", n, flush=True)
if sys.argv[2] == "hang":
    time.sleep(120)
"""


def tools_route(fake: FakeProvider) -> list[str]:
    return ["--route", f"tools.example={fake.url}"]


def test_non_utf8_header_bytes_round_trip(rw: Rewind, fake: FakeProvider) -> None:
    recorded = rw.record(*tools_route(fake), "--", PYTHON, "-c", HEADER_AGENT)
    assert recorded.returncode == 0, recorded.stderr
    assert "x-trace fffe" in recorded.stdout
    assert "(1 steps" in recorded.stderr
    fake.stop()
    replayed = rw("replay", recorded_id(recorded))
    assert replayed.returncode == 0, replayed.stderr
    assert "x-trace fffe" in replayed.stdout and '"x_trace_hex": "fffe"' in replayed.stdout


def recorded_id(result: subprocess.CompletedProcess[str]) -> str:
    line = next(ln for ln in result.stderr.splitlines() if ln.startswith("Session recorded:"))
    return line.split()[2]


def test_an_exchange_that_cannot_be_stored_is_a_loud_gap(rw: Rewind, fake: FakeProvider) -> None:
    # The agent turns the store's objects directory into a file before its first call,
    # so that call's bodies cannot be written.
    agent = f"open({str(rw.home / 'objects')!r}, 'w').close()\n" + CALLS_AGENT
    result = rw("record", "--name", "holes", *tools_route(fake), "--", PYTHON, "-c", agent, "2", "exit")
    assert result.returncode == 6, result.stderr
    assert "could NOT be recorded" in result.stderr and "step 1" in result.stderr
    assert "Traceback" not in result.stderr
    listed = rw.json("list")
    assert listed[0]["steps"] + listed[0].get("lost", 0) >= 1
    shown = rw("inspect", "holes")
    assert "NOT RECORDED" in shown.stdout + shown.stderr


def test_a_bad_journal_line_is_skipped_with_a_warning(rw: Rewind, fake: FakeProvider) -> None:
    rw.record("--name", "healthy", *tools_route(fake), "--", PYTHON, "-c", CALLS_AGENT, "1", "exit")
    proc = rw.popen("record", "--name", "crashed", *tools_route(fake), "--", PYTHON, "-c", CALLS_AGENT,
                    "2", "hang", start_new_session=True)
    journal = wait_for_journal(rw.home)
    wait_for(lambda: journalled_steps(journal) == {1, 2})
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    sid = journal.name
    good = len((journal / "steps.jsonl").read_bytes().splitlines())  # a step may have two lines
    with (journal / "steps.jsonl").open("ab") as f:
        f.write(json.dumps({"session_id": sid, "step": 3}).encode() + b"\n")  # cut short
        f.write(b"\x00\xffgarbage\n")
        f.write(json.dumps({"session_id": sid, "step": "four", "kind": 4}).encode() + b"\n")
    listed = rw("list", "--json")
    assert listed.returncode == 0, listed.stderr
    sessions = {s["name"]: s for s in json.loads(listed.stdout)}
    assert sessions["crashed"]["steps"] == 2 and sessions["crashed"]["status"] == "interrupted"
    assert sessions["healthy"]["steps"] == 1
    for number in (good + 1, good + 2, good + 3):
        assert f"steps.jsonl, line {number}" in listed.stderr
    again = rw("list", "--json")
    assert f"line {good + 1}" not in again.stderr  # warned once, when the journal was sealed
    doctor = rw("doctor", "--json")
    report = json.loads(doctor.stdout)
    crashed = next(s for s in report["sessions"] if s["name"] == "crashed")
    assert len(crashed["skipped_lines"]) == 3


def journalled_steps(journal: Path) -> set[int]:
    lines = (journal / "steps.jsonl").read_bytes().splitlines()
    return {json.loads(line)["step"] for line in lines if line.endswith(b"}")}


def wait_for_journal(home: Path) -> Path:
    found: list[Path] = []

    def journal() -> bool:
        found[:] = [p for p in (home / "sessions").glob("*") if p.is_dir() and not p.name.startswith(".")]
        return bool(found)

    wait_for(journal)
    return found[0]


def test_removing_one_session_never_breaks_another_that_shares_its_bodies(
    rw: Rewind, fake: FakeProvider, routes: list[str]
) -> None:
    rw.record("--name", "first", *routes, "--", *DEMO_AGENT)
    rw.record("--name", "second", *routes, "--", *DEMO_AGENT)
    removed = rw("rm", "--yes", "first")
    assert removed.returncode == 0, removed.stderr
    collected = rw("gc", "--json")
    assert collected.returncode == 0, collected.stderr
    assert json.loads(collected.stdout)["bytes_freed"] > 0
    fake.stop()
    replayed = rw("replay", "second")
    assert replayed.returncode == 0, replayed.stderr
    assert [s["name"] for s in rw.json("list")] == ["second"]
    assert rw("doctor").returncode == 0


@pytest.mark.parametrize("damage", ["delete", "garbage"])
def test_index_rebuilt_from_the_files(rw: Rewind, fake: FakeProvider, routes: list[str], damage: str) -> None:
    rw.record("--name", "one", *routes, "--", *DEMO_AGENT)
    rw.record("--name", "two", *routes, "--", *DEMO_AGENT)
    before = rw.json("list")
    index = rw.home / "index.duckdb"
    if damage == "delete":
        index.unlink()
    else:
        index.write_bytes(os.urandom(index.stat().st_size))
    broken = rw("list")
    assert broken.returncode == 1
    assert "rewind doctor --repair" in broken.stderr and "Traceback" not in broken.stderr
    assert len(broken.stderr.strip().splitlines()) <= 2
    repaired = rw("doctor", "--repair")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    after = rw.json("list")
    assert [(s["id"], s["steps"], s["status"]) for s in after] == [
        (s["id"], s["steps"], s["status"]) for s in before
    ]
    fake.stop()
    for name in ("one", "two"):
        replayed = rw("replay", name)
        assert replayed.returncode == 0, replayed.stderr
        assert "Output identical." in replayed.stderr


def test_every_file_and_directory_under_the_home_is_private(
    rw: Rewind, fake: FakeProvider, routes: list[str]
) -> None:
    args = ["record", "--name", "modes", *routes, "--", *DEMO_AGENT]
    umask = ["sh", "-c", 'umask 022; exec "$0" "$@"', REWIND]
    done = subprocess.run([*umask, *args], env=rw.env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert rw("list").returncode == 0
    loose = [
        f"{oct(p.stat().st_mode & 0o777)} {p.relative_to(rw.home)}"
        for p in [rw.home, *rw.home.rglob("*")]
        if stat.S_IMODE(p.stat().st_mode) & 0o077
    ]
    assert not loose


def occupied_port() -> tuple[socket.socket, int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock, sock.getsockname()[1]


def test_setup_failures_are_one_clear_line_and_leave_no_session(rw: Rewind, tmp_path: Path) -> None:
    a_file = tmp_path / "not-a-dir"
    a_file.write_text("x")
    cases = [
        (["record", "--", "no-such-command-xyz"], {}, 127),
        (["record", "--", "true"], {"OPENAI_BASE_URL": "not a url"}, 2),
        (["record", "--", "true"], {"REWIND_HOME": str(a_file)}, 2),
        (["record", "--", "true"], {"REWIND_HOME": "/proc/rewind-home"}, 1),
    ]
    for args, env, code in cases:
        result = rw(*args, **env)
        assert result.returncode == code, (args, env, result.stderr)
        assert "Traceback" not in result.stderr, result.stderr
        assert result.stderr.startswith("rewind: error:"), result.stderr
        assert len(result.stderr.strip().splitlines()) <= 2, result.stderr
    sock, port = occupied_port()
    with sock:
        result = rw("proxy", "--port", str(port), timeout=30)
    assert result.returncode == 1 and "in use" in result.stderr and "--port" in result.stderr
    assert "Traceback" not in result.stderr
    assert rw.json("list") == []
    assert not list((rw.home / "sessions").glob("*")) if (rw.home / "sessions").exists() else True


def test_a_read_only_home_is_a_clear_error(rw: Rewind) -> None:
    if os.geteuid() == 0:
        pytest.skip("root writes through permissions; covered by the /proc home case")
    rw.home.mkdir(mode=0o500)
    result = rw("record", "--", "true")
    assert result.returncode == 1 and "not writable" in result.stderr


def test_liveness_is_the_recorders_lock_not_its_pid(rw: Rewind, fake: FakeProvider) -> None:
    # A reader that cannot see the recorder's pid (another PID namespace) must still
    # see the recording as live: write a pid that is certainly dead into its journal.
    proc = rw.popen("record", "--name", "live", *tools_route(fake), "--", PYTHON, "-c", CALLS_AGENT,
                    "1", "hang", start_new_session=True)
    try:
        journal = wait_for_journal(rw.home)
        wait_for(lambda: (journal / "steps.jsonl").exists() and (journal / "steps.jsonl").read_bytes())
        start = json.loads((journal / "session.json").read_text())
        start["pid"] = 2**22 + 12345  # no such process here
        (journal / "session.json").write_text(json.dumps(start))
        listed = rw.json("list")
        assert listed[0]["status"] == "recording"
        assert journal.is_dir()  # never sealed nor deleted while live
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    time.sleep(0.1)
    assert rw.json("list")[0]["status"] == "interrupted"
