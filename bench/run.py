"""``make bench``: what recording and replay cost, as ratios against a bare mitmdump and a
direct connection measured in the same run (this machine is shared and noisy).

Prints a table and writes bench/results/latest.json.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rewind.capture.master import free_ports
from rewind.testing.fake_provider import FakeProvider

Row = dict[str, Any]  # one row of a table: its "name", then figures

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CLIENT = [sys.executable, str(ROOT / "bench" / "client.py")]
N = int(os.environ.get("BENCH_N", "300"))
STREAMING = ("--set", "stream_large_bodies=1")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_client(
    url: str, env: dict[str, str], *extra: str, n: int = N, proxy: bool = False
) -> dict[str, list[float]]:
    args = [*CLIENT, "--url", url, "--n", str(n), *extra] + (["--proxy"] if proxy else [])
    return last_json(subprocess.run(args, env=env, capture_output=True, text=True, check=True))


@contextmanager
def mitmdump(*options: str) -> Iterator[str]:
    port = free_ports(1)[0]
    conf = tempfile.mkdtemp(prefix="bench-mitm-")
    proc = subprocess.Popen(
        [
            str(BIN / "mitmdump"),
            "-q",
            "--listen-host",
            "127.0.0.1",
            "-p",
            str(port),
            "--set",
            f"confdir={conf}",
            *options,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_port(port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(10)


def wait_port(port: int) -> None:
    deadline = time.time() + 15
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


@contextmanager
def bare_master() -> Iterator[str]:
    """The embedded master with no addon of Rewind's: what recording cannot go below."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "bare_master.py")], env=env, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


