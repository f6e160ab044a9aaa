"""What a recording costs as the home grows: ``rewind record`` of one call, by home size.

    python bench/home_size.py [--sizes 0,1000,4000] [--steps 20] [--runs 7]

Builds homes of that many finished sessions (``bench/team.py``'s catalog sessions, each
``--steps`` small exchanges, several models and 20 job names), then times ``rewind
record`` of one curl call to the fake provider in each, interleaved run by run (the
machine is shared and noisy). Prints each home's median wall time and its ratio to the
empty home's, and writes bench/results/home_size.json. A benchmark, not a timed test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

from team import catalog_home, wall_time  # bench/team.py, beside this script

from rewind.testing.fake_provider import FakeProvider

BIN = Path(sys.executable).parent
RESULTS = Path(__file__).resolve().parent / "results" / "home_size.json"
BODY = '{"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}'


def record_seconds(home: Path, url: str, run: int) -> float:
    headers = ["-H", "content-type: application/json", "-H", "authorization: Bearer sk-bench"]
    curl = ["curl", "-sf", "-o", "/dev/null", url, *headers, "-d", BODY]
    record = [str(BIN / "rewind"), "record", "--name", f"bench-{run % 3}", "--", *curl]
    return wall_time(record, {**os.environ, "REWIND_HOME": str(home)})


def homes(root: Path, sizes: list[int], steps: int) -> dict[int, Path]:
    built: dict[int, Path] = {}
    for size in sizes:
        if size == 0:
            built[size] = root / "empty"
            continue
        home, seconds = catalog_home(root / str(size), size, steps)
        print(f"built a home of {size:,} sessions in {seconds:.1f} s", flush=True)
        built[size] = home.root
    return built


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="0,1000,4000", help="home sizes, in sessions (comma-separated)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    sizes = sorted({0, *(int(s) for s in args.sizes.split(","))})
    with tempfile.TemporaryDirectory(prefix="rewind-home-size-") as tmp, FakeProvider() as fake:
        built = homes(Path(tmp), sizes, args.steps)
        url = f"{fake.url}/v1/chat/completions"
        times: dict[int, list[float]] = {size: [] for size in sizes}
        for run in range(args.runs):
            for size, home in built.items():
                times[size].append(record_seconds(home, url, run))
    medians = {size: statistics.median(t) for size, t in times.items()}
    rows = [{"sessions": size, "record_s": round(m, 3), "ratio_to_empty": round(m / medians[0], 2)}
            for size, m in medians.items()]  # fmt: skip
    for row in rows:
        print(f"{row['sessions']:>7,} sessions: rewind record {row['record_s']:.3f} s, "
              f"{row['ratio_to_empty']:.2f}x the empty home")  # fmt: skip
    results = {"steps": args.steps, "runs": args.runs, "cpus": os.cpu_count(), "rows": rows}
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
