"""``kill -9`` of the recorder never loses a call whose complete response reached the agent.

An agent runs 16 keep-alive client threads (plain JSON and SSE) against the fake provider
through ``rewind record``, and logs each call it received in full (one fsync'd line per
call). The rewind process is killed with SIGKILL at a random moment; every logged call
must then be a recorded step, matched by the ``?call=N`` in its URL.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from rewind.testing.fake_provider import FakeProvider
from tests.e2e.harness import PYTHON, Rewind

pytestmark = pytest.mark.e2e

ROUNDS = 4
THREADS = 16
CALL = re.compile(r"[?&]call=(\d+)")

# argv: log file, thread count. Logs "N" per call whose whole response arrived, "end" last.
HAMMER_AGENT = textwrap.dedent(
    """
    import http.client, itertools, json, os, sys, threading, urllib.parse
    log_path, threads = sys.argv[1], int(sys.argv[2])
    base = urllib.parse.urlsplit(os.environ["OPENAI_BASE_URL"])
    calls, lock = itertools.count(), threading.Lock()
    log = open(log_path, "a")

    def note(line):
        with lock:
            log.write(line + "\\n"); log.flush(); os.fsync(log.fileno())

    def call(conn, n):
        body = {"model": "gpt-4o", "stream": n % 2 == 1,
                "messages": [{"role": "user", "content": "call %d" % n}]}
        headers = {"authorization": "Bearer k", "content-type": "application/json"}
        conn.request("POST", "%s/chat/completions?call=%d" % (base.path, n), json.dumps(body), headers)
        response = conn.getresponse()
        data = response.read()  # returns once the whole body (or chunked terminator) is in
        complete = response.status == 200 and (n % 2 == 0 or data.endswith(b"data: [DONE]\\n\\n"))
        if complete:
            note(str(n))

    def worker():
        conn = http.client.HTTPConnection(base.hostname, base.port, timeout=10)
        try:
            while True:
                call(conn, next(calls))
        except (OSError, http.client.HTTPException):
            pass

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    note("end")
    """
)


def logged_calls(log: Path) -> tuple[set[int], bool]:
    """The calls the agent received in full, and whether it has finished."""
    lines = log.read_text().split("\n") if log.exists() else []
    return {int(x) for x in lines if x.isdigit()}, "end" in lines


def recorded_calls(rw: Rewind, name: str) -> set[int]:
    steps = rw.json("inspect", name)["steps"]
    return {int(m.group(1)) for s in steps if (m := CALL.search(s["url"]))}


def kill_mid_run(rw: Rewind, fake: FakeProvider, name: str, log: Path) -> None:
    """Start a recording, SIGKILL rewind at a random moment, let the agent fail out."""
    proc = rw.popen(
        "record", "--name", name, "--base-urls", "always", "--route", f"api.openai.com={fake.url}", "--",
        PYTHON, "-c", HAMMER_AGENT, str(log), str(THREADS),
        start_new_session=True,
    )
    try:
        _until(lambda: len(logged_calls(log)[0]) >= 20 or proc.poll() is not None, 30)
        assert proc.poll() is None, f"rewind record exited early: {proc.communicate()[1]}"
        time.sleep(random.uniform(0.0, 1.0))
        os.kill(proc.pid, signal.SIGKILL)  # rewind only: the agent sees its proxy vanish
        proc.wait(10)
        _until(lambda: logged_calls(log)[1], 10)  # the agent logs what it got, then ends
    finally:
        _kill_group(proc)


def _until(predicate: Callable[[], object], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.05)


def _kill_group(proc: subprocess.Popen[str]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(10)


def test_kill_9_loses_no_call_that_reached_the_agent(
    rw: Rewind, fake: FakeProvider, tmp_path: Path
) -> None:
    lost: dict[str, list[int]] = {}
    for round_ in range(ROUNDS):
        name, log = f"killed-{round_}", tmp_path / f"calls-{round_}.log"
        kill_mid_run(rw, fake, name, log)
        done, _ = logged_calls(log)
        assert len(done) >= 20, f"round {round_}: only {len(done)} calls completed"
        missing = sorted(done - recorded_calls(rw, name))
        if missing:
            lost[name] = missing
    assert not lost, f"calls completed at the agent but not recorded: {lost}"
