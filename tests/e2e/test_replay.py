"""Replaying through the real CLI and proxy: offline, faithful, strict, explained."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from rewind.testing.fake_provider import FakeProvider
from tests.e2e.harness import (
    DEMO_AGENT,
    PYTHON,
    STREAMING_AGENT,
    Rewind,
    curl_via,
    mitmdump,
    stream_timing,
    wait_for,
)

pytestmark = pytest.mark.e2e


def _record_demo(rw: Rewind, routes: list[str], name: str = "demo") -> None:
    assert rw.record("--name", name, *routes, "--", *DEMO_AGENT).returncode == 0


def test_replay_is_offline_and_identical(rw: Rewind, fake: FakeProvider, routes: list[str]) -> None:
    _record_demo(rw, routes)
    before = fake.request_count
    result = rw("replay", "demo", OPENAI_API_KEY="")
    assert fake.request_count == before  # the upstream saw nothing
    assert result.returncode == 0, result.stderr
    assert "Replayed 3/3 steps" in result.stderr and "Output identical." in result.stderr
    assert "Answer: According to the tool" in result.stdout


def test_replay_needs_no_network_at_all(rw: Rewind, routes: list[str]) -> None:
    with FakeProvider() as fake:
        rw.record(
            "--name",
            "gone",
            "--route",
            f"api.openai.com={fake.url}",
            "--route",
            f"weather.example={fake.url}",
            "--",
            *DEMO_AGENT,
        )
    # the fake is stopped: every host is unreachable, and replay still answers everything
    result = rw("replay", "gone")
    assert result.returncode == 0, result.stderr


def test_replay_json_summary(rw: Rewind, routes: list[str]) -> None:
    _record_demo(rw, routes)
    result = rw("replay", "demo", "--json")
    summary = json.loads(result.stdout[result.stdout.index("{\n") :])
    assert summary["replayed"] == 3 and summary["misses"] == [] and summary["exit_code"] == 0


def test_miss_is_explained_and_nothing_goes_upstream(
    rw: Rewind, fake: FakeProvider, routes: list[str]
) -> None:
    _record_demo(rw, routes)
    before = fake.request_count
    result = rw("replay", "demo", "--", *DEMO_AGENT, "What's the weather in Rome?")
    assert result.returncode == 3
    assert fake.request_count == before
    assert "no recorded response for POST https://api.openai.com/v1/chat/completions" in result.stderr
    assert (
        'messages[0] differs (role user): "What\'s the weather in Rome?"' in result.stderr
        or "Rome" in result.stderr
    )
    assert "step 1" in result.stderr


def test_on_miss_live_records_a_new_session(rw: Rewind, fake: FakeProvider, routes: list[str]) -> None:
    _record_demo(rw, routes)
    before = fake.request_count
    result = rw("replay", "demo", "--on-miss", "live", "--", *DEMO_AGENT, "What's the weather in Rome?")
    assert "went live; new session:" in result.stderr, result.stderr
    assert fake.request_count > before
    sessions = {s["name"]: s for s in rw.json("list")}
    live = sessions["demo-live"]
    assert live["parent_id"] == sessions["demo"]["id"] and live["steps"] == 3
    again = rw("replay", "demo-live")  # the new session replays on its own
    assert again.returncode == 0, again.stderr


REPEATING_AGENT = textwrap.dedent(
    """
    import json, os, sys, urllib.request
    base = os.environ["OPENAI_BASE_URL"]
    for i in range(3):
        body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "same prompt"}]}
        req = urllib.request.Request(base + "/chat/completions", json.dumps(body).encode(),
            {"Authorization": "Bearer k", "Content-Type": "application/json"})
        print(json.load(urllib.request.urlopen(req))["id"])
    """
)


def test_repeated_prompts_get_their_answers_in_order(rw: Rewind, fake: FakeProvider) -> None:
    rw.record("--name", "rep", "--", PYTHON, "-c", REPEATING_AGENT, OPENAI_BASE_URL=f"{fake.url}/v1")
    recorded_ids = rw("replay", "rep").stdout.split()
    assert len(set(recorded_ids)) == 3  # the fake gives each answer its own id
    assert rw("replay", "rep").returncode == 0


def test_reuse_serves_the_last_answer_again(rw: Rewind, fake: FakeProvider) -> None:
    once = REPEATING_AGENT.replace("range(3)", "range(1)")
    rw.record("--name", "once", "--", PYTHON, "-c", once, OPENAI_BASE_URL=f"{fake.url}/v1")
    strict = rw("replay", "once", "--", PYTHON, "-c", REPEATING_AGENT)
    assert strict.returncode == 3
    assert "every recorded answer to it was already served" in strict.stderr
    reused = rw("replay", "once", "--reuse", "--", PYTHON, "-c", REPEATING_AGENT)
    assert len(set(reused.stdout.split())) == 1 and reused.returncode == 4  # output has 3 lines now


FAILING_AGENT = textwrap.dedent(
    """
    import json, os, urllib.error, urllib.request
    base = os.environ["OPENAI_BASE_URL"]
    for marker in ["[[status:429]]", "[[status:500]]", "[[drop]]", "fine"]:
        body = {"model": "gpt-4o", "messages": [{"role": "user", "content": marker}]}
        req = urllib.request.Request(base + "/chat/completions", json.dumps(body).encode(),
            {"Authorization": "Bearer k", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req) as r:
                print(marker, r.status)
        except urllib.error.HTTPError as e:
            print(marker, e.code, json.load(e).get("error", {}).get("type") if e.code < 502 else "")
    """
)


def test_recorded_failures_replay_too(rw: Rewind, fake: FakeProvider) -> None:
    recorded = rw.record(
        "--name", "fail", "--", PYTHON, "-c", FAILING_AGENT, OPENAI_BASE_URL=f"{fake.url}/v1"
    )
    assert "[[status:429]] 429" in recorded.stdout and "[[drop]] 502" in recorded.stdout
    result = rw("replay", "fail")
    assert result.returncode == 0, result.stderr + result.stdout
    assert result.stdout == recorded.stdout


def _spread(stderr: str) -> tuple[float, int]:
    timing = stream_timing(stderr)
    return timing["last"] - timing["first"], int(timing["n"])


def test_pace_original_keeps_gaps_and_fast_drops_them(rw: Rewind, fake: FakeProvider) -> None:
    recorded = rw.record(
        "--name", "paced", "--", PYTHON, "-c", STREAMING_AGENT, "60", OPENAI_BASE_URL=f"{fake.url}/v1"
    )
    live_spread, n = _spread(recorded.stderr)
    original = rw("replay", "paced", "--pace", "original")
    fast = rw("replay", "paced")
    assert original.returncode == fast.returncode == 0, original.stderr
    original_spread, original_n = _spread(original.stderr)
    fast_spread, _ = _spread(fast.stderr)
    assert original_n == n  # chunk by chunk
    assert original_spread > 0.7 * live_spread
    assert fast_spread < original_spread / 3


def test_unknown_session_and_damaged_blob_are_clear_errors(rw: Rewind, routes: list[str]) -> None:
    unknown = rw("replay", "nope")
    assert unknown.returncode == 1 and "nope" in unknown.stderr and "Traceback" not in unknown.stderr
    _record_demo(rw, routes)
    [pack] = list((rw.home / "objects").glob("*.pack"))
    data = bytearray(pack.read_bytes())
    data[90] ^= 0xFF  # inside the first body's compressed bytes (after its 84-byte header)
    pack.write_bytes(bytes(data))
    damaged = rw("replay", "demo")
    assert damaged.returncode == 1 and "step 1" in damaged.stderr, damaged.stderr
    assert "Traceback" not in damaged.stderr
    assert "rewind doctor" in damaged.stderr


def test_mitmdump_loads_the_replayer(rw: Rewind, fake: FakeProvider, tmp_path: Path) -> None:
    url = "http://weather.example/tools/weather?city=Kyiv"
    rw.record("--name", "tool", "--route", f"weather.example={fake.url}", "--", "curl", "-s", url)
    lazy = "connection_strategy=lazy"
    proc, port = mitmdump(rw, "replay.py", tmp_path / "mitm", "rewind_session=tool", lazy)
    try:
        wait_for(lambda: '"city": "Kyiv"' in curl_via(port, url).stdout)
        miss = curl_via(port, url.replace("Kyiv", "Oslo"), "-o", "/dev/null", "-w", "%{http_code}")
        assert miss.stdout == "404"
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


CONCURRENT_AGENT = textwrap.dedent(
    """
    import json, os, urllib.request
    from concurrent.futures import ThreadPoolExecutor
    base = os.environ["OPENAI_BASE_URL"]
    def ask(city):
        body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "weather in " + city}]}
        req = urllib.request.Request(base + "/chat/completions", json.dumps(body).encode(),
            {"Authorization": "Bearer k", "Content-Type": "application/json"})
        return city, json.load(urllib.request.urlopen(req))["choices"][0]["message"]["content"]
    with ThreadPoolExecutor(8) as pool:
        for city, answer in sorted(pool.map(ask, ["Oslo", "Rome", "Lima", "Kyiv", "Pune", "Bern"])):
            print(city, answer)
    """
)


def test_concurrent_requests_each_get_their_own_answer(rw: Rewind, fake: FakeProvider) -> None:
    recorded = rw.record(
        "--name", "par", "--", PYTHON, "-c", CONCURRENT_AGENT, OPENAI_BASE_URL=f"{fake.url}/v1"
    )
    assert recorded.stdout.count("\n") == 6
    result = rw("replay", "par")
    assert result.returncode == 0, result.stderr
    assert result.stdout == recorded.stdout
