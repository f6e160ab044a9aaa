"""``rewind stats`` and ``rewind list`` over a generated store of 1,000,000 steps.

    python bench/stats.py [--steps N] [--sessions N] [--runs N]

Generates a fresh home: migrations applied through the Store API, then sessions and
steps written straight into the index with DuckDB (``INSERT ... SELECT FROM range()``):
five models over four providers and one model the price table does not price, 1% of the
calls rate limited (tagged), 0.5% server errors stored without a tag (as sessions recorded
before tags), latencies and TTFTs spread over 30 days. Each session gets an empty sealed
pointer file so that opening the index does not take it for a session whose record is
missing (it would write one). Then times whole CLI processes, best of ``--runs``:
``rewind stats --json``, ``rewind stats --by day --json`` and ``rewind list --json``.
Prints the figures and writes bench/results/stats.json. A benchmark, not a timed test.
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

import duckdb

from rewind.store.home import Home
from rewind.store.index import Store

RESULTS = Path(__file__).resolve().parent / "results" / "stats.json"
REWIND = str(Path(sys.executable).parent / "rewind")
DAY = 86400
MODELS = "['gpt-4o', 'gpt-4o-mini', 'claude-sonnet-4', 'gemini-2.5-flash', 'gpt-4.1', 'no-such-model-x']"
PROVIDERS = "['openai', 'openai', 'anthropic', 'gemini', 'openai', 'openai']"

SESSIONS_SQL = """
INSERT INTO sessions
SELECT printf('%012x', i), 'job-' || (i % 20), 'record', $now - (i * 30 * 86400.0 / $sessions),
       '["python", "agent.py"]', '/work', NULL, NULL, '{}', '{}', 1, 0, 'complete',
       $now - (i * 30 * 86400.0 / $sessions) + 60, CASE WHEN i % 50 = 0 THEN 1 ELSE 0 END, NULL, NULL
FROM range($sessions) t(i)
"""
STEPS_SQL = f"""
INSERT INTO steps (session_id, step, kind, method, url, started_at, fingerprint, request_headers,
                   request_sha, provider, model, status, reason, error, response_sha, latency_ms,
                   ttft_ms, streamed, input_tokens, output_tokens, cache_read_tokens,
                   cache_write_tokens, response_model, tag)
SELECT printf('%012x', s), n + 1, 'llm', 'POST', 'https://api.example/v1/chat', started,
       'v1:' || printf('%064x', i), '[]', printf('%064x', i),
       {PROVIDERS}[m + 1], {MODELS}[m + 1],
       CASE WHEN i % 100 = 7 THEN 429 WHEN i % 200 = 3 THEN 500 ELSE 200 END, 'OK', NULL,
       printf('%064x', i + 1), 200 + (hash(i) % 3000), CASE WHEN i % 2 = 0 THEN 50 + hash(i) % 400 END,
       i % 2 = 0, 500 + i % 5000, 20 + i % 700, (i % 3) * 100, 0, {MODELS}[m + 1] || '-2025-01-01',
       CASE WHEN i % 100 = 7 THEN 'rate_limited' END
FROM (
    SELECT i, i // $per AS s, i % $per AS n, i % 6 AS m,
           $now - ((i // $per) * 30 * 86400.0 / $sessions) + (i % $per) AS started
    FROM range($steps) t(i)
)
"""


def generate(home: Home, steps: int, sessions: int) -> float:
    """A home with ``steps`` steps over ``sessions`` sessions; seconds it took."""
    started = time.perf_counter()
    home.root.mkdir(parents=True)
    Store(home).fold()  # creates the index and applies the migrations
    params = {"now": time.time(), "sessions": sessions, "steps": steps, "per": steps // sessions}
    with duckdb.connect(str(home.index_path)) as conn:
        conn.execute(SESSIONS_SQL, {k: params[k] for k in ("now", "sessions")})
        conn.execute(STEPS_SQL, params)
    home.sessions_dir.mkdir(exist_ok=True)
    for i in range(sessions):
        (home.sessions_dir / f"{i:012x}.rws").touch()
    return time.perf_counter() - started


def best_of(home: Home, args: list[str], runs: int) -> float:
    """Best wall time (s) of the whole CLI process over ``runs`` runs."""
    times = []
    env = {**os.environ, "REWIND_HOME": str(home.root)}
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run([REWIND, *args], env=env, capture_output=True, check=False)
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise SystemExit(done.stderr.decode())
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--sessions", type=int, default=2_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Home(Path(tmp) / "home")
        generated = generate(home, args.steps, args.sessions)
        commands = {
            "rewind stats --json": ["stats", "--json"],
            "rewind stats --by day --json": ["stats", "--by", "day", "--json"],
            "rewind stats --by session --json": ["stats", "--by", "session", "--json"],
            "rewind list --json": ["list", "--json"],
            "rewind list --failed --json": ["list", "--failed", "--json"],
        }
        timings = {name: best_of(home, argv, args.runs) for name, argv in commands.items()}
    best = {name: round(seconds, 3) for name, seconds in timings.items()}
    results = {"steps": args.steps, "sessions": args.sessions, "runs": args.runs, "cpus": os.cpu_count()}
    results |= {"generate_s": round(generated, 2), "best_s": best}
    print(f"generated {args.steps:,} steps in {args.sessions:,} sessions in {generated:.1f} s")
    for name, seconds in timings.items():
        print(f"{name:<36} {seconds * 1000:>7.0f} ms (best of {args.runs})")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
