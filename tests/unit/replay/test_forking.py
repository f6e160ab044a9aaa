"""The branch addon, with mitmproxy's test flows: a replay that forks at one step.

Branch mode: the engine holds the steps before N; the first request it cannot answer is
the fork (an edited response, a patched request that goes live, or simply live), and
everything after it goes live. Fault mode: the engine holds every step; the first take
of step N gets the fault, and a retry of the same request gets the recorded answer.
"""

from __future__ import annotations

import http.client
import json
import socket
from typing import Any

import pytest
from mitmproxy import connection
from mitmproxy.flow import Error
from mitmproxy.proxy import server_hooks
from mitmproxy.test import tflow

from rewind.canon.fingerprint import fingerprint
from rewind.canon.providers import Provider
from rewind.canon.redact import RedactionPolicy
from rewind.capture.listeners import PASSTHROUGH_META
from rewind.capture.recorder import META_PREPARED, META_STEP
from rewind.capture.routing import PLAYBACK_META
from rewind.errors import ConfigError
from rewind.replay.edits import patch_request
from rewind.replay.engine import TELEMETRY_HEADER, ReplayEngine
from rewind.replay.faults import FAULT_HEADER, Serve
from rewind.replay.forking import BranchAddon, ForkSpec
from rewind.replay.modes import OnMiss
from rewind.replay.playback import PLAYBACK_HEADER, PlaybackThread
from rewind.store.models import StepRecord

from .factories import make_step

URL = "https://api.openai.com/v1/chat/completions"
JSON = (("content-type", "application/json"),)
SSE = (("content-type", "text/event-stream"),)
TELEMETRY_URL = "https://api.smith.langchain.com/runs/batch"


def body(n: int | str) -> bytes:
    return json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": f"q{n}"}]}).encode()


def answer(n: int) -> bytes:
    message = {"role": "assistant", "content": f"a{n}"}
    return json.dumps({"object": "chat.completion", "choices": [{"index": 0, "message": message}]}).encode()


def chunk(text: str) -> bytes:
    delta = {"index": 0, "delta": {"content": text}}
    return b"data: " + json.dumps({"object": "chat.completion.chunk", "choices": [delta]}).encode() + b"\n\n"


EVENTS = (chunk("Hel"), chunk("lo"), chunk("!"), b"data: [DONE]\n\n")


def recorded(n: int, streamed: bool = False) -> StepRecord:
    fp = fingerprint("POST", URL, JSON, body(n), Provider.OPENAI)
    if streamed:
        layout = tuple((10.0 * i, len(event)) for i, event in enumerate(EVENTS))
        return make_step(n, fp, response_headers=SSE, reason="OK", streamed=True, chunks=layout)
    return make_step(n, fp, response_headers=JSON, reason="OK")


def engine_of(*steps: StepRecord) -> ReplayEngine:
    blobs: dict[str, bytes] = {}
    for s in steps:
        blobs[s.request_sha] = body(s.step)
        blobs[f"resp{s.step}"] = b"".join(EVENTS) if s.streamed else answer(s.step)
    return ReplayEngine(list(steps), blobs, RedactionPolicy())


def flow(n: int | str, step: int | None = None, url: str = URL) -> Any:
    """A request the agent sends; ``step``: the number the recorder gave it."""
    f = tflow.tflow()
    f.request.url = url
    f.request.method = "POST"
    f.request.headers["content-type"] = "application/json"
    f.request.content = body(n)
    if step is not None:
        f.metadata[META_STEP] = step
    return f


def content(f: Any) -> bytes:
    assert f.response is not None
    return bytes(f.response.content)


def fetch(playback: PlaybackThread, f: Any) -> tuple[int, bytes]:
    """What the playback server sends for a request the addon sent to it."""
    assert (f.request.scheme, f.request.host, f.request.port) == ("http", "127.0.0.1", playback.port)
    assert f.metadata[PLAYBACK_META] is True and f.response is None
    conn = http.client.HTTPConnection("127.0.0.1", playback.port, timeout=5)
    try:
        conn.request("POST", "/", body=b"{}", headers={PLAYBACK_HEADER: f.request.headers[PLAYBACK_HEADER]})
        response = conn.getresponse()
        try:
            return response.status, response.read()
        except http.client.IncompleteRead as cut:
            return -response.status, cut.partial  # the stream broke off
    finally:
        conn.close()


