"""The recorder addon, driven with mitmproxy's own test flows (no network)."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future

from mitmproxy import http
from mitmproxy.test import taddons, tflow

from rewind.capture.recorder import Recorder, StreamTap, to_exchange
from rewind.core.exchange import Exchange, Headers


def _flow(content_type: str = "application/json", body: bytes = b'{"ok":true}') -> http.HTTPFlow:
    flow = tflow.tflow(resp=False)
    flow.request.url = "https://api.openai.com/v1/chat/completions?key=abc"
    flow.request.method = "POST"
    flow.request.content = b'{"model":"gpt-4o"}'
    flow.request.headers["authorization"] = "Bearer sk-test-fake"
    flow.response = http.Response.make(200, body, {"content-type": content_type})
    return flow


def _run(recorder: Recorder, flow: http.HTTPFlow) -> None:
    with taddons.context(recorder):
        recorder.requestheaders(flow)
        recorder.request(flow)
        recorder.responseheaders(flow)
        asyncio.run(recorder.response(flow))


def test_records_a_json_exchange_with_the_logical_url() -> None:
    seen: list[Exchange] = []
    flow = _flow()
    _run(Recorder(seen.append), flow)
    [ex] = seen
    assert ex.step == 1 and ex.method == "POST" and ex.status == 200
    assert ex.url == "https://api.openai.com/v1/chat/completions?key=abc"
    assert ex.request_body == b'{"model":"gpt-4o"}' and ex.response_body == b'{"ok":true}'
    assert ex.chunks is None and ex.latency_ms is not None
    assert flow.request.headers["accept-encoding"] == "identity"  # sent upstream...
    assert ("accept-encoding", "identity") not in ex.request_headers  # ...but not recorded


def test_steps_are_numbered_in_arrival_order() -> None:
    seen: list[Exchange] = []
    recorder = Recorder(seen.append)
    flows = [_flow(), _flow()]
    with taddons.context(recorder):
        for flow in flows:
            recorder.requestheaders(flow)
        for flow in reversed(flows):
            asyncio.run(recorder.response(flow))
    assert [ex.step for ex in seen] == [2, 1]


def test_sse_is_streamed_through_a_tap_that_keeps_chunk_times() -> None:
    seen: list[Exchange] = []
    recorder = Recorder(seen.append)
    flow = _flow("text/event-stream", b"")
    assert flow.response is not None
    flow.response.headers["transfer-encoding"] = "chunked"
    del flow.response.headers["content-length"]
    with taddons.context(recorder):
        recorder.requestheaders(flow)
        recorder.responseheaders(flow)
        tap = flow.response.stream  # type: ignore[union-attr]
        assert isinstance(tap, StreamTap)
        assert tap(b"data: 1\n\n") == b"data: 1\n\n" and tap(b"data: 2\n\n") and tap(b"") == b""
        asyncio.run(recorder.response(flow))
    [ex] = seen
    assert ex.chunks is not None and [bytes(c.data) for c in ex.chunks] == [b"data: 1\n\n", b"data: 2\n\n"]
    assert ex.response_body == b"data: 1\n\ndata: 2\n\n"
    assert ex.chunks[0].t_ms <= ex.chunks[1].t_ms


def test_a_failed_flow_is_recorded_as_failed() -> None:
    flow = tflow.tflow(err=True)
    flow.metadata["rewind_step"] = 7
    ex = to_exchange(flow, None)
    assert ex.status is None and ex.error and ex.step == 7


def test_gzip_body_is_kept_decoded_with_consistent_headers() -> None:
    flow = _flow()
    assert flow.response is not None
    flow.response.encode("gzip")
    ex = to_exchange(_numbered(flow), None)
    assert ex.response_body == b'{"ok":true}'
    assert "content-encoding" not in {k.lower() for k, _ in ex.response_headers}


def _numbered(flow: http.HTTPFlow) -> http.HTTPFlow:
    flow.metadata["rewind_step"] = 1
    return flow


def test_a_flow_is_recorded_once_even_if_it_errors_after_its_response() -> None:
    seen: list[Exchange] = []
    recorder = Recorder(seen.append)
    flow = _flow()
    _run(recorder, flow)
    asyncio.run(recorder.error(flow))
    assert len(seen) == 1


def test_a_stream_with_a_content_length_is_buffered_not_streamed() -> None:
    flow = _flow("text/event-stream", b"data: 1\n\n")
    assert flow.response is not None and "content-length" in flow.response.headers
    seen: list[Exchange] = []
    _run(Recorder(seen.append), flow)
    assert flow.response.stream is False
    assert seen[0].chunks is None and seen[0].response_body == b"data: 1\n\n"


def test_stream_chunks_are_views_of_the_one_joined_body() -> None:
    tap = StreamTap(0.0)
    tap(b"ab")
    tap(b"cde")
    body, chunks = tap.joined()
    assert body == b"abcde" and [bytes(c.data) for c in chunks] == [b"ab", b"cde"]
    assert all(isinstance(c.data, memoryview) and c.data.obj is body for c in chunks)


def test_response_hook_returns_only_once_the_sink_has_stored_the_exchange() -> None:
    pending: list[Future[bool]] = []

    def sink(ex: Exchange) -> Future[bool]:
        pending.append(Future())
        return pending[-1]

    async def scenario() -> list[bool]:
        recorder, flow = Recorder(sink), _flow()
        recorder.requestheaders(flow)
        hook = asyncio.ensure_future(recorder.response(flow))
        await asyncio.sleep(0.01)
        waiting = not hook.done()
        threading.Timer(0.01, pending[0].set_result, (True,)).start()  # the sink thread
        await asyncio.wait_for(hook, 5)
        return [waiting, hook.done()]

    assert asyncio.run(scenario()) == [True, True]


def test_on_request_sees_the_logical_url_and_the_agents_headers() -> None:
    seen: list[tuple[str, Headers]] = []
    flow = _flow()
    _run(Recorder(lambda ex: None, on_request=lambda url, h: seen.append((url, h))), flow)
    [(url, headers)] = seen
    assert url == "https://api.openai.com/v1/chat/completions?key=abc"
    assert ("authorization", "Bearer sk-test-fake") in headers
    assert not any(k == "accept-encoding" and v == "identity" for k, v in headers)


def _websocket_flow() -> http.HTTPFlow:
    flow = tflow.twebsocketflow()  # a 101 handshake and a few messages both ways
    flow.request.timestamp_start = flow.websocket.messages[0].timestamp - 0.5  # type: ignore[union-attr]
    return flow


def test_a_websocket_is_kept_when_it_closes_with_every_message_and_the_close() -> None:
    seen: list[Exchange] = []
    recorder, flow = Recorder(seen.append), _websocket_flow()
    with taddons.context(recorder):
        recorder.requestheaders(flow)
        recorder.request(flow)
        asyncio.run(recorder.response(flow))
        assert seen == []  # not at the handshake: the conversation is still to come
        asyncio.run(recorder.websocket_end(flow))
    [ex] = seen
    ws = flow.websocket
    assert ws is not None and ex.status == 101 and ex.error is None
    assert ex.frames is not None and [f.data for f in ex.frames] == [m.content for m in ws.messages]
    assert [f.from_client for f in ex.frames] == [m.from_client for m in ws.messages]
    assert ex.frames[0].t_ms == 500.0
    assert ex.close is not None and ex.close.code == ws.close_code
    assert ex.close.by_client == ws.closed_by_client


def test_a_websocket_still_open_when_the_proxy_stops_is_kept_saying_so() -> None:
    seen: list[Exchange] = []
    recorder, flow = Recorder(seen.append), _websocket_flow()
    flow.websocket.timestamp_end = None  # type: ignore[union-attr]
    with taddons.context(recorder):
        recorder.requestheaders(flow)
        recorder.request(flow)
        asyncio.run(recorder.response(flow))
        recorder.done()
        recorder.done()
    [ex] = seen
    assert ex.error is not None and "still open" in ex.error and ex.close is None


def test_traffic_that_is_not_http_is_reported_once_per_server() -> None:
    said: list[str] = []
    recorder = Recorder(lambda ex: None, notify=said.append)
    for _ in range(3):
        recorder.tcp_start(tflow.ttcpflow())
    assert len(said) == 1 and "UNRECORDED" in said[0] and "not HTTP" in said[0]


def test_the_request_is_prepared_after_its_hook_and_the_work_travels_with_the_exchange() -> None:
    seen: list[Exchange] = []
    prepared: list[Exchange] = []
    recorder = Recorder(seen.append, prepare=lambda ex: prepared.append(ex) or "work")
    flow = _flow()
    response, flow.response = flow.response, None

    async def proxy() -> None:
        recorder.requestheaders(flow)
        recorder.request(flow)
        assert prepared == []  # not on the request's way upstream
        await asyncio.sleep(0)
        flow.response = response
        await recorder.response(flow)

    with taddons.context(recorder):
        asyncio.run(proxy())
    [request] = prepared
    assert request.status is None and request.request_body == b'{"model":"gpt-4o"}'
    [ex] = seen
    assert ex.prepared == "work" and ex.status == 200
