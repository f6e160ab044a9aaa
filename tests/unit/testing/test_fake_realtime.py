"""The fake provider's OpenAI Realtime endpoint, over a real WebSocket and with no proxy.

Most tests drive it with :class:`WsClient`, a few lines of wsproto (Rewind's own
environment has no WebSocket client library), which checks the handshake (the accept
key, the subprotocol) as any client does. One test runs ``tests/clients/ws_agent.py``
on the websockets library of ``.venv-clients``.
"""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Message,
    Ping,
    Pong,
    RejectConnection,
    Request,
    TextMessage,
)

from rewind.testing import fake_realtime
from rewind.testing.fake_provider import FakeProvider
from rewind.testing.fake_realtime import accept_key

from .conftest import paced

WS_AGENT = Path(__file__).resolve().parents[2] / "clients" / "ws_agent.py"
TARGET = "/v1/realtime?model=gpt-4o-realtime-preview"
AUTH = [("Authorization", "Bearer sk-test-fake")]
UPGRADE = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
           "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}  # fmt: skip
Received = str | bytes | Event


class WsClient:
    """A minimal WebSocket client: whole messages in and out, other events as they come."""

    opened: list[WsClient] = []  # closed after each test

    def __init__(self, port: int, target: str = TARGET, headers: Any = None, subprotocols: Any = ()) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        WsClient.opened.append(self)
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.pending: deque[Event] = deque()
        extra = [(k.encode(), v.encode()) for k, v in (AUTH if headers is None else headers)]
        request = Request("127.0.0.1", target, extra_headers=extra, subprotocols=list(subprotocols))
        self.sock.sendall(self.ws.send(request))
        self.handshake = self.next_event()

    def next_event(self) -> Event:
        while not self.pending:
            data = self.sock.recv(65536)
            self.ws.receive_data(data or None)
            self.pending.extend(self.ws.events())
        return self.pending.popleft()

    def recv(self) -> Received:
        """The next whole message (``str`` or ``bytes``), or the next other event."""
        parts: list[Any] = []
        while isinstance(received := self.next_event(), Message):
            parts.append(received.data)
            if received.message_finished:
                return "".join(parts) if isinstance(received, TextMessage) else b"".join(parts)
        return received

    def recv_json(self) -> dict[str, Any]:
        message = self.recv()
        assert isinstance(message, str), message
        value: dict[str, Any] = json.loads(message)
        return value

    def send(self, event: Event) -> None:
        self.sock.sendall(self.ws.send(event))

    def send_json(self, value: Any) -> None:
        self.send(TextMessage(json.dumps(value)))

    def ask(self, value: Any) -> dict[str, Any]:
        self.send_json(value)
        return self.recv_json()

    def at_eof(self) -> bool:
        """Whether the server closed the TCP connection (nothing more to read)."""
        return self.sock.recv(1) == b""

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(autouse=True)
def close_clients() -> Iterator[None]:
    yield
    while WsClient.opened:
        WsClient.opened.pop().close()


@pytest.fixture
def connect(fake_provider: FakeProvider) -> Callable[..., WsClient]:
    """``connect(**kw)``: an accepted client whose ``session.created`` was read."""

    def make(**kw: Any) -> WsClient:
        client = WsClient(fake_provider.port, **kw)
        assert isinstance(client.handshake, AcceptConnection), client.handshake
        assert client.recv_json()["type"] == "session.created"
        return client

    return make


def user_item(text: str) -> dict[str, Any]:
    item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
    return {"type": "conversation.item.create", "item": item}


def response(client: WsClient, text: str) -> list[dict[str, Any]]:
    """The events answering ``text``, ``response.created`` to ``response.done``."""
    assert client.ask(user_item(text))["type"] == "conversation.item.created"
    client.send_json({"type": "response.create"})
    events = [client.recv_json()]
    while events[-1]["type"] != "response.done":
        events.append(client.recv_json())
    return events


def upgrade_status(fake: FakeProvider, headers: dict[str, str]) -> tuple[int, dict[str, str], Any]:
    """A handshake request over plain HTTP: (status, lower-cased headers, JSON body)."""
    connection = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=5)
    connection.request("GET", TARGET, headers=headers)
    reply = connection.getresponse()
    result = reply.status, {k.lower(): v for k, v in reply.getheaders()}, json.loads(reply.read())
    connection.close()
    return result


# --- handshake ------------------------------------------------------------------------------