# --- branch mode ------------------------------------------------------------------------------


def brancher(
    playback: PlaybackThread, at: int = 3, notify: list[str] | None = None, **spec: Any
) -> BranchAddon:
    """A branch at ``at``: the engine holds the steps before it, as ``branch`` builds it."""
    prefix = [recorded(n) for n in range(1, at)]
    heard = notify if notify is not None else []
    return BranchAddon(ForkSpec(at, **spec), engine_of(*prefix), playback, notify=heard.append)


def test_prefix_steps_are_answered_from_the_recording(playback: PlaybackThread) -> None:
    addon = brancher(playback)
    first, second = flow(1, step=1), flow(2, step=2)
    addon.request(first)
    addon.request(second)
    assert (content(first), content(second)) == (answer(1), answer(2))
    assert not addon.state.forked and addon.live == 0
    assert addon.engine.matcher.answers == 2


def test_a_streamed_prefix_step_is_played_by_the_playback_server(playback: PlaybackThread) -> None:
    addon = BranchAddon(ForkSpec(2), engine_of(recorded(1, streamed=True)), playback)
    f = flow(1, step=1)
    addon.request(f)
    assert fetch(playback, f) == (200, b"".join(EVENTS))


def test_the_first_unmatched_request_forks_and_goes_live(playback: PlaybackThread) -> None:
    heard: list[str] = []
    addon = brancher(playback, notify=heard)
    for n in (1, 2):
        addon.request(flow(n, step=n))
    fork = flow(3, step=3)
    addon.request(fork)
    assert fork.response is None and addon.live == 1
    assert fork.request.host == "api.openai.com" and PLAYBACK_HEADER not in fork.request.headers
    assert (addon.state.forked, addon.state.fork_request, addon.state.early) == (True, 3, [])
    assert heard == []  # a fork is no miss to announce


def test_every_request_after_the_fork_goes_live(playback: PlaybackThread) -> None:
    addon = brancher(playback)
    addon.request(flow(3, step=1))  # the agent went elsewhere at once
    later = [flow(1, step=2), flow(2, step=3), flow(9, step=4)]  # recorded ones included
    for f in later:
        addon.request(f)
    assert all(f.response is None for f in later)
    assert addon.live == 4 and addon.engine.matcher.answers == 0


def test_an_early_fork_lists_the_prefix_steps_never_asked_for(playback: PlaybackThread) -> None:
    addon = brancher(playback, at=4)
    addon.request(flow(2, step=1))
    addon.request(flow("other", step=2))
    assert addon.state.fork_request == 2
    assert addon.state.early == [1, 3]


def test_a_request_the_recorder_did_not_number_still_forks(playback: PlaybackThread) -> None:
    addon = brancher(playback)
    addon.request(flow(3))
    assert addon.state.forked and addon.state.fork_request is None and addon.live == 1


def test_the_fork_gets_the_edited_response(playback: PlaybackThread) -> None:
    edited = Serve(201, "Created", (*JSON, ("x-edited", "1")), b'{"edited": true}')
    addon = brancher(playback, response=edited)
    addon.request(flow(1, step=1))
    fork = flow(3, step=2)
    addon.request(fork)
    assert fork.response is not None
    assert (fork.response.status_code, fork.response.reason) == (201, "Created")
    assert content(fork) == b'{"edited": true}' and fork.response.headers["x-edited"] == "1"
    assert addon.live == 0 and addon.state.early == [2]
    after = flow(4, step=3)
    addon.request(after)
    assert after.response is None and addon.live == 1


def test_a_streamed_edited_response_is_played_by_the_playback_server(playback: PlaybackThread) -> None:
    events = (chunk("Bye"), b"data: [DONE]\n\n")
    edited = Serve(200, "OK", SSE, b"".join(events), chunks=((0.0, events[0]), (5.0, events[1])))
    addon = brancher(playback, response=edited)
    fork = flow(3, step=1)
    addon.request(fork)
    assert fork.request.headers[PLAYBACK_HEADER]
    assert fetch(playback, fork) == (200, b"".join(events))
    assert addon.live == 0


