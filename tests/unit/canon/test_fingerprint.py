"""Tests of rewind.canon.fingerprint: the v1 canonical form, its hash and its parts."""

from __future__ import annotations

import copy
import hashlib
import json
import random
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import rfc8785
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from rewind.canon import fingerprint as fp_module
from rewind.canon.fingerprint import (
    FINGERPRINT_VERSION,
    canonical_request,
    describe_parts,
    fingerprint,
    fingerprint_of,
    parse_version,
)
from rewind.canon.providers import Provider
from rewind.canon.redact import redact_url

URL = "https://api.openai.com/v1/chat/completions"
JSON_HEADERS = (("Content-Type", "application/json"),)
FAST = settings(max_examples=60, deadline=None)


def fp(body: Any, url: str = URL, headers: Any = JSON_HEADERS, method: str = "POST") -> str:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return fingerprint(method, url, headers, raw, Provider.OPENAI)


def canon(body: bytes, url: str = URL, headers: Any = JSON_HEADERS) -> dict[str, Any]:
    return canonical_request("post", url, headers, body, None)


def test_public_api() -> None:
    assert sorted(fp_module.__all__) == [
        "FINGERPRINT_VERSION",
        "canonical_body",
        "canonical_request",
        "describe_parts",
        "fingerprint",
        "fingerprint_of",
        "parse_version",
    ]


# --- the canonical form ------------------------------------------------------------


def test_canonical_request_shape() -> None:
    got = canonical_request(
        "post",
        "HTTPS://user:pw@API.OpenAI.com:443/v1/chat/completions?b=2&key=s3cr3t&a=1&a=0",
        (("x-stainless-os", "Linux"), ("CONTENT-TYPE", "Application/JSON; charset=utf-8")),
        b'{"model": "gpt-4o", "user": "u-1"}',
        Provider.OPENAI,
    )
    assert got == {
        "v": 2,
        "method": "POST",
        "host": "api.openai.com",
        "path": "/v1/chat/completions",
        "query": [["a", "0"], ["a", "1"], ["b", "2"]],
        "content_type": "application/json",
        "body": {"model": "gpt-4o"},
    }


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("http://Example.COM:80/x", "example.com"),
        ("https://example.com:8443/x", "example.com:8443"),
        ("http://example.com:443/x", "example.com:443"),
        ("http://127.0.0.1:5000/x", "127.0.0.1:5000"),
        ("http://[::1]:80/x", "[::1]"),
        ("https://[::1]:9000/x", "[::1]:9000"),
    ],
)
def test_host_drops_default_ports(url: str, host: str) -> None:
    assert canon(b"", url)["host"] == host


def test_empty_path_is_slash() -> None:
    assert canon(b"", "http://example.com")["path"] == "/"


@pytest.mark.parametrize("param", ["key", "api_key", "access_token", "KEY"])
def test_secret_query_params_dropped(param: str) -> None:
    assert canon(b"", f"https://h/p?{param}=abc&alt=sse")["query"] == [["alt", "sse"]]


def test_missing_content_type_is_null() -> None:
    assert canon(b"", headers=())["content_type"] is None


def test_body_forms() -> None:
    assert canon(b"")["body"] is None
    assert canon(b"[1, 2]")["body"] == [1, 2]
    form = b"a=1&b=2"
    assert canon(form)["body"] == {"sha256": hashlib.sha256(form).hexdigest()}


@pytest.mark.parametrize(
    "body",
    [
        b'{"n": 9007199254740993}',
        b'{"t": NaN}',
        b'{"t": -Infinity}',
        b'{"s": "\\ud800"}',
        b"\xef\xbb\xbf{}",
        b"[" * 5000 + b"]" * 5000,
    ],
)
def test_json_that_rfc8785_rejects_is_hashed_as_bytes(body: bytes) -> None:
    canonical = canon(body)
    assert canonical["body"] == {"sha256": hashlib.sha256(body).hexdigest()}
    assert fingerprint_of(canonical).startswith("v2:")


def test_floats_and_equal_numbers_share_a_form() -> None:
    assert fp({"temperature": 1}) == fp({"temperature": 1.0})
    assert fp({"temperature": 0.1}) != fp({"temperature": 0.2})


