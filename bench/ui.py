"""``rewind ui`` opening a 10,000-step session in headless Chromium.

    python bench/ui.py [-n STEPS] [--runs 3]

Writes one session through the store's own writer (LLM calls with usage and latency,
every tenth a tool call), serves it with the viewer's own server, and times, in the
system Chromium driven by Playwright, from navigation to the session page until its
first page of steps, its waterfall and its charts are drawn (best and median of
``--runs``, each in a fresh browser context), plus the API document alone. Writes
bench/results/ui.json. A benchmark, not a timed test: the goal is under 2 s.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from rewind.canon.fingerprint import FINGERPRINT_VERSION
from rewind.cli.app import App
from rewind.store.home import Home
from rewind.store.ids import new_session_id
from rewind.store.models import SessionStart, StepRecord
from rewind.store.writer import SessionWriter
from rewind.ui.server import UiServer, ViewerConfig

RESULTS = Path(__file__).resolve().parent / "results" / "ui.json"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
URL = "https://api.openai.com/v1/chat/completions"


def write_session(home: Home, steps: int) -> str:
    start = SessionStart(
        id=new_session_id(), name="big", mode="record", started_at=time.time() - steps,
        command=("python", "agent.py"), cwd="/work", fingerprint_version=FINGERPRINT_VERSION,
    )  # fmt: skip
    writer = SessionWriter(home, start)
    request = writer.put_blob(b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "q"}]}')
    response = writer.put_blob(b'{"choices": [{"message": {"role": "assistant", "content": "a"}}]}')
    for n in range(1, steps + 1):
        tool = n % 10 == 0
        writer.add_step(StepRecord(
            session_id=start.id, step=n, kind="http" if tool else "llm", method="POST", url=URL,
            started_at=start.started_at + n * 0.5, fingerprint=f"v{FINGERPRINT_VERSION}:{n:064x}",
            request_headers=(("content-type", "application/json"),), request_sha=request,
            provider=None if tool else "openai", model=None if tool else "gpt-4o", status=200,
            response_headers=(("content-type", "application/json"),), response_sha=response,
            latency_ms=400.0, ttft_ms=120.0, input_tokens=None if tool else 100 + n % 50,
            output_tokens=None if tool else 20,
        ))  # fmt: skip
    writer.finish(0, b"done\n", b"", time.time())
    return start.id


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", "--steps", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("ui: Playwright is missing (make install)", file=sys.stderr)
        return 1
    if not Path(CHROMIUM).exists():
        print("ui: chromium is missing (make browser)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        home = Home(Path(tmp) / "home")
        sid = write_session(home, args.steps)
        server = UiServer(App(home), ViewerConfig(port=0))
        server.serve_in_thread()
        base = f"http://127.0.0.1:{server.port}"
        page_times = []
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            for _ in range(args.runs):
                context = browser.new_context()
                page = context.new_page()
                started = time.perf_counter()
                page.goto(f"{base}/s/{sid}")
                page.locator('[data-testid="step-row"]').first.wait_for(timeout=60_000)
                page.locator('[data-testid="waterfall"] canvas').first.wait_for(timeout=60_000)
                page.locator('[data-testid="tokens-chart"] canvas').first.wait_for(timeout=60_000)
                page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
                page_times.append(time.perf_counter() - started)
                context.close()
            browser.close()
        api: list[float] = []
        for _ in range(args.runs):  # after the page: served from the cache
            started = time.perf_counter()
            with urllib.request.urlopen(f"{base}/api/sessions/{sid}") as r:
                size = len(r.read())
            api.append(time.perf_counter() - started)
        server.stop()
    result = {
        "steps": args.steps,
        "document_bytes": size,
        "api_cached_s": statistics.median(api),
        "page_s": {"first": page_times[0], "best": min(page_times), "median": statistics.median(page_times)},
        "goal_s": 2.0,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    page_s = result["page_s"]
    print(
        f"ui: {args.steps} steps, document {size / 1e6:.1f} MB (API {statistics.median(api):.2f} s cached): "
        f"page drawn {page_s['first']:.2f} s on first open (document built), "
        f"{page_s['median']:.2f} s median ({page_s['best']:.2f} best; goal < 2 s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
