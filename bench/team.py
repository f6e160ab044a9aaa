"""Team store: push and pull throughput against plain S3 transfers, and the catalog's reads.

    python bench/team.py [--quick] [--runs N]

Runs on the real services of tests/services.py (a private PostgreSQL cluster and moto's
S3 server; `make services`), stopped at the end even on error. Sessions are written
through the store's own writer (``SessionWriter``, as ``rewind import`` does), bodies being
chat requests and answers of words drawn from a 65,536-word random vocabulary (seeded):
they compress like prose and never repeat.

1. Push: a session of four steps whose eight bodies total 64 MB, and a 50-step session
   whose context grows on every call (bench/growing_agent.py's shape), each pushed with
   the real CLI (``rewind push --remote NAME --json``, wall time). MB/s is raw body bytes
   per second, next to a plain upload of the same raw bytes with the same client (DuckDB
   httpfs, ``COPY ... (FORMAT blob)``) in as many objects as the push wrote bundles, and
   net of a whole remote command that moves nothing (``rewind list --remote --limit 1``).
   Then the same push again, which has nothing to send.
2. Pull: each into an empty home (``rewind pull --json``), against a plain download
   (``read_blob``) of those objects; the pulled session lists the same number of steps.
3. A catalog of 1,000 sessions x 50 steps, pushed 100 at a time: ``rewind stats --remote
   NAME`` and ``rewind list --remote NAME --limit 20`` (median wall time of ``--runs``
   after one warm-up, runs interleaved) before and after ``rewind remote compact NAME
   --keep-hours 0``, next to ``python -c pass`` and local ``rewind stats`` on the same
   sessions; the remote's totals are checked against the local ones, before and after.

The catalog's sessions are written in homes of ten (one per worker process at a time),
then gathered into one home: packs and sealed records moved, index rows copied with
DuckDB (as bench/stats.py writes rows). Writing 1,000 sessions into one home directly
takes longer with every session (each finish scans every pack of the home).

Prints the figures and writes bench/results/team.json (not with ``--quick``, a smoke
run with fewer and smaller sessions). A benchmark, not a timed test.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from array import array
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from rewind.store.home import Home
from rewind.store.ids import new_session_id
from rewind.store.index import Store
from rewind.store.journal import chain_key
from rewind.store.lake import open_lake
from rewind.store.models import SessionStart, StepRecord
from rewind.store.remotes import Remote
from rewind.store.writer import SessionWriter

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.services, when run as `python bench/team.py`

from tests.services import TeamRemote, TeamServices, available  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "team.json"
REWIND = str(Path(sys.executable).parent / "rewind")
URL = "https://api.openai.com/v1/chat/completions"
HEADERS = (("content-type", "application/json"),)
MODELS = (("openai", "gpt-4o"), ("openai", "gpt-4o-mini"), ("anthropic", "claude-sonnet-4"))
INDEX_TABLES = ("sessions", "steps", "gaps", "objects")
PART_SESSIONS = 10  # sessions per home a worker writes
MB = 1e6
DAY = 86400.0


@dataclass(frozen=True)
class Sizes:
    big_bytes: int  # the raw bodies of the large session
    big_steps: int
    growing_steps: int
    catalog_sessions: int
    catalog_batch: int  # sessions per push


FULL = Sizes(64 * 1024 * 1024, 4, 50, 1000, 100)
QUICK = Sizes(8 * 1024 * 1024, 2, 10, 20, 10)


# --- bodies ----------------------------------------------------------------------------


class Corpus:
    """Text of words drawn from a large random vocabulary (seeded): prose to a compressor,
    never repeating."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        letters = "abcdefghijklmnopqrstuvwxyz"
        self.words = ["".join(self.rng.choices(letters, k=self.rng.randint(2, 10))) for _ in range(65536)]

    def text(self, size: int) -> str:
        """About ``size`` bytes (words average 7 bytes with their space)."""
        indices = array("H", self.rng.randbytes(2 * max(1, size // 7)))
        return " ".join(map(self.words.__getitem__, indices))


def chat_request(messages: list[dict[str, str]], model: str = "gpt-4o") -> bytes:
    return json.dumps({"model": model, "messages": messages}).encode()


def chat_response(text: str, number: int, model: str = "gpt-4o") -> bytes:
    choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
    return json.dumps({"id": f"chatcmpl-{number}", "object": "chat.completion", "model": model,
                       "choices": [choice]}).encode()  # fmt: skip


def big_exchanges(corpus: Corpus, total: int, steps: int) -> Iterator[tuple[bytes, bytes]]:
    """``steps`` exchanges whose bodies (a request and an answer each) total ``total`` bytes."""
    size = total // (2 * steps)
    for number in range(steps):
        request = chat_request([{"role": "user", "content": corpus.text(size)}])
        yield request, chat_response(corpus.text(size), number)


def growing_exchanges(corpus: Corpus, steps: int, words: int = 220) -> Iterator[tuple[bytes, bytes]]:
    """An agent resending its whole conversation, one user message longer each call."""
    messages = [{"role": "system", "content": corpus.text(words * 7)}]
    for number in range(steps):
        messages.append({"role": "user", "content": corpus.text(words * 7)})
        answer = corpus.text(words * 7)
        yield chat_request(messages), chat_response(answer, number)
        messages.append({"role": "assistant", "content": answer})


def small_exchanges(corpus: Corpus, steps: int, model: str) -> Iterator[tuple[bytes, bytes]]:
    for number in range(steps):
        request = chat_request([{"role": "user", "content": corpus.text(300)}], model)
        yield request, chat_response(corpus.text(150), number, model)


# --- sessions, through the store's own writer ------------------------------------------


def write_session(home: Home, name: str, started: float, exchanges: Iterable[tuple[bytes, bytes]],
                  model: tuple[str, str] = MODELS[0]) -> str:  # fmt: skip
    """A finished session of these exchanges, as `rewind record` leaves one; its id."""
    start = SessionStart(new_session_id(), name, "record", started, ("python", "agent.py"), "/work")
    writer = SessionWriter(home, start)
    number = 0
    for number, (request, response) in enumerate(exchanges, start=1):
        writer.add_step(step(writer, number, started + number, request, response, model))
    writer.finish(0, b"", b"", ended_at=started + number + 1)
    return writer.session_id


def step(writer: SessionWriter, number: int, at: float, request: bytes, response: bytes,
         model: tuple[str, str]) -> StepRecord:  # fmt: skip
    """One exchange, its bodies put as the recorder puts them (chained per endpoint)."""
    request_sha = writer.put_blob(request, chain_key("request", "POST", URL))
    response_sha = writer.put_blob(response, chain_key("response", "POST", URL), request_sha)
    limited = number % 97 == 0
    return StepRecord(
        session_id=writer.session_id, step=number, kind="llm", method="POST", url=URL, started_at=at,
        fingerprint="v1:" + request_sha, request_headers=HEADERS, request_sha=request_sha,
        provider=model[0], model=model[1], status=429 if limited else 200, reason="OK",
        response_headers=HEADERS, response_sha=response_sha, latency_ms=200.0 + (number * 37) % 900,
        input_tokens=len(request) // 4, output_tokens=len(response) // 4,
        tag="rate_limited" if limited else None,
    )  # fmt: skip


def write_part(root: str, first: int, count: int, steps: int) -> str:
    """A home of ``count`` catalog sessions (numbers ``first``...), in a worker process."""
    home = Home(Path(root) / f"part-{first:05d}")
    corpus = Corpus(seed=first)
    now = time.time()
    for number in range(first, first + count):
        started = now - 30 * DAY + number * 30 * DAY / 1000
        model = MODELS[number % len(MODELS)]
        write_session(home, f"job-{number % 20}", started, small_exchanges(corpus, steps, model[1]), model)
    return str(home.root)


def catalog_home(root: Path, sessions: int, steps: int) -> tuple[Home, float]:
    """A home of ``sessions`` sessions of ``steps`` steps; seconds it took."""
    started = time.perf_counter()
    firsts = range(0, sessions, PART_SESSIONS)
    spawn = multiprocessing.get_context("spawn")  # no fork of a process that runs DuckDB
    counts = [min(PART_SESSIONS, sessions - first) for first in firsts]
    with ProcessPoolExecutor(os.cpu_count() or 2, mp_context=spawn) as pool:
        parts = list(pool.map(write_part, [str(root)] * len(firsts), firsts, counts, [steps] * len(firsts)))
    home = Home(root / "catalog")
    gather(home, [Path(p) for p in parts])
    return home, time.perf_counter() - started


def gather(home: Home, parts: list[Path]) -> None:
    """The parts' sessions in one home: packs and sealed records moved, index rows copied."""
    home.root.mkdir(parents=True)
    Store(home).fold()  # creates the index and applies the migrations
    home.objects_dir.mkdir(exist_ok=True)
    home.sessions_dir.mkdir(exist_ok=True)
    with duckdb.connect(str(home.index_path)) as conn:
        for number, part in enumerate(parts):
            for path in [*part.glob("objects/*.pack"), *part.glob("sessions/*.rws")]:
                path.rename(home.root / path.relative_to(part))
            conn.execute(f"ATTACH '{part / 'index.duckdb'}' AS part{number} (READ_ONLY)")
            for table in INDEX_TABLES:
                conn.execute(f"INSERT OR IGNORE INTO {table} BY NAME SELECT * FROM part{number}.{table}")
            conn.execute(f"DETACH part{number}")


# --- the CLI ---------------------------------------------------------------------------


def cli_env(home: Home, remote: TeamRemote) -> dict[str, str]:
    return {**os.environ, **remote.env, "REWIND_HOME": str(home.root)}


def run_rewind(env: Mapping[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """One CLI run, its output kept; SystemExit with its stderr if it fails."""
    done = subprocess.run([REWIND, *args], env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"rewind {' '.join(args)} failed:\n{done.stderr}")
    return done


def rewind(env: Mapping[str, str], *args: str) -> str:
    return run_rewind(env, *args).stdout


def timed_rewind(env: Mapping[str, str], *args: str) -> tuple[float, str]:
    """Wall seconds of one CLI run, and its stdout."""
    started = time.perf_counter()
    out = rewind(env, *args)
    return time.perf_counter() - started, out


def add_remote(env: Mapping[str, str], name: str, remote: TeamRemote) -> Remote:
    rewind(env, "remote", "add", name, "--catalog", remote.catalog, "--data", remote.data,
           "--endpoint", remote.endpoint)  # fmt: skip
    return Remote(name, remote.catalog, remote.data, remote.endpoint)


def wall_time(argv: list[str], env: Mapping[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def medians(commands: dict[str, tuple[list[str], Mapping[str, str]]], runs: int) -> dict[str, float]:
    """Median wall seconds per command: one warm-up each, then ``runs`` interleaved."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for argv, env in commands.values():
        wall_time(argv, env)
    for _ in range(runs):
        for name, (argv, env) in commands.items():
            times[name].append(wall_time(argv, env))
    return {name: statistics.median(values) for name, values in times.items()}


# --- plain transfers with the same client -----------------------------------------------


def split(data: bytes, parts: int) -> list[bytes]:
    size = math.ceil(len(data) / parts)
    return [data[i : i + size] for i in range(0, len(data), size)]


def plain_transfer(remote: Remote, env: Mapping[str, str], data: bytes, objects: int,
                   tag: str) -> dict[str, float]:  # fmt: skip
    """Seconds to upload ``data`` as ``objects`` objects, and to download them again."""
    urls = [f"{remote.data}/plain/{tag}/{n}" for n in range(objects)]
    with open_lake(remote, env) as conn:
        started = time.perf_counter()
        for url, chunk in zip(urls, split(data, objects), strict=True):
            conn.execute(f"COPY (SELECT ?::BLOB AS content) TO '{url}' (FORMAT blob)", [chunk])
        uploaded = time.perf_counter() - started
        started = time.perf_counter()
        got = sum(len(download(conn, url)) for url in urls)
        downloaded = time.perf_counter() - started
    assert got == len(data), (got, len(data))
    return {"upload_s": uploaded, "download_s": downloaded}


def download(conn: duckdb.DuckDBPyConnection, url: str) -> bytes:
    row = conn.execute(f"SELECT content FROM read_blob('{url}')").fetchone()
    assert row is not None
    return bytes(row[0])


def bundle_count(remote: Remote, env: Mapping[str, str]) -> int:
    with open_lake(remote, env) as conn:
        row = conn.execute(f"SELECT count(*) FROM glob('{remote.data}/bundles/*.rwb')").fetchone()
    return int(row[0]) if row else 0


def open_seconds(remote: Remote, env: Mapping[str, str], runs: int = 3) -> float:
    """Median seconds to open the remote in-process (extensions, secret, catalog attach)."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        with open_lake(remote, env):
            times.append(time.perf_counter() - started)
    return statistics.median(times)


# --- 1 and 2: push and pull ------------------------------------------------------------


def transfer(work: Path, name: str, exchanges: list[tuple[bytes, bytes]], remote: TeamRemote,
             alias: Remote) -> dict[str, Any]:  # fmt: skip
    """Push one session from its own home, pull it into an empty one; against plain transfers."""
    source, target = Home(work / f"{name}-push"), Home(work / f"{name}-pull")
    sid = write_session(source, name, time.time(), exchanges)
    raw = b"".join(body for pair in exchanges for body in pair)
    env = cli_env(source, remote)
    add_remote(env, alias.name, remote)
    before = bundle_count(alias, env)
    push_s, out = timed_rewind(env, "push", "--remote", alias.name, "--json", sid)
    pushed = json.loads(out)
    bundles = bundle_count(alias, env) - before
    repush_s, out = timed_rewind(env, "push", "--remote", alias.name, "--json", sid)
    assert json.loads(out)["present"] == [sid], out
    pull_env = cli_env(target, remote)
    add_remote(pull_env, alias.name, remote)
    pull_s, out = timed_rewind(pull_env, "pull", "--remote", alias.name, "--json", sid)
    pulled = json.loads(out)
    listed = {s["id"]: s for s in json.loads(rewind(pull_env, "list", "--json"))}
    assert pushed["added"] == [sid] and pulled["added"] == [sid], (pushed, pulled)
    assert listed[sid]["steps"] == len(exchanges), listed[sid]
    plain = plain_transfer(alias, env, raw, bundles, name)
    figures = transfer_figures(len(raw), len(exchanges), pushed, pulled, bundles, push_s, pull_s, plain)
    return figures | {"push_again_s": repush_s}


def transfer_figures(raw: int, steps: int, pushed: dict[str, Any], pulled: dict[str, Any], bundles: int,
                     push_s: float, pull_s: float, plain: dict[str, float]) -> dict[str, Any]:  # fmt: skip
    assert pushed["raw_bytes"] == raw, (pushed["raw_bytes"], raw)
    return {
        "steps": steps, "raw_bytes": raw, "sent_bytes": pushed["sent_bytes"],
        "received_bytes": pulled["received_bytes"], "bundles": bundles,
        "sent_per_raw_byte": pushed["sent_bytes"] / raw,
        "push_s": push_s, "push_mb_s": raw / MB / push_s,
        "plain_upload_s": plain["upload_s"], "plain_upload_mb_s": raw / MB / plain["upload_s"],
        "push_over_plain": (raw / push_s) / (raw / plain["upload_s"]),
        "pull_s": pull_s, "pull_mb_s": raw / MB / pull_s,
        "plain_download_s": plain["download_s"], "plain_download_mb_s": raw / MB / plain["download_s"],
        "pull_over_plain": (raw / pull_s) / (raw / plain["download_s"]),
    }  # fmt: skip


def print_transfer(name: str, r: dict[str, Any], fixed: float) -> None:
    print(
        f"{name}: {r['steps']} steps, {r['raw_bytes'] / MB:.1f} MB raw, {r['sent_bytes'] / MB:.1f} MB "
        f"sent ({r['sent_per_raw_byte']:.2f} of raw) in {r['bundles']} bundle(s)"
    )
    for verb, plain in (("push", "upload"), ("pull", "download")):
        net = r[f"{verb}_s"] - fixed
        net_text = f"; {r['raw_bytes'] / MB / net:6.1f} MB/s net of a remote command" if net > fixed else ""
        print(
            f"  {verb} {r[f'{verb}_s']:6.2f} s {r[f'{verb}_mb_s']:6.1f} MB/s | plain {plain} "
            f"{r[f'plain_{plain}_s']:6.2f} s {r[f'plain_{plain}_mb_s']:6.1f} MB/s | "
            f"{verb}/plain {r[f'{verb}_over_plain']:.2f}{net_text}"
        )
    print(f"  push again (the remote has it: nothing sent) {r['push_again_s']:6.2f} s")


# --- 3: the catalog --------------------------------------------------------------------


def push_batches(home: Home, env: Mapping[str, str], name: str, batch: int) -> list[float]:
    """Every session of ``home`` pushed, ``batch`` per `rewind push`; seconds of each push."""
    ids = [s.id for s in Store(home).sessions()]
    times = []
    for first in range(0, len(ids), batch):
        chosen = ids[first : first + batch]
        push_s, out = timed_rewind(env, "push", "--remote", name, "--json", *chosen)
        assert len(json.loads(out)["added"]) == len(chosen)
        times.append(push_s)
        print(f"  push {len(times)}: {len(chosen)} sessions in {push_s:.1f} s", file=sys.stderr)
    return times


def reads(env: Mapping[str, str], name: str, runs: int) -> dict[str, float]:
    argv = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "rewind stats (local)": [REWIND, "stats"],
        f"rewind stats --remote {name}": [REWIND, "stats", "--remote", name],
        f"rewind list --remote {name} --limit 20": [REWIND, "list", "--remote", name, "--limit", "20"],
    }
    return medians({label: (args, env) for label, args in argv.items()}, runs)


def same_totals(env: Mapping[str, str], name: str) -> dict[str, Any]:
    """The remote's stats totals next to the local ones (calls, tokens, errors)."""
    local = json.loads(rewind(env, "stats", "--json"))["total"]
    remote = json.loads(rewind(env, "stats", "--remote", name, "--json"))["total"]
    keys = ("calls", "input_tokens", "output_tokens", "errors")
    assert all(local[k] == remote[k] for k in keys), (local, remote)
    return {k: remote[k] for k in keys}


def catalog(work: Path, services: TeamServices, sizes: Sizes, runs: int) -> dict[str, Any]:
    home, generated = catalog_home(work, sizes.catalog_sessions, 50)
    print(f"catalog: wrote {sizes.catalog_sessions:,} sessions x 50 steps in {generated:.1f} s")
    remote = services.new_remote("catalog")
    env = cli_env(home, remote)
    add_remote(env, "catalog", remote)
    pushes = push_batches(home, env, "catalog", sizes.catalog_batch)
    rate = sizes.catalog_sessions / sum(pushes)
    print(
        f"  pushed in {len(pushes)} pushes of {sizes.catalog_batch}: {sum(pushes):.1f} s "
        f"(median {statistics.median(pushes):.2f} s a push, {rate:.1f} sessions/s)"
    )
    totals = same_totals(env, "catalog")
    before = reads(env, "catalog", runs)
    started = time.perf_counter()
    compacted = run_rewind(env, "remote", "compact", "catalog", "--keep-hours", "0").stderr.strip()
    compact_s = time.perf_counter() - started
    print(f"  remote compact --keep-hours 0: {compact_s:.2f} s: {compacted}")
    assert same_totals(env, "catalog") == totals
    after = reads(env, "catalog", runs)
    print_reads(before, after, runs)
    return {"sessions": sizes.catalog_sessions, "steps_per_session": 50, "generate_s": generated,
            "push_s": pushes, "totals": totals, "compact_s": compact_s, "compacted": compacted,
            "median_s_before_compact": before, "median_s_after_compact": after}  # fmt: skip


def print_reads(before: dict[str, float], after: dict[str, float], runs: int) -> None:
    base = before["python -c pass"]
    print(f"  {'command (median of ' + str(runs) + ')':<40} {'before compact':>16} {'after':>16}")
    for name in before:
        print(
            f"  {name:<40} {before[name] * 1000:>7.0f} ms {before[name] / base:>5.1f}x "
            f"{after[name] * 1000:>7.0f} ms {after[name] / base:>5.1f}x"
        )
    stats = [v for k, v in after.items() if k.startswith("rewind stats --remote")][0]
    print(f"  goal: rewind stats --remote under 2 s: {'met' if stats < 2 else 'MISSED'} ({stats:.2f} s)")


# --- main ------------------------------------------------------------------------------


def fixed_costs(work: Path, remote: TeamRemote, alias: Remote) -> tuple[float, float]:
    """Seconds to open the remote in-process, and for a whole CLI command on it (median of 3)."""
    env = cli_env(Home(work / "fixed"), remote)
    add_remote(env, alias.name, remote)
    argv = [REWIND, "list", "--remote", alias.name, "--limit", "1"]
    return open_seconds(alias, env), medians({"list": (argv, env)}, 3)["list"]


def run(work: Path, services: TeamServices, sizes: Sizes, runs: int) -> dict[str, Any]:
    corpus = Corpus(seed=7)
    remote = services.new_remote("transfer")
    os.environ.update(remote.env)  # libpq reads PGPASSWORD from this process's environment
    alias = Remote("team", remote.catalog, remote.data, remote.endpoint)
    opening, fixed = fixed_costs(work, remote, alias)
    print(f"opening the remote in-process (extensions, S3 secret, catalog attach): {opening:.2f} s; "
          f"a whole remote command (rewind list --remote --limit 1): {fixed:.2f} s")  # fmt: skip
    big = list(big_exchanges(corpus, sizes.big_bytes, sizes.big_steps))
    growing = list(growing_exchanges(corpus, sizes.growing_steps))
    results: dict[str, Any] = {"open_remote_s": opening, "remote_command_s": fixed}
    for name, exchanges in (("large-bodies", big), ("growing-context", growing)):
        results[name] = transfer(work, name, exchanges, remote, alias)
        print_transfer(name, results[name], fixed)
    results["catalog"] = catalog(work, services, sizes, runs)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer, smaller sessions; writes no results")
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each read command")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # figures as they come
    reason = available()
    if reason is not None:
        print(f"bench/team.py: skipped: {reason}", file=sys.stderr)
        return
    started = time.perf_counter()
    sizes = QUICK if args.quick else FULL
    services = TeamServices.start()
    try:
        with tempfile.TemporaryDirectory(prefix="rewind-bench-team-") as tmp:
            results = run(Path(tmp), services, sizes, args.runs)
    finally:
        services.stop()
    elapsed = time.perf_counter() - started
    print(f"whole run: {elapsed:.0f} s on {os.cpu_count()} cpus")
    if not args.quick:
        results |= {"cpus": os.cpu_count(), "runs": args.runs, "whole_run_s": elapsed}
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