def test_public_names_are_pinned() -> None:
    assert sorted(fake_realtime.__all__) == [
        "PATHS", "accept_key", "converse", "forget_messages", "handles", "handshake", "is_upgrade",
        "messages_received",
    ]  # fmt: skip


def test_accept_key_is_the_rfc_6455_example() -> None:
    assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_session_created_comes_first_with_the_model_and_fresh_ids(fake_provider: FakeProvider) -> None:
    clients = [WsClient(fake_provider.port, target="/v1/realtime?model=gpt-x") for _ in "ab"]
    first, second = (client.recv_json() for client in clients)
    assert first["type"] == "session.created" and first["session"]["model"] == "gpt-x"
    assert first["event_id"].startswith("event_") and first["session"]["id"].startswith("sess_")
    assert first["session"]["id"] != second["session"]["id"]
    assert all(isinstance(c.handshake, AcceptConnection) and c.handshake.subprotocol is None for c in clients)


def test_a_missing_model_gets_the_default_and_model_versions_apply(fake_provider: FakeProvider) -> None:
    fake_provider.context.model_versions["gpt-y"] = "gpt-y-2025-06-03"
    models = [WsClient(fake_provider.port, target=t).recv_json()["session"]["model"]
              for t in ("/v1/realtime", "/v1/realtime?model=gpt-y")]  # fmt: skip
    assert models == ["gpt-4o-realtime-preview", "gpt-y-2025-06-03"]


@pytest.mark.parametrize("headers", [AUTH, [("api-key", "sk-test-fake")]])
def test_a_bearer_token_or_api_key_header_is_accepted(connect: Callable[..., WsClient], headers: Any) -> None:
    connect(headers=headers)


def test_the_key_in_a_subprotocol_counts_and_realtime_is_echoed() -> None:
    offered = ["realtime", "openai-insecure-api-key.sk-browser", "openai-beta.realtime-v1"]
    with FakeProvider(api_key="sk-browser") as fake:
        client = WsClient(fake.port, headers=[], subprotocols=offered)
        assert isinstance(client.handshake, AcceptConnection)
        assert client.handshake.subprotocol == "realtime"


def test_no_key_gets_401_with_an_openai_error_and_no_upgrade(fake_provider: FakeProvider) -> None:
    status, headers, body = upgrade_status(fake_provider, UPGRADE)
    assert status == 401 and "upgrade" not in headers
    assert body["error"]["type"] == "invalid_request_error"
    assert "You didn't provide an API key" in body["error"]["message"]
    assert isinstance(WsClient(fake_provider.port, headers=[]).handshake, RejectConnection)


def test_a_wrong_key_gets_401_invalid_api_key() -> None:
    with FakeProvider(api_key="sk-right") as fake:
        status, _, body = upgrade_status(fake, {**UPGRADE, "Authorization": "Bearer sk-wrong"})
    assert (status, body["error"]["code"]) == (401, "invalid_api_key")


def test_a_get_without_upgrade_gets_400(fake_provider: FakeProvider) -> None:
    status, headers, body = upgrade_status(fake_provider, dict(AUTH))
    assert status == 400 and headers["content-type"] == "application/json"
    assert "WebSocket" in body["error"]["message"]


def test_another_websocket_version_gets_426_naming_13(fake_provider: FakeProvider) -> None:
    old_version = {**UPGRADE, **dict(AUTH), "Sec-WebSocket-Version": "8"}
    status, headers, _ = upgrade_status(fake_provider, old_version)
    assert (status, headers["sec-websocket-version"]) == (426, "13")


# --- the conversation -----------------------------------------------------------------------


def test_an_item_is_confirmed_with_an_id_and_the_same_content(connect: Callable[..., WsClient]) -> None:
    created = connect().ask(user_item("Hi there"))
    assert created["type"] == "conversation.item.created" and created["event_id"].startswith("event_")
    assert created["item"]["id"].startswith("item_") and created["item"]["role"] == "user"
    assert created["item"]["content"] == [{"type": "input_text", "text": "Hi there"}]


def test_a_response_streams_one_delta_per_word_then_usage(connect: Callable[..., WsClient]) -> None:
    events = response(connect(), "Hi there")
    kinds = [e["type"] for e in events]
    assert kinds == ["response.created", *["response.text.delta"] * 8, "response.text.done", "response.done"]
    deltas = [e["delta"] for e in events if e["type"] == "response.text.delta"]
    assert deltas[:2] == ["This ", "is "] and "".join(deltas) == "This is a fake answer to: Hi there"
    response_id = events[0]["response"]["id"]
    assert response_id.startswith("resp_") and {e["response_id"] for e in events[1:-1]} == {response_id}
    done = events[-1]["response"]
    assert done["status"] == "completed" and done["output"][0]["content"][0]["text"] == "".join(deltas)
    assert done["usage"] == {"total_tokens": 10, "input_tokens": 2, "output_tokens": 8}
    assert len({e["event_id"] for e in events}) == len(events)


