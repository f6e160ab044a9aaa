"""Tests of rewind.replay.edits: `rewind branch --response` and `--request-patch`, checked
before anything runs, and RFC 7396 merge patches exactly as the RFC defines them."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rewind.canon.sse import parse_sse
from rewind.errors import ConfigError
from rewind.replay import edits
from rewind.replay.edits import edited_response, load_json_file, merge_patch, patch_request

from .factories import make_step
from .fake_recordings import recorded

# --- merge_patch: RFC 7396 -------------------------------------------------------------------

# Appendix A of RFC 7396: (original, patch, result).
RFC_EXAMPLES = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


def test_public_api() -> None:
    assert sorted(edits.__all__) == ["edited_response", "load_json_file", "merge_patch", "patch_request"]


@pytest.mark.parametrize(("target", "patch", "result"), RFC_EXAMPLES)
def test_rfc_7396_appendix_a(target: Any, patch: Any, result: Any) -> None:
    assert merge_patch(target, patch) == result


def test_rfc_7396_section_3_example() -> None:
    target = {
        "title": "Goodbye!",
        "author": {"givenName": "John", "familyName": "Doe"},
        "tags": ["example", "sample"],
        "content": "This will be unchanged",
    }
    patch = {"title": "Hello!", "phoneNumber": "+01-123-456-7890", "author": {"familyName": None},
             "tags": ["example"]}  # fmt: skip
    assert merge_patch(target, patch) == {
        "title": "Hello!",
        "author": {"givenName": "John"},
        "tags": ["example"],
        "content": "This will be unchanged",
        "phoneNumber": "+01-123-456-7890",
    }


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("abcd"), inner, max_size=4),
    max_leaves=12,
)


@given(JSON_VALUES, JSON_VALUES)
def test_merge_patch_never_changes_its_inputs(target: Any, patch: Any) -> None:
    before = copy.deepcopy((target, patch))
    merge_patch(target, patch)
    assert (target, patch) == before


@given(JSON_VALUES, JSON_VALUES)
def test_a_merge_patch_applied_twice_changes_nothing_more(target: Any, patch: Any) -> None:
    once = merge_patch(target, patch)
    assert merge_patch(once, patch) == once


# --- load_json_file ---------------------------------------------------------------------------


def test_a_json_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "patch.json"
    path.write_bytes(b'\xef\xbb\xbf{"temperature": 0.5, "name": "\xc3\xa9"}')  # a byte-order mark is fine
    assert load_json_file(path, "--request-patch") == {"temperature": 0.5, "name": "é"}


def test_a_missing_file_is_named_with_its_option(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"--request-patch .*nope\.json: no such file"):
        load_json_file(tmp_path / "nope.json", "--request-patch")


def test_a_directory_cannot_be_read(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--request-patch .* cannot be read"):
        load_json_file(tmp_path, "--request-patch")


def test_a_file_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "latin1.json"
    path.write_bytes(b'{"name": "caf\xe9"}')
    with pytest.raises(ConfigError, match=r"latin1\.json is not UTF-8 text \(byte 13 is 0xe9\)"):
        load_json_file(path, "--request-patch")


def test_invalid_json_says_where(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{\n  "model": "gpt-4o",\n  "temperature": 0.5,\n}\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_json_file(path, "--request-patch")
    assert str(caught.value) == (
        f"--request-patch {path} is not valid JSON: Expecting property name enclosed in double quotes"
        " at line 4, column 1"
    )


@pytest.mark.parametrize("text", ["NaN", '{"a": Infinity}', ""])
def test_what_json_does_not_allow_is_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "odd.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match="is not valid JSON"):
        load_json_file(path, "--request-patch")


# --- patch_request ----------------------------------------------------------------------------


def test_a_request_is_patched_and_sent_compact() -> None:
    messages = [{"role": "user", "content": "héllo"}]
    body = json.dumps({"model": "gpt-4o", "temperature": 1, "messages": messages}).encode()
    patched = patch_request(body, {"model": "gpt-4o-mini", "temperature": None}, step=2)
    assert patched == '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"héllo"}]}'.encode()


@pytest.mark.parametrize("body", [b"", b"name=value&x=1", b"\xff\xfe", b"{broken"])
def test_a_request_that_is_not_json_cannot_be_patched(body: bytes) -> None:
    with pytest.raises(ConfigError) as caught:
        patch_request(body, {"a": 1}, step=4)
    assert str(caught.value) == "step 4's request body is not JSON, so --request-patch cannot apply"


# --- edited_response: the status --------------------------------------------------------------


@pytest.mark.parametrize("status", [0, 99, 600, 1000, -1])
def test_a_status_outside_http_is_refused(status: int) -> None:
    with pytest.raises(ConfigError, match=f"--status {status} is not an HTTP status: .*100 to 599"):
        edited_response(make_step(1, provider=None), b"x", status)


def test_the_status_defaults_to_the_recorded_one_else_200() -> None:
    assert edited_response(make_step(1, provider=None, status=201, reason="Created"), b"x").status == 201
    served = edited_response(make_step(1, provider=None, status=None), b"x")
    assert (served.status, served.reason) == (200, "OK")


def test_a_new_status_gets_its_own_reason() -> None:
    served = edited_response(make_step(1, provider=None, status=200, reason="OK"), b"x", status=418)
    assert (served.status, served.reason) == (418, "I'm a Teapot")


# --- edited_response: what each provider's client can read --------------------------------------

PROVIDER_KINDS = ["openai", "responses", "anthropic", "gemini"]


@pytest.mark.parametrize("kind", PROVIDER_KINDS)
@pytest.mark.parametrize("tools", [False, True])
def test_a_providers_own_json_answer_is_served_whole(kind: str, tools: bool) -> None:
    step, body, _ = recorded(kind, stream=False, tools=tools)
    served = edited_response(step, body)
    assert (served.status, served.reason, served.body, served.chunks) == (200, "OK", body, None)
    assert dict(served.headers) == {"content-type": "application/json", "x-request-id": "req_1"}


@pytest.mark.parametrize("kind", PROVIDER_KINDS)
@pytest.mark.parametrize("tools", [False, True])
def test_a_providers_own_stream_is_served_an_event_a_chunk(kind: str, tools: bool) -> None:
    step, body, _ = recorded(kind, stream=True, tools=tools)
    served = edited_response(step, body)
    assert served.body == body and served.chunks is not None
    assert [t for t, _ in served.chunks] == [0.0] * len(parse_sse(body))
    assert b"".join(data for _, data in served.chunks) == body
    assert dict(served.headers)["content-type"].startswith("text/event-stream")
    assert "content-length" not in dict(served.headers)


def test_a_gemini_json_array_stream_takes_json() -> None:
    step, body, _ = recorded("gemini-array", stream=True)
    served = edited_response(step, body)
    assert served.chunks == ((0.0, body),)
    assert dict(served.headers)["content-type"].startswith("application/json")


def _error_body(kind: str) -> bytes:
    if kind == "anthropic":
        return b'{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}'
    if kind == "gemini":
        return b'{"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}}'
    return b'{"error": {"message": "overloaded", "type": "server_error", "param": null, "code": null}}'


@pytest.mark.parametrize("kind", PROVIDER_KINDS)
def test_an_error_body_with_an_error_status_is_served_unstreamed(kind: str) -> None:
    step, _, _ = recorded(kind, stream=True)
    served = edited_response(step, _error_body(kind), status=503)
    assert (served.status, served.reason, served.chunks) == (503, "Service Unavailable", None)
    assert dict(served.headers)["content-type"] == "application/json"


@pytest.mark.parametrize("kind", PROVIDER_KINDS)
def test_an_error_body_needs_an_error_status(kind: str) -> None:
    step, _, _ = recorded(kind, stream=False)
    with pytest.raises(ConfigError, match="error body but the status is 200") as caught:
        edited_response(step, _error_body(kind))
    assert "--status" in (caught.value.hint or "")
    assert edited_response(step, _error_body(kind), status=503).status == 503


def test_a_stream_may_end_in_an_error_event_after_a_200() -> None:
    step, _, _ = recorded("anthropic", stream=True)
    body = b'event: error\ndata: {"type": "error", "error": {"type": "overloaded_error", "message": "x"}}\n\n'
    assert edited_response(step, body).chunks == ((0.0, body),)


@pytest.mark.parametrize("kind", PROVIDER_KINDS)
def test_json_for_a_streamed_step_is_refused(kind: str) -> None:
    step, _, _ = recorded(kind, stream=True)
    _, json_body, _ = recorded(kind, stream=False)
    with pytest.raises(ConfigError, match="step 3 was streamed, so the --response body must be a stream"):
        edited_response(step, json_body)


@pytest.mark.parametrize("kind", PROVIDER_KINDS)
def test_a_stream_for_a_json_step_is_refused(kind: str) -> None:
    step, _, _ = recorded(kind, stream=False)
    _, sse_body, _ = recorded(kind, stream=True)
    with pytest.raises(ConfigError, match="step 3's response was JSON, so the --response body must be JSON"):
        edited_response(step, sse_body)


@pytest.mark.parametrize("kind", PROVIDER_KINDS)
@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"model": "x", "choices": [}', r"is not valid JSON: Expecting value at line 1, column 28"),
        (b'{"text": "caf\xe9"}', r"is not UTF-8 text"),
        (b'{"hello": "world"}', r"is not a \w+ response that step 3's client could read"),
        (b"[1, 2, 3]", r"is not a \w+ response"),
        (b"", r"is not valid JSON"),
        (b"plain words", r"is not valid JSON"),
    ],
)
def test_a_response_file_the_client_cannot_read_is_refused(kind: str, body: bytes, message: str) -> None:
    step, _, _ = recorded(kind, stream=False)
    with pytest.raises(ConfigError, match=message):
        edited_response(step, body)


@pytest.mark.parametrize("kind", PROVIDER_KINDS)
@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "holds no server-sent event"),
        (b": only a comment\n\n", "holds no server-sent event"),
        (b'data: {"hello": "world"}\n\n', r"is not a \w+ stream"),
        (b"data: [DONE]\n\n", r"is not a \w+ stream"),
    ],
)
def test_a_stream_file_the_client_cannot_read_is_refused(kind: str, body: bytes, message: str) -> None:
    step, _, _ = recorded(kind, stream=True)
    with pytest.raises(ConfigError, match=message):
        edited_response(step, body)


@pytest.mark.parametrize(("step_kind", "other"), [("openai", "anthropic"), ("anthropic", "gemini"),
                                                  ("gemini", "openai")])  # fmt: skip
@pytest.mark.parametrize("stream", [False, True])
def test_another_providers_answer_is_refused(step_kind: str, other: str, stream: bool) -> None:
    step, _, _ = recorded(step_kind, stream=stream)
    _, body, _ = recorded(other, stream=stream)
    with pytest.raises(ConfigError, match=f"is not a {step_kind} "):
        edited_response(step, body)


def test_a_refusal_hints_at_the_expected_shape_and_where_to_start() -> None:
    step, _, _ = recorded("anthropic", stream=False)
    with pytest.raises(ConfigError) as caught:
        edited_response(step, b"{}")
    assert '"type": "message"' in (caught.value.hint or "")
    assert "rewind inspect SESSION --step 3 --raw" in (caught.value.hint or "")


# --- edited_response: plain HTTP -------------------------------------------------------------


def test_a_plain_http_step_takes_any_bytes() -> None:
    headers = (("content-type", "text/html"), ("content-length", "9"), ("content-encoding", "br"))
    step = make_step(1, provider=None, kind="http", response_headers=headers)
    served = edited_response(step, b"\xff\x00 anything")
    assert served.body == b"\xff\x00 anything" and served.chunks is None
    assert served.headers == (("content-type", "text/html"),)


def test_a_streamed_plain_http_step_is_streamed_by_event() -> None:
    step = make_step(1, provider=None, kind="http", streamed=True, chunks=((0.0, 5),))
    served = edited_response(step, b"data: 1\n\ndata: 2\n\n")
    assert served.chunks == ((0.0, b"data: 1\n\n"), (0.0, b"data: 2\n\n"))
    assert edited_response(step, b"not sse").chunks == ((0.0, b"not sse"),)
    assert edited_response(step, b"").chunks == ()
