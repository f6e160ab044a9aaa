"""The plain record of one call: its logical host, path and streamed flag."""

from __future__ import annotations

from rewind.core.exchange import Chunk, Exchange, header


def test_host_and_path_come_from_the_logical_url() -> None:
    ex = Exchange(step=1, started_at=0.0, method="GET", url="https://API.example.com:8443/v1/x?a=1")
    assert (ex.host, ex.path) == ("api.example.com:8443", "/v1/x?a=1")


def test_streamed_means_chunks_were_kept() -> None:
    plain = Exchange(step=1, started_at=0.0, method="GET", url="http://h/")
    streamed = Exchange(step=2, started_at=0.0, method="GET", url="http://h/", chunks=(Chunk(1.0, b"x"),))
    assert (plain.streamed, streamed.streamed) == (False, True)


def test_header_lookup_ignores_case_and_takes_the_first() -> None:
    headers = (("Content-Type", "a"), ("content-type", "b"))
    assert header(headers, "CONTENT-TYPE") == "a"
    assert header(headers, "x-missing") is None