def rewind(home: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REWIND_HOME": home, "PYTHONPATH": str(ROOT)}  # this tree's rewind
    return subprocess.run([str(BIN / "rewind"), *args], env=env, capture_output=True, text=True)


def latency_row(name: str, data: dict[str, list[float]]) -> Row:
    lat = data["latency"][10:]  # first calls warm up connections
    return {"name": name, "p50_ms": statistics.median(lat), "p99_ms": pct(lat, 0.99)}


ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
FLOOR = "embedded master, no addons"  # the row of bench/bare_master.py


def bench_latency(fake: FakeProvider, home: str) -> dict[str, object]:
    """Direct, bare mitmdump, the embedded master alone and ``rewind record``, two ways.

    Rounds (the issue's measure): each path's client runs in turn, in interleaved rounds;
    each round gives the overhead ratio (record p50 - direct p50) / (mitmdump p50 - direct
    p50), and the result is the median over rounds (the bar is <= 1.0, the goal 0.6).
    The same ratio for the embedded master with no addons (``bench/bare_master.py``) is
    the floor: what mitmproxy's own core adds, with nothing recorded.

    Call by call: one client, run by ``rewind record``, takes turns between the four paths
    on every call, so each sees the same moments of this noisy machine (its ratios vary
    far less between runs; every process's caches are also colder).
    """
    rounds = [latency_round(fake, home, r) for r in range(ROUNDS)]
    rows = rounds[-1]
    rows.append(latency_row("rewind replay", last_json(rewind(home, "replay", f"bench-json-{ROUNDS - 1}"))))
    p50s = [{r["name"]: r["p50_ms"] for r in rows} for rows in rounds]
    ratios = [overhead_ratio(p50) for p50 in p50s]
    floors = [overhead_ratio(p50, FLOOR) for p50 in p50s]
    by_call = {r["name"]: r["p50_ms"] for r in call_by_call(fake, home)}
    return {
        "rows": rows, "rounds": rounds, "ratios": ratios, "ratio_median": statistics.median(ratios),
        "floor_ratios": floors, "floor_median": statistics.median(floors),
        "call_by_call": {
            "p50_ms": by_call, "ratio": overhead_ratio(by_call), "floor": overhead_ratio(by_call, FLOOR),
        },
    }


def latency_round(fake: FakeProvider, home: str, index: int) -> list[Row]:
    url = f"{fake.url}/v1/chat/completions"
    env = dict(os.environ)
    rows = [latency_row("direct", run_client(url, env))]
    with mitmdump() as proxy:
        rows.append(latency_row("bare mitmdump", run_client(url, {**env, "HTTP_PROXY": proxy}, proxy=True)))
    with bare_master() as proxy:
        rows.append(latency_row(FLOOR, run_client(url, {**env, "HTTP_PROXY": proxy}, proxy=True)))
    client = [*CLIENT, "--url", url, "--n", str(N), "--proxy"]
    out = rewind(home, "record", "--name", f"bench-json-{index}", "--", *client)
    rows.append(latency_row("rewind record", last_json(out)))
    return rows


def call_by_call(fake: FakeProvider, home: str) -> list[Row]:
    """The four paths taking turns call by call, in one client (see ``bench_latency``)."""
    url = f"{fake.url}/v1/chat/completions"
    with mitmdump() as bare, bare_master() as floor:
        paths = {"direct": "", "bare mitmdump": bare, FLOOR: floor, "rewind record": "env"}
        client = [*CLIENT, "--url", url, "--n", str(N), *(f"--path={k}={v}" for k, v in paths.items())]
        out = rewind(home, "record", "--name", "bench-json-call-by-call", "--", *client)
    data = json.loads(out.stdout.strip().splitlines()[-1])["paths"]
    return [latency_row(name, {"latency": data[name]}) for name in paths]


def overhead_ratio(p50: dict[str, float], path: str = "rewind record") -> float:
    """What ``path`` (recording) adds per call, relative to what bare mitmdump adds."""
    return (p50[path] - p50["direct"]) / (p50["bare mitmdump"] - p50["direct"])


def sse_row(name: str, data: dict[str, list[float]]) -> Row:
    spread = [last - first for first, last in zip(data["ttft"], data["last"], strict=True)]
    return {
        "name": name,
        "ttft_p50_ms": statistics.median(data["ttft"]),
        "spread_p50_ms": statistics.median(spread),
    }


def bench_sse(fake: FakeProvider, home: str) -> list[Row]:
    url = f"{fake.url}/v1/chat/completions"
    sse, n = ("--sse", "--delay-ms", "20"), 20
    env = dict(os.environ)
    rows = [sse_row("direct", run_client(url, env, *sse, n=n))]
    for name, options in (("bare mitmdump (buffers)", ()), ("mitmdump streaming", STREAMING)):
        with mitmdump(*options) as proxy:
            proxied = run_client(url, {**env, "HTTP_PROXY": proxy}, *sse, n=n, proxy=True)
            rows.append(sse_row(name, proxied))
    client = [*CLIENT, "--url", url, "--n", str(n), *sse, "--proxy"]
    out = rewind(home, "record", "--name", "bench-sse", "--", *client)
    rows.append(sse_row("rewind record", last_json(out)))
    out = rewind(home, "replay", "bench-sse", "--pace", "original")
    rows.append(sse_row("rewind replay --pace original", last_json(out)))
    return rows


def last_json(out: subprocess.CompletedProcess[str]) -> dict[str, list[float]]:
    """The client's timings: the last line it printed."""
    data: dict[str, list[float]] = json.loads(out.stdout.strip().splitlines()[-1])
    return data


def bench_startup(home: str) -> dict[str, float]:
    times = []
    for _ in range(5):
        start = time.perf_counter()
        rewind(home, "record", "--", "true")
        times.append(time.perf_counter() - start)
    return {"record_true_median_s": statistics.median(times), "record_true_min_s": min(times)}


def main() -> None:
    """``python bench/run.py [latency]``: everything, or only the latency rounds."""
    home = tempfile.mkdtemp(prefix="rewind-bench-")
    only_latency = sys.argv[1:] == ["latency"]
    with FakeProvider() as fake:
        results: dict[str, object] = {"latency": bench_latency(fake, home)}
        if not only_latency:
            results["sse"] = bench_sse(fake, home)
    if not only_latency:
        results["startup"] = bench_startup(home)
        results["replay_500"] = bench_replay_500(home)
    report(results)


def bench_replay_500(home: str) -> dict[str, float]:
    with FakeProvider() as fake:
        url = f"{fake.url}/v1/chat/completions"
        rewind(home, "record", "--name", "bench-500", "--", *CLIENT, "--url", url, "--n", "500", "--proxy")
    start = time.perf_counter()
    code = rewind(home, "replay", "bench-500").returncode
    return {"replay_500_wall_s": time.perf_counter() - start, "exit_code": code}


def report(results: dict[str, Any]) -> None:
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "latest.json").write_text(json.dumps(results, indent=2))
    report_latency(results["latency"])
    for row in results.get("sse", []):
        print(
            f"SSE {row['name']:<32} TTFT p50 {row['ttft_p50_ms']:8.1f} ms"
            f"   spread p50 {row['spread_p50_ms']:8.1f} ms"
        )
    print()
    rest = {k: results[k] for k in ("startup", "disk", "replay_500") if k in results}
    if rest:
        print(json.dumps(rest, indent=2))


def report_latency(latency: dict[str, Any]) -> None:
    lat = {r["name"]: r for r in latency["rows"]}
    base, direct = lat["bare mitmdump"]["p50_ms"], lat["direct"]["p50_ms"]
    print(f"{'path (last round)':<28}{'p50 ms':>10}{'p99 ms':>10}{'p50/mitmdump':>14}{'added vs direct':>17}")
    for name, row in lat.items():
        print(
            f"{name:<28}{row['p50_ms']:>10.2f}{row['p99_ms']:>10.2f}"
            f"{row['p50_ms'] / base:>14.2f}{row['p50_ms'] - direct:>15.2f}ms"
        )
    ratios = ", ".join(f"{r:.2f}" for r in latency["ratios"])
    floors = ", ".join(f"{r:.2f}" for r in latency["floor_ratios"])
    print(f"\nrecording adds {latency['ratio_median']:.2f}x what bare mitmdump adds per call "
          f"(median of {len(latency['ratios'])} interleaved rounds: {ratios}; bar <= 1.0, goal <= 0.6)")
    print(f"the {FLOOR} adds {latency['floor_median']:.2f}x (rounds: {floors}): "
          "mitmproxy's own core, the floor for recording")
    by_call = latency["call_by_call"]
    print(f"call by call, the four paths taking turns in one client: recording adds {by_call['ratio']:.2f}x, "
          f"the {FLOOR} {by_call['floor']:.2f}x\n")


if __name__ == "__main__":
    main()
