"""``rewind diff`` and ``rewind bisect`` on two generated 10,000-step sessions.

    python bench/compare.py [-n STEPS] [--runs 3]

Writes two sessions through the store's own writer (``SessionWriter`` + ``StepRecord``),
each step with its own fingerprint and response meaning, the bad run diverging once near
its end (one changed answer, one extra call); then times the whole commands
``rewind diff A B --json`` and ``rewind bisect A B --json`` as processes (best of
``--runs``), with ``python -c pass`` for reference, and writes bench/results/compare.json.
This is a benchmark, not a timed test: the goal is under 1 s each on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rewind.canon.fingerprint import FINGERPRINT_VERSION
from rewind.store.home import Home
from rewind.store.ids import new_session_id
from rewind.store.models import SessionStart, StepRecord
from rewind.store.writer import SessionWriter

BIN = Path(sys.executable).parent
REWIND = str(BIN / "rewind")
RESULTS = Path(__file__).resolve().parent / "results" / "compare.json"
URL = "https://api.openai.com/v1/chat/completions"
TOOL_URL = "https://tools.example/v1/lookup?q={n}"


def request_body(n: int, bad: bool) -> bytes:
    question = f"question {n}" + (" (rephrased)" if bad and n == DIVERGE_AT else "")
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": question}]}
    return json.dumps(body).encode()


def response_body(n: int, bad: bool) -> bytes:
    text = f"answer {n}" + (" but different" if bad and n == DIVERGE_AT else "")
    body = {
        "id": f"chatcmpl-{n}-{bad}",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
    }
    return json.dumps(body).encode()


DIVERGE_AT = 0  # set from the step count in main()


def step(writer: SessionWriter, number: int, call: int, bad: bool) -> StepRecord:
    """Step ``number`` making the agent's call ``call`` (an LLM call, every tenth a tool)."""
    tool = call % 10 == 0
    request = b"" if tool else request_body(call, bad)
    response = response_body(call, bad)
    changed = bad and call == DIVERGE_AT
    return StepRecord(
        session_id=writer.session_id,
        step=number,
        kind="http" if tool else "llm",
        method="GET" if tool else "POST",
        url=TOOL_URL.format(n=call) if tool else URL,
        started_at=time.time(),
        fingerprint=f"v{FINGERPRINT_VERSION}:{call:060x}{int(changed):04x}",  # current: no refingerprint
        request_headers=(("content-type", "application/json"),),
        request_sha=writer.put_blob(request),
        provider=None if tool else "openai",
        model=None if tool else "gpt-4o",
        status=200,
        response_headers=(("content-type", "application/json"),),
        response_sha=writer.put_blob(response),
        meaning=f"m1:{call:060x}{int(changed):04x}",
        finish_reason=None if tool else "stop",
        response_model=None if tool else "gpt-4o-2024-08-06",
    )


def write_session(home: Home, name: str, steps: int, bad: bool) -> str:
    start = SessionStart(
        id=new_session_id(),
        name=name,
        mode="record",
        started_at=time.time(),
        command=("python", "agent.py"),
        cwd="/bench",
        fingerprint_version=FINGERPRINT_VERSION,
    )
    writer = SessionWriter(home, start)
    calls = list(range(1, steps + 1))
    if bad:
        calls.insert(DIVERGE_AT + 5, 10**6)  # one extra call after the divergence
    for number, call in enumerate(calls, 1):
        writer.add_step(step(writer, number, call, bad))
    writer.finish(0, b"", b"", ended_at=time.time())
    return writer.session_id


def wall_time(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {done.stderr}")
    return elapsed


def best(argv: list[str], env: dict[str, str], runs: int) -> float:
    wall_time(argv, env)  # warm-up: the first open folds the new sessions into the index
    return min(wall_time(argv, env) for _ in range(runs))


def main() -> None:
    global DIVERGE_AT
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--steps", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    DIVERGE_AT = args.steps - 17  # an LLM call (every tenth call is a tool)
    with tempfile.TemporaryDirectory() as tmp:
        home = Home(Path(tmp) / "home")
        started = time.perf_counter()
        good, bad = (
            write_session(home, "good", args.steps, False),
            write_session(home, "bad", args.steps, True),
        )
        written = time.perf_counter() - started
        env = {**os.environ, "REWIND_HOME": str(home.root)}
        figures = {
            "steps": args.steps,
            "write_s": round(written, 2),
            "python -c pass": best([sys.executable, "-c", "pass"], env, args.runs),
            "rewind diff --json": best([REWIND, "diff", good, bad, "--json"], env, args.runs),
            "rewind bisect --json": best([REWIND, "bisect", good, bad, "--json"], env, args.runs),
            "rewind diff (table)": best([REWIND, "diff", good, bad], env, args.runs),
            "rewind bisect (text)": best([REWIND, "bisect", good, bad], env, args.runs),
        }
    figures = {k: round(v, 3) if isinstance(v, float) else v for k, v in figures.items()}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    for name, value in figures.items():
        print(f"{name:24} {value}")


if __name__ == "__main__":
    main()
