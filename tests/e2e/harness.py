"""Driving the real ``rewind`` CLI as a subprocess, as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rewind.capture.master import free_ports
from rewind.store.blobs import BlobReader, iter_objects

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
REWIND = str(BIN / "rewind")
PYTHON = sys.executable
DEMO_AGENT = [PYTHON, "-m", "rewind.testing.demo_agent"]
# Built at run time so that nothing shaped like a real key is committed.
SECRET = "sk-" + "rewindtestsecret" * 2


# Streams one answer whose chunks the fake spaces DELAY_MS apart (argv[1]); prints the
# chunk count on stdout (the same on replay) and the client-side timing on stderr.
STREAMING_AGENT = """
import json, os, sys, time, urllib.request
body = {"model": "gpt-4o", "stream": True, "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": "tell me a longer story [[delay:%s]]" % sys.argv[1]}]}
req = urllib.request.Request(os.environ["OPENAI_BASE_URL"] + "/chat/completions",
    json.dumps(body).encode(), {"Authorization": "Bearer k", "Content-Type": "application/json"})
start = time.monotonic(); times = []
with urllib.request.urlopen(req) as r:
    for line in r:
        if line.strip():
            times.append(time.monotonic() - start)
print("chunks", len(times))
print("TIMING " + json.dumps({"first": times[0], "last": times[-1], "n": len(times)}), file=sys.stderr)
"""


def stream_timing(stderr: str) -> dict[str, float]:
    """What STREAMING_AGENT measured: first and last chunk times (s) and the chunk count."""
    line = next(ln for ln in stderr.splitlines() if ln.startswith("TIMING "))
    timing: dict[str, float] = json.loads(line.removeprefix("TIMING "))
    return timing


@dataclass
class Rewind:
    """The CLI against one store, with a base environment for the agent."""

    home: Path
    env: dict[str, str]

    def __call__(self, *args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [REWIND, *args],
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=ROOT,
        )

    def popen(self, *args: str, **kwargs: Any) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [REWIND, *args],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            **kwargs,
        )

    def json(self, *args: str) -> Any:
        result = self(*args, "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def record(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        result = self("record", *args, **env)
        assert "Session recorded:" in result.stderr, result.stderr
        return result


def make_env(home: Path) -> dict[str, str]:
    # Proxies and base URLs would rewire the agent; COLUMNS/LINES would narrow tables.
    env = {k: v for k, v in os.environ.items()
           if not k.endswith(("_BASE_URL", "_PROXY", "_proxy")) and k not in ("COLUMNS", "LINES")}
    env.update(REWIND_HOME=str(home), OPENAI_API_KEY=SECRET, PYTHONPATH=str(ROOT))
    return env


def all_stored_bytes(home: Path) -> bytes:
    """Every byte under the home: each file as it is, plus every object of every pack
    (bodies and sealed session records) decoded."""
    parts = [p.read_bytes() for p in home.rglob("*") if p.is_file()]
    parts.extend(decoded_objects(home))
    return b"\n".join(parts)


def decoded_objects(home: Path) -> list[bytes]:
    """The raw bytes of every object in every pack, delta chains decoded."""
    root = home.resolve()
    refs = list(iter_objects(root))
    reader = BlobReader(root, {r.sha: r for r in refs}.get)
    return [reader.get(ref) for ref in refs]


def wait_for(predicate: Any, timeout: float = 30.0) -> None:
    """Poll ``predicate`` until it is true, or fail."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")


def mitmdump(rw: Rewind, script: str, confdir: Path, *sets: str) -> tuple[subprocess.Popen[str], int]:
    """Plain mitmdump on a free loopback port with one of our addon scripts loaded."""
    port = free_ports(1)[0]
    options = [f"rewind_home={rw.home}", f"confdir={confdir}", *sets]
    args = [str(BIN / "mitmdump"), "-q", "--listen-host", "127.0.0.1", "-p", str(port)]
    args += ["-s", str(ROOT / "addons" / script)] + [a for o in options for a in ("--set", o)]
    proc = subprocess.Popen(args, env=rw.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return proc, port


def curl_via(port: int, url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """curl through a proxy on loopback ``port``."""
    args = ["curl", "-s", "-x", f"http://127.0.0.1:{port}", *extra, url]
    return subprocess.run(args, capture_output=True, text=True, timeout=30)
