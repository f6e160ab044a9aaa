"""WebSocket transcripts: lossless both ways, loud on damage; what replay matches by."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rewind.canon.websocket import Transcript, decode, encode, message_key, preview, transcript_meaning
from rewind.core.exchange import Close, Frame

frames = st.builds(
    Frame,
    t_ms=st.floats(min_value=0, max_value=1e7, allow_nan=False).map(lambda f: round(f, 3)),
    from_client=st.booleans(),
    text=st.booleans(),
    data=st.binary(max_size=64),
)
closes = st.none() | st.builds(Close, st.just(5.0), st.booleans(), st.none() | st.integers(1000, 4999),
                               st.text(max_size=20))


@given(st.lists(frames, max_size=8).map(tuple), closes)
def test_a_transcript_gives_back_exactly_what_it_was_given(
    fs: tuple[Frame, ...], close: Close | None
) -> None:
    assert decode(encode(fs, close)) == Transcript(fs, close)


def test_the_format_is_one_json_object_per_message() -> None:
    body = encode((Frame(1.5, False, True, b'{"type": "hi"}'), Frame(2.0, True, False, b"\x00\xff")),
                  Close(3.0, True, 1000, ""))
    assert body.splitlines() == [
        b'{"v": 1, "t_ms": 1.5, "from": "server", "text": "{\\"type\\": \\"hi\\"}"}',
        b'{"v": 1, "t_ms": 2.0, "from": "client", "binary": "AP8="}',
        b'{"v": 1, "t_ms": 3.0, "close": "client", "code": 1000, "reason": ""}',
    ]


@pytest.mark.parametrize("body, problem", [
    (b"not json\n", "line 1"),
    (b'{"v": 2, "t_ms": 1, "from": "client", "text": "x"}\n', "version-1"),
    (b'{"v": 1, "t_ms": 1, "from": "nobody", "text": "x"}\n', "unknown side"),
    (b'{"v": 1, "t_ms": 1, "from": "client", "binary": "@@"}\n', "line 1"),
    (b'{"v": 1, "t_ms": 1, "from": "client"}\n', "line 1"),
    (b'{"v": 1, "t_ms": 1, "close": "client", "code": 1000}\n'
     b'{"v": 1, "t_ms": 2, "from": "client", "text": ""}\n', "after the close"),
])
def test_a_damaged_transcript_is_refused_naming_the_line(body: bytes, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        decode(body)


def test_client_messages_match_without_their_event_id_and_in_any_key_order() -> None:
    a = Frame(0, True, True, b'{"type": "response.create", "event_id": "evt_1", "x": 1}')
    b = Frame(9, True, True, b'{"x":1,"type":"response.create","event_id":"evt_2"}')
    c = Frame(0, True, True, b'{"type": "response.create", "x": 2}')
    assert message_key(a) == message_key(b) != message_key(c)
    assert message_key(Frame(0, True, True, b"plain")) != message_key(Frame(0, True, False, b"plain"))


def test_preview_is_short_and_says_what_binary_is() -> None:
    assert preview(Frame(0, True, False, b"\x00" * 5)) == "<binary, 5 bytes>"
    assert len(preview(Frame(0, True, True, b"x" * 500))) == 80


def test_what_a_conversation_means_ignores_times_and_server_issued_ids() -> None:
    def run(session: str, t: float) -> tuple[Frame, ...]:
        created = '{"type": "session.created", "event_id": "e%s", "session": {"id": "%s", "expires_at": %d}}'
        return (Frame(t, False, True, (created % (session, session, t)).encode()),
                Frame(t + 1, True, False, b"\x00"), Frame(t + 2, False, True, b"not json"))
    first, second = transcript_meaning(run("a", 1), None), transcript_meaning(run("b", 7), None)
    assert first.kind == "websocket" and first.digest() == second.digest()
    other = transcript_meaning(run("a", 1)[:2], Close(9, True, 1000))
    assert other.digest() != first.digest()
    assert first.body[0] == {"from": "server", "json": {"type": "session.created", "session": {}}}
