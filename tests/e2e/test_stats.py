"""``rewind stats`` and ``rewind list`` on sessions recorded through the real proxy."""

from __future__ import annotations

import json
import textwrap

import pytest

from rewind.testing.fake_provider import FakeProvider
from tests.e2e.harness import PYTHON, ROOT, Rewind

pytestmark = pytest.mark.e2e

# One chat call per argument: "MODEL:MESSAGE"; a failed call makes the agent exit 1.
AGENT = textwrap.dedent(
    """
    import json, os, sys, urllib.error, urllib.request
    for arg in sys.argv[1:]:
        model, _, text = arg.partition(":")
        body = {"model": model, "messages": [{"role": "user", "content": text}]}
        req = urllib.request.Request(os.environ["OPENAI_BASE_URL"] + "/chat/completions",
            json.dumps(body).encode(), {"Authorization": "Bearer k", "Content-Type": "application/json"})
        try:
            print(json.load(urllib.request.urlopen(req))["usage"])
        except urllib.error.HTTPError as e:
            print("failed", e.code); sys.exit(1)
    """
)


def gpt_4o_price() -> dict[str, float]:
    """The bundled table's gpt-4o row, read from the file as a user would."""
    table = json.loads((ROOT / "rewind" / "analysis" / "prices.json").read_text())
    row: dict[str, float] = table["models"]["gpt-4o"]
    return row


def record(rw: Rewind, fake: FakeProvider, name: str, *calls: str) -> None:
    rw.record("--name", name, "--", PYTHON, "-c", AGENT, *calls, OPENAI_BASE_URL=f"{fake.url}/v1")


def test_stats_and_list_show_cost_unpriced_calls_and_failures(rw: Rewind, fake: FakeProvider) -> None:
    record(rw, fake, "good", "gpt-4o:hello there", "gpt-4o:and again please")
    record(rw, fake, "odd", "no-such-model-x:who prices me")
    record(rw, fake, "bad", "gpt-4o:one more", "gpt-4o:slow down [[status:429]]")
    steps = [s for name in ("good", "odd", "bad") for s in rw.json("inspect", name)["steps"]]
    gpt = [s for s in steps if s["model"] == "gpt-4o"]
    inp, out = sum(s["input_tokens"] or 0 for s in gpt), sum(s["output_tokens"] or 0 for s in gpt)
    assert inp > 0 and out > 0
    price = gpt_4o_price()
    expected = (inp * price["input"] + out * price["output"]) / 1e6

    doc = rw.json("stats")
    rows = {r["key"]: r for r in doc["rows"]}
    assert rows["gpt-4o"]["calls"] == 4 and rows["gpt-4o"]["tags"] == {"rate_limited": 1}
    assert rows["gpt-4o"]["cost_usd"] == pytest.approx(expected, rel=1e-12)
    assert rows["gpt-4o"]["latency_p50_ms"] > 0
    assert (rows["no-such-model-x"]["cost_usd"], rows["no-such-model-x"]["unpriced_calls"]) == (None, 1)
    total = doc["total"]
    assert (total["calls"], total["errors"], total["unpriced_calls"]) == (5, 1, 1)
    assert total["input_tokens"] == sum(s["input_tokens"] or 0 for s in steps)
    assert total["cost_usd"] == pytest.approx(expected, rel=1e-12)
    assert doc["prices"]["as_of"] == json.loads((ROOT / "rewind/analysis/prices.json").read_text())["as_of"]

    [failed] = rw.json("list", "--failed")
    assert (failed["name"], failed["failed"], failed["tags"], failed["exit_code"]) == (
        "bad", True, {"rate_limited": 1}, 1
    )  # fmt: skip
    listed = {s["name"]: s for s in rw.json("list")}
    assert listed["odd"]["cost_usd"] is None and listed["good"]["failed"] is False
    table = rw("list").stdout
    assert "failed: rate_limited×1" in table and "unpriced" in table
    shown = rw("stats", "--by", "session").stdout
    assert (
        "TOTAL" in shown
        and "(bad)" in shown
        and "Unpriced, left out of cost: 1 call(s) of no-such-model-x" in shown
    )


def test_stats_on_an_empty_home(rw: Rewind) -> None:
    result = rw("stats")
    assert result.returncode == 0 and "No calls recorded yet." in result.stderr
    assert rw.json("stats", "--by", "day")["rows"] == []