def test_headers_do_not_count_except_content_type() -> None:
    body = {"model": "m"}
    base = fp(body)
    telemetry = JSON_HEADERS + (("x-stainless-retry-count", "1"), ("Authorization", "Bearer x"))
    assert fp(body, headers=telemetry) == base
    assert fp(body, headers=(("content-type", "application/json; charset=utf-8"),)) == base
    assert fp(body, headers=(("content-type", "text/plain"),)) != base


def test_endpoint_counts() -> None:
    body = {"model": "m"}
    assert fp(body, method="PUT") != fp(body)
    assert fp(body, url="https://api.openai.com/v1/responses") != fp(body)
    assert fp(body, url="http://localhost:8000/v1/chat/completions") != fp(body)
    assert fp(body, url=URL + "?api-version=1") != fp(body)


@pytest.mark.parametrize("version", [1, 2])
def test_fingerprint_format_and_known_value(version: int) -> None:
    body = b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hi"}]}'
    canonical = canonical_request("post", URL, JSON_HEADERS, body, None, version)
    expected = (
        b'{"body":{"messages":[{"content":"Hi","role":"user"}],"model":"gpt-4o-mini"},'
        b'"content_type":"application/json","host":"api.openai.com","method":"POST",'
        b'"path":"/v1/chat/completions","query":[],"v":%d}' % version
    )
    assert fingerprint_of(canonical) == f"v{version}:" + hashlib.sha256(expected).hexdigest()
    assert FINGERPRINT_VERSION == 2


def test_canonical_request_is_pure() -> None:
    body = b'{"model": "m", "tools": [{"name": "b"}, {"name": "a"}]}'
    first = canonical_request("POST", URL, JSON_HEADERS, body, None)
    assert canonical_request("POST", URL, JSON_HEADERS, body, None) == first
    assert canonical_request("POST", URL, JSON_HEADERS, body, Provider.ANTHROPIC) == first


@pytest.mark.parametrize(("text", "version"), [("v1:abc123", 1), ("v12:00", 12)])
def test_parse_version(text: str, version: int) -> None:
    assert parse_version(text) == version


@pytest.mark.parametrize("junk", ["", "v1", "v1:", "1:abc", "v0:ab", "v1:XYZ", "v1:ab\n", "vx:ab"])
def test_parse_version_rejects_junk(junk: str) -> None:
    with pytest.raises(ValueError):
        parse_version(junk)


# --- parts -------------------------------------------------------------------------


def test_describe_parts_openai() -> None:
    body = {
        "model": "gpt-4o",
        "messages": [
            {"role": "developer", "content": "Be terse."},
            {"role": "user", "content": "Hi"},
        ],
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "temperature": 0.2,
        "stream": True,
    }
    parts = describe_parts(canon(json.dumps(body).encode()))
    assert parts == {
        "endpoint": {
            "method": "POST",
            "host": "api.openai.com",
            "path": "/v1/chat/completions",
            "query": [],
            "content_type": "application/json",
        },
        "model": "gpt-4o",
        "system": {"role": "developer", "content": "Be terse."},
        "messages": [{"role": "user", "content": "Hi"}],
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "parameters": {"temperature": 0.2, "stream": True},
        "body": None,
    }


def test_describe_parts_anthropic() -> None:
    body = {"model": "claude", "system": "S", "messages": [{"role": "user", "content": "Hi"}]}
    parts = describe_parts(canon(json.dumps(body).encode(), "https://api.anthropic.com/v1/messages"))
    assert (parts["model"], parts["system"], parts["messages"]) == ("claude", "S", body["messages"])
    assert parts["parameters"] == {} and parts["tools"] is None


def test_describe_parts_gemini() -> None:
    body = {
        "systemInstruction": {"parts": [{"text": "S"}]},
        "contents": [{"role": "user", "parts": [{"text": "Hi"}]}],
        "tools": [{"functionDeclarations": [{"name": "b"}, {"name": "a"}]}],
        "generationConfig": {"temperature": 0},
    }
    url = "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:generateContent"
    parts = describe_parts(canon(json.dumps(body).encode(), url))
    assert parts["model"] == "gemini-2.0-flash"
    assert parts["system"] == {"parts": [{"text": "S"}]}
    assert parts["messages"] == body["contents"]
    assert parts["tools"] == [{"name": "a"}, {"name": "b"}]
    assert parts["parameters"] == {"generationConfig": {"temperature": 0}}