def test_a_patched_fork_goes_live_with_its_body_patched(playback: PlaybackThread) -> None:
    patch = {"model": "gpt-4o-mini"}
    addon = brancher(playback, patch=lambda sent: patch_request(sent, patch, 3))
    fork = flow(3, step=3)
    fork.metadata[META_PREPARED] = "prepared from the unpatched body"
    addon.request(fork)
    assert fork.response is None and addon.live == 1
    assert json.loads(fork.request.content) == {**json.loads(body(3)), "model": "gpt-4o-mini"}
    assert fork.request.headers["content-length"] == str(len(fork.request.content))
    assert META_PREPARED not in fork.metadata
    assert addon.state.patch_error is None


def test_only_the_fork_is_patched(playback: PlaybackThread) -> None:
    addon = brancher(playback, patch=lambda sent: b'{"patched": true}')
    addon.request(flow(3, step=3))
    after = flow(4, step=4)
    addon.request(after)
    assert after.request.content == body(4) and addon.live == 2


def test_a_patch_that_fails_sends_the_request_as_it_was(playback: PlaybackThread) -> None:
    def failing(_sent: bytes) -> bytes:
        raise ConfigError("step 3's request body is not JSON, so --request-patch cannot apply")

    addon = brancher(playback, patch=failing)
    fork = flow(3, step=3)
    addon.request(fork)
    assert fork.response is None and fork.request.content == body(3) and addon.live == 1
    assert addon.state.patch_error == "step 3's request body is not JSON, so --request-patch cannot apply"


def test_a_telemetry_upload_before_the_fork_is_answered_and_does_not_fork(playback: PlaybackThread) -> None:
    addon = brancher(playback)
    upload = flow("trace", step=1, url=TELEMETRY_URL)
    addon.request(upload)
    assert upload.response is not None and upload.response.headers[TELEMETRY_HEADER]
    assert not addon.state.forked and addon.live == 0


def test_passthrough_calls_are_left_alone(playback: PlaybackThread) -> None:
    addon = brancher(playback)
    f = flow(9, step=1)
    f.metadata[PASSTHROUGH_META] = True
    addon.request(f)
    assert f.response is None and not addon.state.forked and addon.live == 0


def server_connect(addon: BranchAddon, address: tuple[str, int]) -> str | None:
    server = connection.Server(address=address)
    addon.server_connect(server_hooks.ServerConnectionHookData(server=server, client=tflow.tclient_conn()))
    return server.error


def test_a_branch_may_reach_upstream_but_a_fault_run_stays_offline(playback: PlaybackThread) -> None:
    assert server_connect(brancher(playback), ("api.openai.com", 443)) is None
    faulted = faulter(playback, "500", on_miss=OnMiss.LIVE)
    assert faulted.on_miss is OnMiss.ERROR
    assert "offline" in (server_connect(faulted, ("api.openai.com", 443)) or "")
    assert server_connect(faulted, ("127.0.0.1", playback.port)) is None


# --- fault mode -------------------------------------------------------------------------------


def faulter(
    playback: PlaybackThread, fault: str, at: int = 2, streamed: bool = False, **kwargs: Any
) -> BranchAddon:
    """Every step of a three-step recording, with ``fault`` at ``at``."""
    steps = [recorded(n, streamed=streamed and n == at) for n in (1, 2, 3)]
    return BranchAddon(ForkSpec(at, fault=fault, retry_after_s=5), engine_of(*steps), playback, **kwargs)


def test_the_first_take_of_the_step_gets_the_fault(playback: PlaybackThread) -> None:
    addon = faulter(playback, "429")
    first, faulted = flow(1, step=1), flow(2, step=2)
    addon.request(first)
    addon.request(faulted)
    assert content(first) == answer(1)
    assert faulted.response is not None and faulted.response.status_code == 429
    assert faulted.response.headers[FAULT_HEADER] == "429"
    assert faulted.response.headers["retry-after"] == "5"
    assert json.loads(content(faulted))["error"]["type"] == "requests"
    assert (addon.state.forked, addon.state.fork_request) == (True, 2)


