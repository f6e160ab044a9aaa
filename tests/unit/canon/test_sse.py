"""Tests of rewind.canon.sse: parsing recorded server-sent event streams."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rewind.canon import sse
from rewind.canon.sse import SseEvent, parse_sse


def test_public_api() -> None:
    assert sorted(sse.__all__) == ["SseEvent", "iter_sse", "parse_sse"]


def test_named_events_with_lf() -> None:
    body = b'event: message_start\ndata: {"a":1}\n\nevent: ping\ndata: {}\n\n'
    assert parse_sse(body) == [SseEvent("message_start", '{"a":1}'), SseEvent("ping", "{}")]


def test_crlf_and_cr_line_endings() -> None:
    assert parse_sse(b"data: a\r\n\r\ndata: b\r\rdata: c\n\n") == [
        SseEvent(None, "a"),
        SseEvent(None, "b"),
        SseEvent(None, "c"),
    ]


def test_multi_line_data_is_joined_with_newlines() -> None:
    assert parse_sse(b"data: one\ndata: two\ndata:three\n\n") == [SseEvent(None, "one\ntwo\nthree")]


def test_comments_and_unknown_fields_are_ignored() -> None:
    body = b": keep-alive\nid: 7\nretry: 100\ndata: x\n\n:done\n\n"
    assert parse_sse(body) == [SseEvent(None, "x")]


def test_last_event_without_blank_line_is_kept() -> None:
    assert parse_sse(b"data: a\n\ndata: [DONE]") == [SseEvent(None, "a"), SseEvent(None, "[DONE]")]


def test_event_without_data_is_not_dispatched() -> None:
    assert parse_sse(b"event: ping\n\ndata: x\n\n") == [SseEvent(None, "x")]


def test_only_one_space_after_the_colon_is_stripped() -> None:
    assert parse_sse(b"data:  two spaces\n\n") == [SseEvent(None, " two spaces")]


def test_bom_and_invalid_utf8_do_not_raise() -> None:
    assert parse_sse(b"\xef\xbb\xbfdata: \xff ok\n\n") == [SseEvent(None, "\ufffd ok")]


def test_empty_body() -> None:
    assert parse_sse(b"") == []


_DATA = st.text(alphabet=st.characters(blacklist_characters="\r\n", codec="utf-8"), max_size=20)


@given(
    events=st.lists(st.tuples(st.none() | st.from_regex(r"[a-z_]{1,10}", fullmatch=True), _DATA)),
    newline=st.sampled_from(["\n", "\r\n", "\r"]),
)
def test_round_trip_with_any_line_ending(events: list[tuple[str | None, str]], newline: str) -> None:
    text = "".join(
        (f"event: {name}{newline}" if name else "") + f"data: {data}{newline}{newline}"
        for name, data in events
    )
    assert parse_sse(text.encode()) == [SseEvent(name, data) for name, data in events]


@given(st.binary(max_size=200))
def test_never_raises(body: bytes) -> None:
    assert isinstance(parse_sse(body), list)


def test_iter_sse_yields_events_one_at_a_time_from_bytes_or_a_view() -> None:
    body = b"\xef\xbb\xbfdata: one\r\n\r\nevent: x\ndata: two\ndata: 2\n\ndata: cut"
    events = sse.iter_sse(memoryview(body))
    assert next(events) == sse.SseEvent(None, "one")
    assert list(events) == [sse.SseEvent("x", "two\n2"), sse.SseEvent(None, "cut")]