def test_describe_parts_responses_api() -> None:
    body = {"model": "gpt-4.1", "instructions": "I", "input": "Hello", "max_output_tokens": 5}
    parts = describe_parts(canon(json.dumps(body).encode(), "https://api.openai.com/v1/responses"))
    assert (parts["system"], parts["messages"]) == ("I", ["Hello"])
    assert parts["parameters"] == {"max_output_tokens": 5}


def test_describe_parts_several_system_pieces() -> None:
    body = {"system": "A", "messages": [{"role": "system", "content": "B"}]}
    assert describe_parts(canon(json.dumps(body).encode()))["system"] == [
        "A",
        {"role": "system", "content": "B"},
    ]


def test_describe_parts_non_json_and_empty() -> None:
    parts = describe_parts(canon(b"a=1"))
    assert parts["body"] == {"sha256": hashlib.sha256(b"a=1").hexdigest()}
    assert parts["messages"] == [] and parts["parameters"] == {} and parts["model"] is None
    assert describe_parts(canon(b""))["body"] is None
    assert describe_parts(canon(b"[1]"))["body"] == [1]


# --- properties --------------------------------------------------------------------

TEXT = st.text(max_size=12)
NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=12,
)
MESSAGES = st.lists(
    st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant"]), "content": TEXT}),
    min_size=1,
    max_size=4,
)
TOOLS = st.lists(NAMES, max_size=4, unique=True).map(
    lambda names: [{"type": "function", "function": {"name": n, "parameters": {}}} for n in names]
)


@st.composite
def chat_bodies(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "model": draw(NAMES),
        "messages": [{"role": "system", "content": draw(TEXT)}, *draw(MESSAGES)],
        "tools": draw(TOOLS),
        "temperature": draw(st.floats(0, 2)),
        "top_p": draw(st.floats(0, 1)),
        "max_tokens": draw(st.integers(1, 4096)),
        "extra": draw(JSON),
    }


def reshuffled(value: Any, rnd: random.Random) -> Any:
    """The same JSON value with every object's keys in another order."""
    if isinstance(value, dict):
        items = list(value.items())
        rnd.shuffle(items)
        return {k: reshuffled(v, rnd) for k, v in items}
    if isinstance(value, list):
        return [reshuffled(v, rnd) for v in value]
    return value


def respaced(value: Any, rnd: random.Random) -> bytes:
    """The same JSON value with other whitespace and escaping."""
    indent = rnd.choice([None, 0, 2, "\t"])
    separators = rnd.choice([(",", ":"), (", ", ": "), (" ,\n", " :  ")])
    text = json.dumps(value, indent=indent, separators=separators, ensure_ascii=rnd.random() < 0.5)
    return ("\n " + text + " \r\n").encode()


@FAST
@given(body=chat_bodies() | JSON, rnd=st.randoms(use_true_random=False))
def test_key_order_and_whitespace_never_count(body: Any, rnd: random.Random) -> None:
    assert fp(respaced(reshuffled(body, rnd), rnd)) == fp(body)


@FAST
@given(body=chat_bodies(), new=NAMES)
def test_model_always_counts(body: dict[str, Any], new: str) -> None:
    assume(new != body["model"])
    assert fp(body | {"model": new}) != fp(body)


@FAST
@given(body=chat_bodies(), data=st.data())
def test_message_content_always_counts(body: dict[str, Any], data: st.DataObject) -> None:
    changed = copy.deepcopy(body)
    index = data.draw(st.integers(1, len(body["messages"]) - 1))
    new = data.draw(TEXT.filter(lambda t: t != body["messages"][index]["content"]))
    changed["messages"][index]["content"] = new
    assert fp(changed) != fp(body)


@FAST
@given(body=chat_bodies(), new=TEXT)
def test_system_prompt_always_counts(body: dict[str, Any], new: str) -> None:
    assume(new != body["messages"][0]["content"])
    changed = copy.deepcopy(body)
    changed["messages"][0]["content"] = new
    assert fp(changed) != fp(body)
    anthropic = {"model": "c", "system": body["messages"][0]["content"], "messages": []}
    assert fp(anthropic | {"system": new}) != fp(anthropic)


@FAST
@given(body=chat_bodies(), name=NAMES, data=st.data())
def test_adding_or_renaming_a_tool_always_counts(
    body: dict[str, Any], name: str, data: st.DataObject
) -> None:
    names = [t["function"]["name"] for t in body["tools"]]
    assume(name not in names)
    added = body | {"tools": [*body["tools"], {"type": "function", "function": {"name": name}}]}
    assert fp(added) != fp(body)
    if names:
        renamed = copy.deepcopy(body)
        renamed["tools"][data.draw(st.integers(0, len(names) - 1))]["function"]["name"] = name
        assert fp(renamed) != fp(body)


