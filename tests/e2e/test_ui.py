"""``rewind ui`` in a real browser (the system Chromium driven by Playwright): sessions
recorded through the real proxy with the fake provider, then looked at as a user would.

Set ``REWIND_UPDATE_SCREENSHOT=1`` to write the README's screenshot (docs/img/session.png)
from the session page."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rewind.cli.app import App
from rewind.store.home import Home
from rewind.testing.fake_provider import FakeProvider
from rewind.ui.server import UiServer, ViewerConfig
from tests.e2e.harness import DEMO_AGENT, PYTHON, REWIND, ROOT, Rewind

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
SCREENSHOT = ROOT / "docs" / "img" / "session.png"
# What a hostile model could answer; the page must show it as text and run none of it.
PAYLOAD = (
    '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'
    '<a href="javascript:window.__pwned = 3">click</a>'
)


def expect(locator: Any) -> Any:
    """Playwright's retrying assertions (the page fills itself in asynchronously)."""
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is missing: run `make install`")
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is missing: run `make browser` (apt-get install chromium)")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class Viewer:
    """A ``rewind ui`` process on a free loopback port."""

    def __init__(self, rw: Rewind) -> None:
        self.proc = subprocess.Popen(
            [REWIND, "ui", "--port", "0", "--no-open"], env=rw.env, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.startswith("Rewind viewer: http://127.0.0.1:"), line + (
            self.proc.stderr.read() if self.proc.stderr else ""
        )
        self.url = line.split(": ", 1)[1].strip().rstrip("/")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture
def viewer(rw: Rewind) -> Iterator[Viewer]:
    running = Viewer(rw)
    yield running
    running.stop()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    opened = context.new_page()
    opened.errors = []
    opened.on("pageerror", lambda exc: opened.errors.append(str(exc)))
    opened.on("console", lambda msg: opened.errors.append(msg.text) if msg.type == "error" else None)
    yield opened
    context.close()


def _record_demo(rw: Rewind, routes: list[str], name: str = "demo") -> str:
    done = rw.record("--name", name, *routes, "--", *DEMO_AGENT)
    assert done.returncode == 0, done.stderr
    return str(rw.json("inspect", name)["id"])


def _edited_answer(text: str) -> str:
    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini"}
    events = [
        {**chunk, "choices": [{"index": 0, "delta": {"role": "assistant", "content": text}}]},
        {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
         "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}},
    ]  # fmt: skip
    return "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"


def _testid(name: str) -> str:
    return f'[data-testid="{name}"]'


def test_sessions_session_and_step_pages(
    rw: Rewind, routes: list[str], viewer: Viewer, page: Any, tmp_path: Path
) -> None:
    sid = _record_demo(rw, routes)
    page.goto(viewer.url + "/")
    row = page.locator(f'{_testid("session-row")}[data-session-id="{sid}"]')
    expect(row).to_contain_text("demo")

    row.locator(f'a[href*="/s/{sid}"]').first.click()
    page.wait_for_url(f"**/s/{sid}")
    page.locator(_testid("waterfall")).wait_for()
    page.locator(_testid("tokens-chart")).wait_for()
    conversation = page.locator(_testid("conversation"))
    conversation.wait_for()
    expect(conversation).to_contain_text("What's the weather in Paris?")
    tool_call = page.locator(_testid("tool-call")).first
    expect(tool_call).to_contain_text("get_weather")
    expect(tool_call).to_contain_text("Paris")
    expect(page.locator(_testid("step-row"))).to_have_count(3)

    page.locator(f'{_testid("step-row")}[data-step="1"]').click()
    panel = page.locator(_testid("step-panel"))
    panel.wait_for()
    expect(page.locator(_testid("request-body"))).to_contain_text("get_weather")  # the tools it offered
    expect(page.locator(_testid("response-body"))).to_contain_text("tool_calls")
    assert page.url.endswith(f"/s/{sid}/step/1")

    page.goto(f"{viewer.url}/s/{sid}/step/3")  # a pasted link opens the same view
    expect(page.locator(_testid("step-panel"))).to_contain_text("According to the tool")
    expect(page.locator(_testid("chunk-timing"))).to_contain_text(" ms (")  # when each chunk came
    shot = SCREENSHOT if os.environ.get("REWIND_UPDATE_SCREENSHOT") else tmp_path / "session.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    page.goto(f"{viewer.url}/s/{sid}")
    page.locator(_testid("conversation")).wait_for()
    page.screenshot(path=str(shot), full_page=False)
    assert page.errors == []


def test_compare_lineage_and_untrusted_content(
    rw: Rewind, routes: list[str], viewer: Viewer, page: Any, tmp_path: Path
) -> None:
    parent = _record_demo(rw, routes)
    edited = tmp_path / "answer.sse"
    edited.write_text(_edited_answer(PAYLOAD))
    done = rw("branch", "demo", "--at", "3", "--response", str(edited), "--name", "hostile")
    assert done.returncode == 0, done.stderr
    branch = str(rw.json("inspect", "hostile")["id"])

    page.goto(f"{viewer.url}/compare/{parent}/{branch}")
    first = page.locator(_testid("first-divergence"))
    expect(page.locator(_testid("compare-row"))).to_have_count(3)
    expect(first).to_have_count(1)
    rows = page.locator(_testid("compare-row"))
    assert [rows.nth(i).get_attribute("data-testid") for i in range(3)] == ["compare-row"] * 3
    expect(rows.nth(2).locator(_testid("first-divergence"))).to_have_count(1)  # they part at step 3
    expect(page.locator(_testid("bisect-cause"))).not_to_be_empty()

    page.goto(f"{viewer.url}/s/{branch}/lineage")
    lineage = page.locator(_testid("lineage"))
    lineage.wait_for()
    text = lineage.inner_text()
    assert "demo" in text and "hostile" in text and "fork at step 3" in text
    assert (
        lineage.locator(f'a[href*="/s/{parent}/step/3"]').count() >= 1
    )  # the branch links to where it forked

    for path in (f"/s/{branch}", f"/s/{branch}/step/3"):
        page.goto(viewer.url + path)
        expect(page.locator("body")).to_contain_text("<script>window.__pwned = 1</script>")
        page.wait_for_timeout(300)  # an injected handler would have fired by now
        assert page.evaluate("window.__pwned") is None
        assert page.locator("body script:not([src])").count() == 0
        assert page.locator('a[href^="javascript:"]').count() == 0
    assert not [e for e in page.errors if "pwned" in e]


LIVE_AGENT = textwrap.dedent("""
    import json, os, sys, time, urllib.request
    def ask(text):
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]}
        req = urllib.request.Request(os.environ.get("OPENAI_BASE_URL", "https://api.openai.com/v1")
            + "/chat/completions", json.dumps(body).encode(),
            {"Authorization": "Bearer " + os.environ["OPENAI_API_KEY"], "Content-Type": "application/json"})
        with urllib.request.urlopen(req) as r:
            print(json.load(r)["choices"][0]["message"]["content"], flush=True)
    for n in range(4):  # enough for the page to fetch only what is new (steps after 1)
        ask(f"question {n}")
    time.sleep(float(sys.argv[1]))
    ask("the last question")
    time.sleep(float(sys.argv[1]))
""")


def test_a_recording_appears_live(
    rw: Rewind, fake: FakeProvider, viewer: Viewer, page: Any, tmp_path: Path
) -> None:
    agent = tmp_path / "live_agent.py"
    agent.write_text(LIVE_AGENT)
    page.goto(viewer.url + "/")
    page.wait_for_load_state("networkidle")
    recording = rw.popen("record", "--name", "live", "--route", f"api.openai.com={fake.url}", "--",
                         PYTHON, str(agent), "2.5")  # fmt: skip
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    try:
        badge = page.locator(_testid("live-badge"))
        badge.wait_for(timeout=8000)  # no reload: the page polls
        row = page.locator(_testid("session-row")).filter(has=badge)
        row.locator("a").first.click()
        steps = page.locator(_testid("step-row"))
        expect(steps).to_have_count(4, timeout=8000)  # the first four calls
        expect(steps).to_have_count(5, timeout=15000)  # the last, fetched as new, without a reload
        expect(steps.nth(4)).to_have_attribute("data-step", "5")
        expect(steps.nth(0)).to_have_attribute("data-step", "1")  # kept from before
        assert any("after=1" in url for url in asked), "the page did not ask for only the newer steps"
    finally:
        recording.wait(60)
    assert recording.returncode == 0


def test_the_token_is_required_beyond_loopback(rw: Rewind, routes: list[str], page: Any) -> None:
    """``--host`` other than loopback gets a token; the same rules, tried on loopback."""
    sid = _record_demo(rw, routes)
    config = ViewerConfig.for_host("0.0.0.0", 0)
    server = UiServer(App(Home(rw.home)), ViewerConfig("127.0.0.1", 0, config.token))
    server.serve_in_thread()
    try:
        bare = f"http://127.0.0.1:{server.port}/"
        response = page.goto(bare)
        assert response.status == 403
        expect(page.locator("body")).to_contain_text("access token")
        assert page.locator(_testid("session-row")).count() == 0
        page.goto(server.url)  # with ?token=
        page.locator(f'{_testid("session-row")}[data-session-id="{sid}"]').wait_for()
        page.goto(f"http://127.0.0.1:{server.port}/s/{sid}")  # the cookie carries it from now on
        page.locator(_testid("conversation")).wait_for()
    finally:
        server.stop()
