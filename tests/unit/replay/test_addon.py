"""The replay addon, with mitmproxy's test flows: answers in the request hook, never upstream."""

from __future__ import annotations

import json

from mitmproxy.test import tflow

from rewind.canon.fingerprint import fingerprint
from rewind.canon.providers import Provider
from rewind.canon.redact import RedactionPolicy
from rewind.replay.addon import ReplayAddon, make_response
from rewind.replay.engine import Answer, ReplayEngine
from rewind.replay.modes import OnMiss
from rewind.replay.playback import PLAYBACK_HEADER, PlaybackThread
from tests.unit.replay.factories import make_step

URL = "https://api.openai.com/v1/chat/completions"
BODY = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}).encode()


def _addon(playback: PlaybackThread, on_miss: OnMiss = OnMiss.ERROR, **fields: object) -> ReplayAddon:
    fp = fingerprint("POST", URL, (("content-type", "application/json"),), BODY, Provider.OPENAI)
    step = make_step(1, fp, response_headers=(("content-type", "application/json"),), **fields)
    engine = ReplayEngine([step], {"req1": BODY, "resp1": b'{"ok": 1}'}, RedactionPolicy())
    return ReplayAddon(engine, playback, on_miss)


def _flow(body: bytes = BODY) -> tflow.http.HTTPFlow:
    flow = tflow.tflow()
    flow.request.url = URL
    flow.request.method = "POST"
    flow.request.headers["content-type"] = "application/json"
    flow.request.content = body
    return flow


def test_a_hit_is_answered_in_the_request_hook(playback: PlaybackThread) -> None:
    flow = _flow()
    _addon(playback).request(flow)
    assert flow.response is not None and flow.response.status_code == 200
    assert flow.response.content == b'{"ok": 1}'
    assert flow.response.headers["content-length"] == "9"


def test_a_streamed_hit_goes_to_the_playback_server(playback: PlaybackThread) -> None:
    flow = _flow()
    _addon(playback, streamed=True, chunks=((0.0, 4), (1.0, 5))).request(flow)
    assert flow.response is None
    assert (flow.request.host, flow.request.port) == ("127.0.0.1", playback.port)
    assert flow.request.headers[PLAYBACK_HEADER]


def test_a_miss_gets_an_error_unless_live(playback: PlaybackThread) -> None:
    flow = _flow(BODY.replace(b"hi", b"bye"))
    _addon(playback).request(flow)
    assert flow.response is not None and flow.response.status_code == 404
    assert flow.response.headers["x-should-retry"] == "false"
    live = _flow(BODY.replace(b"hi", b"bye"))
    addon = _addon(playback, OnMiss.LIVE)
    addon.request(live)
    assert live.response is None and addon.live == 1


def test_make_response_drops_recorded_framing_headers() -> None:
    answer = Answer(200, "OK", (("Content-Length", "999"), ("Transfer-Encoding", "chunked")), b"abc")
    response = make_response(answer)
    assert response.headers["content-length"] == "3" and "transfer-encoding" not in response.headers