@FAST
@given(
    body=chat_bodies(),
    param=st.sampled_from(["temperature", "top_p", "max_tokens"]),
    value=st.floats(0, 4096) | st.integers(0, 4096),
)
def test_sampling_parameters_always_count(body: dict[str, Any], param: str, value: float) -> None:
    assume(value != body[param])
    assert fp(body | {param: value}) != fp(body)
    assert fp({k: v for k, v in body.items() if k != param}) != fp(body)


def tool_conversation(ids: list[str], anthropic: bool) -> dict[str, Any]:
    """A conversation that calls one tool per id and answers each call, in reverse order."""
    turns: list[dict[str, Any]]
    if anthropic:
        uses = [{"type": "tool_use", "id": i, "name": "f", "input": {"n": n}} for n, i in enumerate(ids)]
        results = [{"type": "tool_result", "tool_use_id": i, "content": str(n)} for n, i in enumerate(ids)]
        turns = [{"role": "assistant", "content": uses}, {"role": "user", "content": results[::-1]}]
    else:
        calls = [
            {"id": i, "type": "function", "function": {"name": "f", "arguments": str(n)}}
            for n, i in enumerate(ids)
        ]
        answers = [{"role": "tool", "tool_call_id": i, "content": str(n)} for n, i in enumerate(ids)]
        turns = [{"role": "assistant", "tool_calls": calls}, *answers[::-1]]
    return {"model": "m", "messages": [{"role": "user", "content": "go"}, *turns]}


IDS = st.text(min_size=1, max_size=16)


@FAST
@given(data=st.data(), count=st.integers(1, 4), anthropic=st.booleans())
def test_tool_call_ids_from_two_runs_give_one_fingerprint(
    data: st.DataObject, count: int, anthropic: bool
) -> None:
    run1 = data.draw(st.lists(IDS, min_size=count, max_size=count, unique=True))
    run2 = data.draw(st.lists(IDS, min_size=count, max_size=count, unique=True))
    assert fp(tool_conversation(run1, anthropic)) == fp(tool_conversation(run2, anthropic))


@FAST
@given(ids=st.lists(IDS, min_size=2, max_size=2, unique=True), anthropic=st.booleans())
def test_two_different_tool_calls_stay_different(ids: list[str], anthropic: bool) -> None:
    body = tool_conversation(ids, anthropic)
    swapped = copy.deepcopy(body)
    last = swapped["messages"][-1]
    if anthropic:
        for block in last["content"]:
            block["tool_use_id"] = ids[1] if block["tool_use_id"] == ids[0] else ids[0]
    else:
        answers = swapped["messages"][2:]
        for answer in answers:
            answer["tool_call_id"] = ids[1] if answer["tool_call_id"] == ids[0] else ids[0]
    assert fp(swapped) != fp(body)
    merged = tool_conversation([ids[0], ids[0]], anthropic)
    assert fp(merged) != fp(body)


def _tool_shapes(names: list[str]) -> list[list[Any]]:
    return [
        [{"type": "function", "function": {"name": n}} for n in names],
        [{"type": "function", "name": n} for n in names],
        [{"name": n, "input_schema": {}} for n in names],
        [{"functionDeclarations": [{"name": n} for n in names]}, {"googleSearch": {}}],
    ]


@FAST
@given(names=st.lists(NAMES, min_size=2, max_size=6, unique=True), rnd=st.randoms())
def test_tool_order_never_counts(names: list[str], rnd: random.Random) -> None:
    other = names[:]
    rnd.shuffle(other)
    for tools, shuffled in zip(_tool_shapes(names), _tool_shapes(other), strict=True):
        rnd.shuffle(shuffled)
        assert fp({"model": "m", "tools": shuffled}) == fp({"model": "m", "tools": tools})


@FAST
@given(
    secret=st.text(min_size=1),
    param=st.sampled_from(["key", "api_key", "access_token"]),
    redact=st.booleans(),
)
def test_secret_query_param_never_counts(secret: str, param: str, redact: bool) -> None:
    base = "https://generativelanguage.googleapis.com/v1beta/models/g:generateContent"
    url = f"{base}?{urlencode({'alt': 'sse', param: secret})}"
    url = redact_url(url) if redact else url
    assert fp({"contents": []}, url=url) == fp({"contents": []}, url=f"{base}?alt=sse")


