"""Peak RSS of a ``rewind record`` process recording one big response, against a tiny call.

    python bench/memory.py [MB]          (default 100)

The agent is ``curl -o /dev/null`` (a few MB of its own), so the peak RSS of rewind's
process tree, as ``getrusage(RUSAGE_CHILDREN)`` reports it for a wrapper that runs
nothing else, is rewind's. The goal: at most the baseline plus twice the largest body.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from run import wait_port  # bench/run.py: this script runs from bench/

from rewind.capture.master import free_ports
from rewind.testing.fake_provider import FakeProvider

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
MB = 1024 * 1024
# Runs its argv and prints the peak RSS (KB) of the largest process in that tree.
PEAK = "import resource, subprocess, sys; subprocess.run(sys.argv[1:], capture_output=True); " \
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"


def peak_rss_mb(fake: FakeProvider, query: str) -> float:
    """Peak RSS of ``rewind record -- curl <big url>`` in MB."""
    home = tempfile.mkdtemp(prefix="rewind-mem-")
    url = f"http://big.example/_fake/big?{query}"
    record = [str(BIN / "rewind"), "record", "--route", f"big.example={fake.url}", "--"]
    agent = ["curl", "-sf", "-o", "/dev/null", url]
    env = {**os.environ, "REWIND_HOME": home, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-c", PEAK, *record, *agent]
    out = subprocess.run(argv, env=env, capture_output=True, text=True)
    return int(out.stdout.strip()) / 1024


def mitmdump_peak_mb(fake: FakeProvider, query: str) -> float:
    """Peak RSS (VmHWM) of a bare ``mitmdump`` reverse proxy passing the same call on."""
    port = free_ports(1)[0]
    conf = tempfile.mkdtemp(prefix="bench-mitm-")
    proc = subprocess.Popen(
        [str(BIN / "mitmdump"), "-q", "--listen-host", "127.0.0.1", "-p", str(port), "--mode",
         f"reverse:{fake.url}", "--set", f"confdir={conf}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port)
        url = f"http://127.0.0.1:{port}/_fake/big?{query}"
        subprocess.run(["curl", "-sf", "-o", "/dev/null", url], check=True)
        status = Path(f"/proc/{proc.pid}/status").read_text()
        return int(status.split("VmHWM:")[1].split()[0]) / 1024
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    size_mb = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    size = size_mb * MB
    with FakeProvider() as fake:
        rows = {
            "baseline (tiny call)": peak_rss_mb(fake, "bytes=10"),
            f"{size_mb} MB JSON": peak_rss_mb(fake, f"bytes={size}"),
            f"{size_mb} MB SSE": peak_rss_mb(fake, f"bytes={size}&sse=1"),
        }
        bare = {"baseline": mitmdump_peak_mb(fake, "bytes=10"),
                "json": mitmdump_peak_mb(fake, f"bytes={size}")}
    base = rows["baseline (tiny call)"]
    print(f"{'recording':<24}{'peak RSS MB':>12}{'over baseline':>15}{'x body':>8}")
    for name, mb in rows.items():
        print(f"{name:<24}{mb:>12.0f}{mb - base:>15.0f}{(mb - base) / size_mb:>8.2f}")
    print(f"goal: at most {base + 2 * size_mb:.0f} MB (baseline + 2 x {size_mb} MB)")
    over = bare["json"] - bare["baseline"]
    print(f"bare mitmdump passing the {size_mb} MB JSON on: {over:.0f} MB over its baseline "
          f"({over / size_mb:.2f} x body)")


if __name__ == "__main__":
    main()
