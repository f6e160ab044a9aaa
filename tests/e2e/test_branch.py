"""``rewind branch`` through the real CLI and proxy, the real openai SDK and the fake
provider: the steps before the fork never reach the upstream, the fork serves the edit
(or sends the patched request), later steps go live with the edit in their requests, and
the lineage shows in list, inspect and diff."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rewind.testing.fake_provider import FakeProvider
from tests.e2e.harness import ROOT, Rewind

pytestmark = pytest.mark.e2e

AGENT = ROOT / "tests" / "clients" / "py_openai_agent.py"


def _record(rw: Rewind, fake: FakeProvider, clients_python: Path, *agent_args: str, name: str = "run") -> str:
    route = f"api.openai.com={fake.url}"
    done = rw.record("--name", name, "--route", route, "--", str(clients_python), str(AGENT), *agent_args)
    assert done.returncode == 0, done.stdout + done.stderr
    return str(rw.json("inspect", name)["id"])


def _tool_call_reply(city: str) -> dict[str, Any]:
    call = {
        "id": "call_edit",
        "type": "function",
        "function": {"name": "get_weather", "arguments": json.dumps({"city": city})},
    }
    return {
        "id": "chatcmpl-edit",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {"role": "assistant", "content": None, "tool_calls": [call]},
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
    }


def _session(rw: Rewind, session_id: str) -> dict[str, Any]:
    return next(s for s in rw.json("list") if s["id"] == session_id)


def test_branch_serves_the_edit_and_goes_live_after_it(
    rw: Rewind, fake: FakeProvider, clients_python: Path, tmp_path: Path
) -> None:
    parent = _record(rw, fake, clients_python, "--sections", "plain,tool")  # 1 plain, 2 tool call, 3 final
    edit = tmp_path / "oslo.json"
    edit.write_text(json.dumps(_tool_call_reply("Oslo")))
    before = len(fake.requests)
    done = rw(
        "branch", "run", "--at", "2", "--response", str(edit), "--name", "oslo", OPENAI_API_KEY="sk-live"
    )
    assert done.returncode == 0, done.stderr
    upstream = fake.requests[before:]
    assert len(upstream) == 1, [r.body for r in upstream]  # steps 1 and 2 never reached the upstream
    assert "Oslo" in upstream[0].body.decode()  # step 3 went live carrying the edited answer
    assert 'tool call: get_weather {"city": "Oslo"}' in done.stdout
    assert "final: According to the tool, city: Oslo" in done.stdout
    assert "1 step(s) replayed" in done.stderr and "step 2 served your --response" in done.stderr

    branch = _session(rw, rw.json("inspect", "oslo")["id"])
    assert (branch["mode"], branch["parent"], branch["fork_step"], branch["steps"]) == (
        "branch",
        parent,
        2,
        3,
    )
    step2 = rw.json("inspect", "oslo", "--step", "2")
    assert "Oslo" in json.dumps(step2)  # the branch keeps what step 2 served

    diff = rw.json("diff", "run", "oslo")
    assert [s["status"] for s in diff["steps"]] == ["same", "changed", "changed"]  # they part at step 2

    deeper = rw("branch", "oslo", "--at", "3", "--name", "oslo-again", OPENAI_API_KEY="sk-live")
    assert deeper.returncode == 0, deeper.stderr
    tree = rw("list", "--tree").stdout
    lines = [line for line in tree.splitlines() if line.strip()]
    depth = {
        name: next(i for i, line in enumerate(lines) if f"  {name}  " in line)
        for name in ("run", "oslo", "oslo-again")
    }
    assert depth["run"] < depth["oslo"] < depth["oslo-again"]
    indent = {name: lines[depth[name]].index(name) for name in depth}
    assert indent["run"] < indent["oslo"] < indent["oslo-again"], tree
    nested = rw.json("list", "--tree")
    assert nested[0]["children"][0]["children"][0]["name"] == "oslo-again"


BAD_INPUT = [
    (["--at", "9"], {}, "has no step 9"),
    (["--at", "0"], {}, "has no step 0"),
    (["--at", "1", "--response", "{f}"], {"f": '{"answer": 42}'}, "openai"),
    (["--at", "2", "--response", "{f}"], {"f": json.dumps(_tool_call_reply("Oslo"))}, "server-sent events"),
    (["--at", "1", "--request-patch", "{f}"], {"f": '{"model": '}, "line 1"),
    (["--at", "1", "--request-patch", "{f}", "--response", "{f}"], {"f": "{}"}, "cannot be combined"),
    (["--at", "1", "--status", "500"], {}, "--status goes with --response"),
    (["--at", "1", "--fault", "418"], {}, "429"),
]


def _sse_reply() -> str:
    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini"}
    events = [
        {**chunk, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "edited "}}]},
        {**chunk, "choices": [{"index": 0, "delta": {"content": "stream"}, "finish_reason": "stop"}]},
        {**chunk, "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}},
    ]
    return "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"


def test_bad_input_a_streamed_edit_and_a_request_patch(
    rw: Rewind, fake: FakeProvider, clients_python: Path, tmp_path: Path
) -> None:
    _record(rw, fake, clients_python, "--sections", "plain,stream", "--suffix", "[[vary]]")  # 2 is streamed
    # bad input: a clear error before anything runs
    sessions, before = len(rw.json("list")), len(fake.requests)
    for args, files, message in BAD_INPUT:
        paths = {}
        for key, text in files.items():
            paths[key] = tmp_path / f"{key}.json"
            paths[key].write_text(text)
        done = rw("branch", "run", *[a.format(**paths) for a in args])
        assert done.returncode == 2, (args, done.stdout + done.stderr)
        assert message in done.stderr and "Traceback" not in done.stderr, (args, done.stderr)
    assert len(rw.json("list")) == sessions and len(fake.requests) == before  # nothing ran

    # a streamed step takes an SSE body, played as a stream
    sse = tmp_path / "edit.sse"
    sse.write_text(_sse_reply())
    done = rw("branch", "run", "--at", "2", "--response", str(sse))
    assert done.returncode == 0, done.stderr
    assert len(fake.requests) == before  # step 1 replayed, step 2 edited: nothing went upstream
    assert "stream: edited stream" in done.stdout and "stream usage: input=1 output=2 total=3" in done.stdout

    # a request patch changes the system prompt (and a parameter); that request goes live
    patch = tmp_path / "patch.json"
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Say hello to Rewind. [[vary]]"},
    ]
    patch.write_text(json.dumps({"messages": messages, "temperature": 0.5}))
    done = rw(
        "branch",
        "run",
        "--at",
        "1",
        "--request-patch",
        str(patch),
        "--name",
        "terse",
        OPENAI_API_KEY="sk-live",
    )
    assert done.returncode == 0, done.stderr
    sent = json.loads(fake.requests[before].body)
    assert sent["messages"][0] == {"role": "system", "content": "You are terse."}
    assert sent["temperature"] == 0.5 and sent["model"] == "gpt-4o-mini"  # only what the patch names changed
    assert "You are terse." in done.stdout  # the fake's answer reflects the system prompt it got
    assert len(fake.requests) == before + 2  # step 1 patched, step 2 after it: both live
    assert "You are terse." in json.dumps(rw.json("inspect", "terse", "--step", "1"))