def test_the_answer_is_to_the_last_user_text(connect: Callable[..., WsClient]) -> None:
    client = connect()
    response(client, "first")
    assert response(client, "second")[-1]["response"]["output"][0]["content"][0]["text"] == (
        "This is a fake answer to: second"
    )


def test_text_that_is_not_json_is_echoed(connect: Callable[..., WsClient]) -> None:
    client = connect()
    client.send(TextMessage("plain words {"))
    assert client.recv_json() == {"type": "echo", "text": "plain words {"}


def test_a_binary_message_is_echoed(connect: Callable[..., WsClient]) -> None:
    client = connect()
    client.send(BytesMessage(b"\x00\x01\xfe\xff"))
    assert client.recv() == b"\x00\x01\xfe\xff"


def test_a_message_in_fragments_is_one_message(
    connect: Callable[..., WsClient], fake_provider: FakeProvider
) -> None:
    client = connect()
    client.send(TextMessage("frag", message_finished=False))
    client.send(TextMessage("ments", message_finished=True))
    assert client.recv_json() == {"type": "echo", "text": "fragments"}
    assert fake_provider.ws_messages == 1


@pytest.mark.parametrize(
    ("message", "code"),
    [({"type": "bogus.event"}, "invalid_value"), ([1, 2], "invalid_json"),
     ({"type": "conversation.item.create"}, "missing_required_parameter")],
)  # fmt: skip
def test_bad_events_get_an_error_event(connect: Callable[..., WsClient], message: Any, code: str) -> None:
    error = connect().ask(message)
    assert error["type"] == "error" and error["event_id"].startswith("event_")
    assert error["error"]["type"] == "invalid_request_error" and error["error"]["code"] == code


def test_an_error_names_the_client_event_that_caused_it(connect: Callable[..., WsClient]) -> None:
    error = connect().ask({"type": "bogus.event", "event_id": "evt_client_1"})
    assert error["error"]["event_id"] == "evt_client_1" and error["error"]["param"] == "type"


def test_session_update_is_confirmed(connect: Callable[..., WsClient]) -> None:
    updated = connect().ask({"type": "session.update", "session": {"instructions": "Be brief.", "id": "x"}})
    assert updated["type"] == "session.updated" and updated["session"]["instructions"] == "Be brief."
    assert updated["session"]["id"].startswith("sess_")


def test_session_close_makes_the_server_close_with_1000_bye(connect: Callable[..., WsClient]) -> None:
    client = connect()
    client.send_json({"type": "session.close"})
    closing = client.recv()
    assert isinstance(closing, CloseConnection) and (closing.code, closing.reason) == (1000, "bye")
    client.send(closing.response())
    assert client.at_eof()


def test_a_client_close_is_answered_then_the_connection_ends(connect: Callable[..., WsClient]) -> None:
    client = connect()
    client.send(CloseConnection(1000, "done"))
    answer = client.recv()
    assert isinstance(answer, CloseConnection) and (answer.code, answer.reason) == (1000, "done")
    assert client.at_eof()


def test_a_ping_gets_a_pong_and_is_not_a_message(
    connect: Callable[..., WsClient], fake_provider: FakeProvider
) -> None:
    client = connect()
    client.send(Ping(b"are you there"))
    assert client.recv() == Pong(b"are you there")
    assert fake_provider.ws_messages == 0


def test_drop_marker_cuts_the_connection_without_a_close_frame(connect: Callable[..., WsClient]) -> None:
    client = connect()
    client.ask(user_item("crash [[drop]]"))
    client.send_json({"type": "response.create"})
    ended = client.recv()
    assert isinstance(ended, CloseConnection) and ended.code == 1006  # no close frame came


# --- counting, pacing, stopping -------------------------------------------------------------


def test_a_connection_is_one_request_and_each_message_is_counted(
    connect: Callable[..., WsClient], fake_provider: FakeProvider
) -> None:
    client = connect()
    client.send(TextMessage("one"))
    client.send(BytesMessage(b"two"))
    client.send_json({"type": "bogus"})
    assert [type(client.recv()) for _ in range(3)] == [str, bytes, str]
    assert (fake_provider.request_count, fake_provider.ws_messages) == (1, 3)
    request = fake_provider.requests[0]
    assert (request.method, request.path, request.query) == ("GET", "/v1/realtime", TARGET.split("?")[1])
    assert request.headers["upgrade"].lower() == "websocket"
    fake_provider.reset()
    assert (fake_provider.request_count, fake_provider.ws_messages) == (0, 0)


