"""Start-up time of the commands a user types most, against bare ``python -c pass``.

    python bench/startup.py [-n RUNS]

Times ``rewind --help``, ``rewind list`` on an empty home and ``python -c pass`` as
whole processes, interleaved run by run (the machine is shared and noisy), and prints
each one's median wall time and its ratio to bare Python. What is imported is checked by
tests/unit/cli/test_init.py; ``python -X importtime -c 'import rewind.cli'`` shows why.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
REWIND = str(BIN / "rewind")


def commands(empty_home: str) -> dict[str, list[str]]:
    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        "rewind --help": [REWIND, "--help"],
        "rewind list (empty home)": [REWIND, "--home", empty_home, "list"],
    }


def wall_time(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=os.environ)
    return time.perf_counter() - start


def measure(cmds: dict[str, list[str]], runs: int) -> dict[str, float]:
    """Median wall seconds per command; one warm-up each, then runs interleaved."""
    times: dict[str, list[float]] = {name: [] for name in cmds}
    for argv in cmds.values():
        wall_time(argv)
    for _ in range(runs):
        for name, argv in cmds.items():
            times[name].append(wall_time(argv))
    return {name: statistics.median(values) for name, values in times.items()}


def report(medians: dict[str, float]) -> None:
    base = medians["python -c pass"]
    print(f"{'command':<28} {'median':>9} {'x python':>9}")
    for name, median in medians.items():
        print(f"{name:<28} {median * 1000:>7.0f}ms {median / base:>8.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=15, help="timed runs of each command")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        report(measure(commands(str(Path(tmp) / "home")), args.runs))


if __name__ == "__main__":
    main()