# --- the documented contract -------------------------------------------------------

DOC = Path(__file__).resolve().parents[3] / "docs" / "fingerprint.md"


def _fenced(text: str, tag: str) -> str:
    found = re.search(rf"```{tag}\n(.*?)\n```", text, re.S)
    assert found, f"no ```{tag} block in {DOC}"
    return found.group(1)


def test_worked_example_in_docs_is_what_the_code_computes() -> None:
    doc = DOC.read_text(encoding="utf-8")
    head, _, body = _fenced(doc, "http").partition("\n\n")
    request_line, *header_lines = head.splitlines()
    method, url = request_line.split(" ", 1)
    headers = tuple((k, v) for k, _, v in (h.partition(": ") for h in header_lines))
    canonical = canonical_request(method, url, headers, body.encode(), None)
    assert rfc8785.dumps(canonical).decode() == _fenced(doc, "canonical")
    assert fingerprint_of(canonical) == _fenced(doc, "fingerprint")


# --- version 2 --------------------------------------------------------------------------

RESPONSES = "https://api.openai.com/v1/responses"


def responses_body(run: str, answer: str = "It is 18C.") -> bytes:
    """A Responses API request as an agent sends it on its second turn of one run."""
    return json.dumps({
        "model": "gpt-4.1", "previous_response_id": f"resp_{run}",
        "prompt_cache_key": f"agents-sdk:run:{run}",
        "input": [
            {"type": "message", "id": f"msg_{run}a", "role": "user", "content": "Weather in Paris?"},
            {"type": "reasoning", "id": f"rs_{run}", "summary": [], "encrypted_content": f"gAAA{run}"},
            {"type": "function_call", "id": f"fc_{run}", "call_id": f"call_{run}", "name": "get_weather",
             "arguments": "{\"city\":\"Paris\"}"},
            {"type": "function_call_output", "call_id": f"call_{run}", "output": answer},
            {"type": "item_reference", "id": f"msg_{run}a"},
        ],
    }).encode()


def v(body: bytes, url: str = RESPONSES, version: int = 2) -> str:
    return fingerprint("POST", url, JSON_HEADERS, body, None, version)


def test_v2_two_live_runs_of_a_responses_agent_fingerprint_the_same() -> None:
    assert v(responses_body("r1")) == v(responses_body("r2"))
    assert v(responses_body("r1"), version=1) != v(responses_body("r2"), version=1)  # why v2 exists
    assert v(responses_body("r1")) != v(responses_body("r1", answer="It is 25C."))  # content counts


def test_v2_item_references_stay_tied_to_their_items() -> None:
    body = json.loads(responses_body("r1"))
    body["input"][-1]["id"] = "rs_r1"  # now it points at the reasoning item, not the message
    assert v(json.dumps(body).encode()) != v(responses_body("r1"))


def test_v2_drops_anthropic_cache_markers_and_thinking_signatures() -> None:
    def anthropic(marked: bool, signature: str) -> bytes:
        block = {"type": "text", "text": "Long system prompt."}
        if marked:
            block["cache_control"] = {"type": "ephemeral"}
        thinking = {"type": "thinking", "thinking": "Let me look.", "signature": signature}
        return json.dumps({"model": "claude-sonnet-4-5", "system": [block], "messages": [
            {"role": "user", "content": "Hi"}, {"role": "assistant", "content": [thinking]}]}).encode()

    url = "https://api.anthropic.com/v1/messages"
    assert v(anthropic(True, "EqQBCkYI")) == v(anthropic(False, "ErUBCkYI"), url=RESPONSES)
    assert v(anthropic(True, "a"), url) == v(anthropic(False, "b"), url)
    assert v(anthropic(True, "a"), url, 1) != v(anthropic(False, "a"), url, 1)


def test_v2_drops_gemini_thought_signatures() -> None:
    def gemini(signature: str) -> bytes:
        call = {"name": "get_weather", "args": {"city": "Paris"}}
        part = {"functionCall": call, "thoughtSignature": signature}
        return json.dumps({"contents": [{"role": "model", "parts": [part]}]}).encode()

    url = "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"
    assert v(gemini("CiIBVKhc7q"), url) == v(gemini("CiIBVKhc9z"), url)