def test_a_retry_gets_the_recorded_answer_and_later_steps_replay(playback: PlaybackThread) -> None:
    addon = faulter(playback, "500")
    flows = [flow(1, step=1), flow(2, step=2), flow(2, step=3), flow(3, step=4)]
    for f in flows:
        addon.request(f)
    assert [f.response.status_code for f in flows] == [200, 500, 200, 200]
    assert [content(f) for f in flows[2:]] == [answer(2), answer(3)]
    assert FAULT_HEADER not in flows[2].response.headers
    matcher = addon.engine.matcher
    assert (matcher.served, matcher.answers, matcher.unused()) == (3, 3, [])
    assert addon.state.fork_request == 2 and addon.live == 0


def test_a_fault_is_served_once(playback: PlaybackThread) -> None:
    addon = faulter(playback, "503", at=1)
    flows = [flow(1, step=1), flow(1, step=2), flow(1, step=3)]
    for f in flows:
        addon.request(f)
    assert [f.response.status_code for f in flows] == [503, 200, 404]


def test_a_step_never_reached_gets_no_fault(playback: PlaybackThread) -> None:
    addon = faulter(playback, "500", at=3)
    for n in (1, 2):
        addon.request(flow(n, step=n))
    assert not addon.state.forked and addon.state.fork_request is None


def test_a_streamed_fault_is_played_cut_short(playback: PlaybackThread) -> None:
    addon = faulter(playback, "truncate", streamed=True)
    faulted, retry = flow(2, step=1), flow(2, step=2)
    addon.request(faulted)
    addon.request(retry)
    assert fetch(playback, faulted) == (-200, b"".join(EVENTS[:2]))
    assert fetch(playback, retry) == (200, b"".join(EVENTS))


def test_a_timeout_is_a_request_the_playback_server_never_answers(playback: PlaybackThread) -> None:
    addon = faulter(playback, "timeout")
    hung = flow(2, step=1)
    addon.request(hung)
    assert hung.response is None and hung.metadata[PLAYBACK_META] is True
    assert (hung.request.host, hung.request.port) == ("127.0.0.1", playback.port)
    token = hung.request.headers[PLAYBACK_HEADER]
    with socket.create_connection(("127.0.0.1", playback.port), timeout=5) as client:
        client.sendall(f"POST / HTTP/1.1\r\nhost: x\r\n{PLAYBACK_HEADER}: {token}\r\n\r\n".encode())
        client.settimeout(0.2)
        with pytest.raises(TimeoutError):
            client.recv(1)
    retry = flow(2, step=2)
    addon.request(retry)
    assert content(retry) == answer(2)


def test_a_reset_kills_the_connection_without_an_answer(playback: PlaybackThread) -> None:
    addon = faulter(playback, "reset")
    killed = flow(2, step=1)
    addon.request(killed)
    assert killed.response is None
    assert killed.error is not None and killed.error.msg == Error.KILLED_MESSAGE
    assert PLAYBACK_HEADER not in killed.request.headers
    retry = flow(2, step=2)
    addon.request(retry)
    assert content(retry) == answer(2) and retry.error is None


def test_a_miss_in_a_fault_run_gets_the_explained_error(playback: PlaybackThread) -> None:
    heard: list[str] = []
    addon = faulter(playback, "500", notify=heard.append)
    missed = flow("never recorded", step=1)
    addon.request(missed)
    assert missed.response is not None and missed.response.status_code == 404
    assert missed.response.headers["x-rewind-miss"] == "1"
    assert "Rewind replay miss" in json.loads(content(missed))["error"]["message"]
    assert heard == [f"no recorded response for POST {URL}"]
    assert len(addon.engine.misses) == 1 and addon.live == 0 and not addon.state.forked


def test_the_fault_follows_the_recorded_step_not_the_request_count(playback: PlaybackThread) -> None:
    addon = faulter(playback, "500", at=2)
    skipped_ahead, back = flow(2, step=1), flow(1, step=2)
    addon.request(skipped_ahead)
    addon.request(back)
    assert skipped_ahead.response is not None and skipped_ahead.response.status_code == 500
    assert content(back) == answer(1)
    assert addon.state.fork_request == 1
