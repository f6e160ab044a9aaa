"""Which recorded server messages answer which client message in a replayed conversation."""

from __future__ import annotations

from rewind.canon.websocket import Transcript
from rewind.core.exchange import Close, Frame
from rewind.replay.wsplay import Conversation, websocket_miss


def server(t: float, text: str) -> Frame:
    return Frame(t, False, True, text.encode())


def client(t: float, text: str) -> Frame:
    return Frame(t, True, True, text.encode())


RECORDED = (server(1, "hello"), client(10, "a"), server(12, "A1"), server(15, "A2"),
            client(20, "b"), server(21, "B"))


def test_the_opening_and_each_answer_come_in_recorded_order_with_their_anchor() -> None:
    talk = Conversation(Transcript(RECORDED))
    assert talk.opening().frames == (RECORDED[0],)
    reply = talk.answer(client(0, "a"))
    assert reply is not None and reply.anchor_ms == 10 and reply.frames == RECORDED[2:4]
    last = talk.answer(client(0, "b"))
    assert last is not None and last.frames == (RECORDED[5],) and last.close is None


def test_an_unknown_or_already_answered_message_is_a_miss() -> None:
    talk = Conversation(Transcript(RECORDED))
    talk.opening()
    assert talk.answer(client(0, "zzz")) is None
    assert talk.answer(client(0, "b")) is not None  # skipping ahead is allowed
    assert talk.answer(client(0, "a")) is None  # but not going back


def test_a_server_close_is_played_after_the_last_messages_and_a_client_close_is_not() -> None:
    by_server = Conversation(Transcript(RECORDED, Close(30, False, 1000, "bye")))
    by_server.opening()
    by_server.answer(client(0, "a"))
    assert by_server.answer(client(0, "b")).close == Close(30, False, 1000, "bye")  # type: ignore[union-attr]
    by_client = Conversation(Transcript(RECORDED, Close(30, True, 1000, "")))
    by_client.opening()
    by_client.answer(client(0, "a"))
    assert by_client.answer(client(0, "b")).close is None  # type: ignore[union-attr]


def test_a_miss_report_names_the_message_and_the_close() -> None:
    miss = websocket_miss("wss://api.example/v1/realtime?key=s3cret", client(0, '{"type": "x"}'))
    assert 'not in the recording: {"type": "x"}' in miss.headline()
    assert "1011" in miss.text() and miss.to_json()["websocket_message"] == '{"type": "x"}'