def test_refused_handshakes_are_requests_too(fake_provider: FakeProvider) -> None:
    upgrade_status(fake_provider, UPGRADE)
    assert (fake_provider.request_count, fake_provider.ws_messages) == (1, 0)


def timed_response(client: WsClient, text: str) -> list[tuple[float, dict[str, Any]]]:
    """The response's events, each with the seconds since ``response.create`` was sent."""
    client.ask(user_item(text))
    client.send_json({"type": "response.create"})
    start = time.monotonic()
    events: list[tuple[float, dict[str, Any]]] = []
    while not events or events[-1][1]["type"] != "response.done":
        event = client.recv_json()
        events.append((time.monotonic() - start, event))
    return events


def test_the_chunk_delay_paces_the_deltas() -> None:
    with FakeProvider(chunk_delay_ms=40) as fake:
        client = WsClient(fake.port)
        client.recv_json()
        events = timed_response(client, "Hi")
    times = [at for at, _ in events]
    assert sum(e["type"] == "response.text.delta" for _, e in events) == 7
    assert paced(times, 0.040) and not paced(times, 0.4)


def test_a_delay_marker_overrides_the_chunk_delay(connect: Callable[..., WsClient]) -> None:
    events = timed_response(connect(), "Hi [[delay:40]]")
    times = [at for at, _ in events]
    assert paced(times, 0.040) and not paced(times, 0.4)
    assert events[-1][1]["response"]["output"][0]["content"][0]["text"] == "This is a fake answer to: Hi"


def connected(fake: FakeProvider) -> tuple[WsClient, list[threading.Thread]]:
    """A client past ``session.created``, and the server threads its connection started."""
    before = set(threading.enumerate())
    client = WsClient(fake.port)
    assert client.recv_json()["type"] == "session.created"
    return client, [thread for thread in threading.enumerate() if thread not in before]


def assert_stops_promptly(fake: FakeProvider, threads: list[threading.Thread], client: WsClient) -> None:
    started = time.monotonic()
    fake.stop()
    for thread in threads:
        thread.join(timeout=2)
    assert time.monotonic() - started < 1.5
    assert threads and not any(thread.is_alive() for thread in threads)
    ended = client.recv()  # the socket was cut without a close frame: wsproto says 1006
    assert isinstance(ended, CloseConnection) and ended.code == 1006


def test_stop_cuts_an_open_websocket_and_its_thread_ends() -> None:
    fake = FakeProvider().start()
    client, threads = connected(fake)
    assert_stops_promptly(fake, threads, client)


def test_stop_does_not_wait_for_a_slow_response() -> None:
    fake = FakeProvider().start()
    client, threads = connected(fake)
    client.ask(user_item("slowly [[delay:5000]]"))
    client.send_json({"type": "response.create"})
    assert client.recv_json()["type"] == "response.created"
    assert_stops_promptly(fake, threads, client)


# --- a real client library ------------------------------------------------------------------


def test_ws_agent_speaks_the_whole_protocol_with_the_websockets_library(
    fake_provider: FakeProvider, clients_python: Path, client_env: Callable[..., dict[str, str]]
) -> None:
    url = f"ws://127.0.0.1:{fake_provider.port}{TARGET}"
    run = subprocess.run([str(clients_python), str(WS_AGENT), url], env=client_env(),
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [
        "session: session.created model=gpt-4o-realtime-preview",
        "item: user hello over websocket",
        "answer (9 deltas): This is a fake answer to: hello over websocket",
        "usage: total_tokens=12",
        "echo: this is not json",
        "binary: 0001feff",
        "close: 1000 bye",
    ]
    assert (fake_provider.request_count, fake_provider.ws_messages) == (1, 5)


def test_ws_agent_exits_1_with_a_message_when_refused(
    fake_provider: FakeProvider, clients_python: Path, client_env: Callable[..., dict[str, str]]
) -> None:
    url = f"ws://127.0.0.1:{fake_provider.port}{TARGET}"
    run = subprocess.run([str(clients_python), str(WS_AGENT), url], env=client_env(OPENAI_API_KEY=""),
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert (run.returncode, run.stdout, run.stderr) == (1, "", "error: handshake refused: HTTP 401\n")
