"""Tests of rewind.canon.redact: no secret survives into a redacted exchange or text."""

from __future__ import annotations

import base64
import re
from dataclasses import fields
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewind.canon import redact
from rewind.canon.redact import (
    REDACTED,
    RedactionPolicy,
    exchange_secrets,
    redact_bytes,
    redact_exchange,
    redact_headers,
    redact_text,
    redact_url,
)
from rewind.core.exchange import Chunk, Exchange
from rewind.errors import ConfigError

KEY = "sk-live-4f9a8b7c6d5e"
NO_POLICY = RedactionPolicy()


def make_exchange(**changes: Any) -> Exchange:
    """A plain OpenAI chat exchange; ``changes`` override its fields."""
    base: dict[str, Any] = {
        "step": 1,
        "started_at": 0.0,
        "method": "POST",
        "url": "https://api.openai.com/v1/chat/completions",
        "request_headers": (("Content-Type", "application/json"),),
        "request_body": b'{"model":"gpt-4o"}',
        "status": 200,
        "reason": "OK",
        "response_headers": (("Content-Type", "application/json"),),
        "response_body": b'{"choices":[]}',
    }
    return Exchange(**(base | changes))


def everything(ex: Exchange) -> str:
    return " ".join(repr(getattr(ex, f.name)) for f in fields(ex))


def test_public_api() -> None:
    assert sorted(redact.__all__) == [
        "MIN_LITERAL_LENGTH",
        "PreparedRequest",
        "REDACTED",
        "RedactionPolicy",
        "SECRET_ENV_MARKERS",
        "SECRET_HEADERS",
        "SECRET_QUERY_PARAMS",
        "Scanned",
        "Scrubber",
        "exchange_secrets",
        "prepare_request",
        "redact_bytes",
        "redact_exchange",
        "redact_headers",
        "redact_prepared",
        "redact_scanned",
        "redact_text",
        "redact_url",
        "request_secrets",
        "response_secrets",
    ]


# --- headers and URLs --------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "Authorization",
        "proxy-authorization",
        "X-API-Key",
        "api-key",
        "x-goog-api-key",
        "Cookie",
        "Set-Cookie",
    ],
)
def test_secret_headers_redacted_by_name(name: str) -> None:
    headers = ((name, "secret"), ("Accept", "*/*"))
    assert redact_headers(headers) == ((name, REDACTED), ("Accept", "*/*"))


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://h/p?key=abc&alt=sse", f"https://h/p?key={REDACTED}&alt=sse"),
        ("https://h/p?b=1&API_KEY=x&a=2#frag", f"https://h/p?b=1&API_KEY={REDACTED}&a=2#frag"),
        ("https://h/p?access_token=t&k=v", f"https://h/p?access_token={REDACTED}&k=v"),
        ("https://h/p?%6Bey=abc", f"https://h/p?%6Bey={REDACTED}"),
        ("https://h/p?keys=1&monkey=2&key=", "https://h/p?keys=1&monkey=2&key="),
        ("https://h/p", "https://h/p"),
        ("https://bob:hunter22@h/p", f"https://bob:{REDACTED}@h/p"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_redact_url_survives_an_unparsable_url() -> None:
    assert redact_url("http://[::1/x?key=abc") == f"http://[::1/x?key={REDACTED}"


def test_redact_url_is_idempotent() -> None:
    once = redact_url("https://h/p?key=abc&x=1")
    assert redact_url(once) == once


# --- the policy --------------------------------------------------------------------


def test_build_takes_secret_looking_environment_values() -> None:
    environ = {
        "OPENAI_API_KEY": KEY,
        "GITHUB_TOKEN": "ghp_aaaaaaaaaaaa",
        "DB_PASSWORD": "correct horse",
        "my_secret": "lowercase-name-ok",
        "SHORT_KEY": "1",
        "HOME": "/home/someone-long",
    }
    policy = RedactionPolicy.build(environ=environ)
    assert set(policy.literals) == {
        KEY.encode(),
        b"ghp_aaaaaaaaaaaa",
        b"correct horse",
        b"lowercase-name-ok",
    }


def test_build_without_environ_reads_nothing() -> None:
    assert RedactionPolicy.build() == RedactionPolicy()


def test_bad_pattern_is_a_config_error_naming_it() -> None:
    with pytest.raises(ConfigError, match=re.escape("'[unclosed'")):
        RedactionPolicy.build(["\\d{3}", "[unclosed"])


def test_patterns_scrub_bodies() -> None:
    policy = RedactionPolicy.build([r"\b\d{3}-\d{4}\b", "[\\w.]+@example\\.com"])
    body = b"call 555-1234 or mail jo.doe@example.com"
    assert redact_bytes(body, policy) == b"call [REDACTED] or mail [REDACTED]"


def test_empty_matches_insert_nothing() -> None:
    policy = RedactionPolicy.build([r"\d*"])
    assert redact_bytes(b"ab12cd", policy) == b"ab[REDACTED]cd"


def test_literals_and_their_url_encoded_forms() -> None:
    policy = RedactionPolicy(literals=(b"a/b+c=d&e1",))
    body = b"x a/b+c=d&e1 y a%2Fb%2Bc%3Dd%26e1 z"
    assert redact_bytes(body, policy) == b"x [REDACTED] y [REDACTED] z"


def test_overlapping_literals_leave_nothing_behind() -> None:
    policy = RedactionPolicy(literals=(b"abcdefgh", b"efghijkl"))
    assert redact_bytes(b"..abcdefghijkl..", policy) == b"..[REDACTED].."


def test_with_literals_adds_without_duplicates() -> None:
    policy = RedactionPolicy(literals=(b"one-secret",)).with_literals([b"two-secret", b"one-secret"])
    assert policy.literals == (b"one-secret", b"two-secret")


# --- one exchange's own secrets ----------------------------------------------------


def test_exchange_secrets_from_headers_query_and_userinfo() -> None:
    basic = base64.b64encode(b"alice:basic-password").decode()
    ex = make_exchange(
        url="https://carol:url-password@h/p?api_key=query-secret&x=1",
        request_headers=(
            ("Authorization", f"Bearer {KEY}"),
            ("Proxy-Authorization", f"Basic {basic}"),
            ("Cookie", "a=1; session=cookie-secret-1"),
        ),
        response_headers=(("Set-Cookie", "sid=cookie-secret-2; Path=/; HttpOnly"),),
    )
    found = set(exchange_secrets(ex))
    expected = {KEY, basic, "basic-password", "cookie-secret-1", "cookie-secret-2"}
    assert {s.encode() for s in expected | {"query-secret", "url-password"}} <= found
    assert b"1" not in found and b"Path=/" not in found


def test_exchange_secrets_ignore_short_values() -> None:
    ex = make_exchange(request_headers=(("x-api-key", "short"),), url="https://h/?key=abc")
    assert exchange_secrets(ex) == ()


# --- whole exchanges ---------------------------------------------------------------


def test_no_secret_survives_anywhere_in_an_exchange() -> None:
    policy = RedactionPolicy.build([r"\d{3}-\d{4}"], {"ANTHROPIC_API_KEY": "env-secret-value"})
    key = KEY.encode()
    ex = make_exchange(
        url=f"https://generativelanguage.googleapis.com/v1beta/models/g:x?key={KEY}&alt=sse",
        request_headers=(("x-goog-api-key", KEY), ("X-Echo", f"{KEY} env-secret-value")),
        request_body=b'{"note": "' + key + b'", "phone": "555-1234"}',
        response_headers=(("x-debug", f"Bearer {KEY}"),),
        chunks=(
            Chunk(1.0, b'data: {"k": "' + key[:5]),
            Chunk(2.5, key[5:] + b'"}\n\n'),
            Chunk(3.0, b"data: env-secret-value " + key + b"\n\n"),
        ),
        response_body=b"ignored",
        error=f"upstream said {KEY}",
        reason=KEY,
        extra={"note": KEY},
    )
    out = redact_exchange(ex, policy)
    text = everything(out)
    for secret in (KEY, "env-secret-value", "555-1234", KEY[:8]):
        assert secret not in text
    assert out.response_body == b"".join(c.data for c in out.chunks or ())
    assert [c.t_ms for c in out.chunks or ()] == [1.0, 2.5, 3.0]
    assert "alt=sse" in out.url and ex.request_body.count(key) == 1


def test_redaction_keeps_a_plain_exchange_as_it_was() -> None:
    ex = make_exchange()
    assert redact_exchange(ex, NO_POLICY) == ex


def test_redaction_returns_a_new_exchange() -> None:
    ex = make_exchange(request_headers=(("Authorization", f"Bearer {KEY}"),))
    out = redact_exchange(ex, NO_POLICY)
    assert out is not ex and ex.request_headers[0][1] == f"Bearer {KEY}"
    assert out.request_headers == (("Authorization", REDACTED),)


def test_response_body_is_redacted_without_chunks() -> None:
    ex = make_exchange(request_headers=(("api-key", KEY),), response_body=f"echo {KEY}".encode())
    out = redact_exchange(ex, NO_POLICY)
    assert out.response_body == b"echo [REDACTED]" and out.chunks is None


@settings(max_examples=80, deadline=None)
@given(
    prefix=st.binary(max_size=30),
    suffix=st.binary(max_size=30),
    cuts=st.lists(st.integers(0, 80), max_size=5),
)
def test_a_secret_split_across_chunks_is_caught(prefix: bytes, suffix: bytes, cuts: list[int]) -> None:
    stream = prefix + KEY.encode() + suffix
    bounds = sorted({0, len(stream), *(c for c in cuts if c < len(stream))})
    chunks = tuple(
        Chunk(float(i), stream[a:b]) for i, (a, b) in enumerate(zip(bounds, bounds[1:], strict=False))
    )
    ex = make_exchange(
        request_headers=(("Authorization", f"Bearer {KEY}"),), chunks=chunks, response_body=stream
    )
    out = redact_exchange(ex, NO_POLICY)
    assert KEY.encode() not in out.response_body
    assert out.response_body == b"".join(c.data for c in out.chunks or ())
    assert len(out.chunks or ()) == len(chunks)
    assert KEY not in everything(out)


# --- text --------------------------------------------------------------------------


def test_redact_text_scrubs_literals_patterns_urls_and_bearer_tokens() -> None:
    policy = RedactionPolicy.build([r"\d{3}-\d{4}"], {"OPENAI_API_KEY": KEY})
    text = f"key {KEY}; call 555-1234; GET https://h/p?key=abc123&x=1; Bearer tok_abcdefghij"
    assert redact_text(text, policy) == (
        "key [REDACTED]; call [REDACTED]; GET https://h/p?key=[REDACTED]&x=1; Bearer [REDACTED]"
    )


def test_redact_text_extra_literals() -> None:
    assert redact_text("a one-secret b", NO_POLICY, [b"one-secret"]) == "a [REDACTED] b"


def test_redact_text_keeps_undecodable_bytes() -> None:
    raw = b"ok \xff\xfe " + KEY.encode()
    text = raw.decode("utf-8", "surrogateescape")
    out = redact_text(text, RedactionPolicy(literals=(KEY.encode(),)))
    assert out.encode("utf-8", "surrogateescape") == b"ok \xff\xfe [REDACTED]"


@settings(max_examples=60, deadline=None)
@given(text=st.text(max_size=40))
def test_redact_text_without_secrets_changes_nothing(text: str) -> None:
    assert redact_text(text, RedactionPolicy(literals=(KEY.encode(),))) == text.replace(KEY, REDACTED)


# --- placements in an exchange, and look-alikes that must survive -------------------

CRED = "q7Wm2xR9vK4pLz"
OPENAI_SHAPED = "sk-" + "rewindtestsecret" * 2  # letters only, as in the e2e harness


@pytest.mark.parametrize(
    "changes",
    [
        {"request_headers": (("X-Api-Key", CRED),)},
        {"request_headers": (("X-My-Service-Token", CRED),)},
        {"request_headers": (("X-Signature", CRED),)},
        {"request_headers": (("Cookie", f"a=1; sid={CRED}"),)},
        {"request_headers": (("X-Forwarded-Note", f"Bearer {CRED}"),)},
        {"request_headers": (("X-Note", OPENAI_SHAPED),)},
        {"url": f"https://h/p?apikey={CRED}"},
        {"url": f"https://h/p?X-Amz-Signature={CRED}"},
        {"url": f"https://u:{CRED}@h/p"},
        {"url": f"https://{CRED}@h/p"},
        {"url": f"https://h/v1/{OPENAI_SHAPED}/models"},
        {"request_body": f'{{"a": {{"b": [{{"refresh_token": "{CRED}"}}]}}}}'.encode()},
        {"request_body": f"grant_type=x&client_secret={CRED}".encode()},
        {"request_body": f'--x\r\nContent-Disposition: form-data; name="password"\r\n\r\n{CRED}\r\n'.encode()},  # noqa: E501
        {"response_headers": (("Set-Cookie", f"sid={CRED}; Path=/"),)},
        {"response_headers": (("X-New-Token", CRED),)},
        {"response_body": f'{{"key": {{"secret": "{CRED}"}}}}'.encode()},
        {"response_body": f'{{"access_token": "{CRED}", "expires_in": 3600}}'.encode()},
        {"response_body": f'{{"note": "{OPENAI_SHAPED}"}}'.encode()},
        {"error": f"upstream said Bearer {CRED}"},
    ],
)
def test_a_secret_in_any_placement_is_redacted(changes: dict[str, Any]) -> None:
    secret = OPENAI_SHAPED if OPENAI_SHAPED in repr(changes) else CRED
    out = redact_exchange(make_exchange(**changes), NO_POLICY)
    assert secret not in everything(out) and REDACTED in everything(out)


@pytest.mark.parametrize(
    "changes",
    [
        {"response_headers": (("x-ratelimit-remaining-tokens", "30000"),)},
        {"response_headers": (("x-ratelimit-reset-tokens", "6m0s"),)},
        {"response_headers": (("anthropic-ratelimit-tokens-reset", "2025-01-01T00:00:00Z"),)},
        {"request_body": b'{"model": "gpt-4o", "max_tokens": 512, "cache_control": {"type": "ephemeral"}}'},
        {"response_body": b'{"logprobs": {"content": [{"token": "Hello", "logprob": -0.1}]}}'},
        {"response_body": b'{"usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}}'},
        {
            "request_body": b'{"tools": [{"function": {"parameters": {"properties": {"api_key": '
            b'{"type": "string", "description": "The API key"}}}}}]}'
        },
        {"request_body": b'{"content": "the ta' + b"sk-" + b'management-system-overview and sk-learn"}'},
        {"request_body": b'{"content": "Bearer of bad news: monkey keyboard AIza"}'},
        {"url": "https://h/p?page=2&max_tokens=100&keys=1"},
    ],
)
def test_look_alikes_are_kept(changes: dict[str, Any]) -> None:
    ex = make_exchange(**changes)
    assert redact_exchange(ex, NO_POLICY) == ex


def test_a_body_without_secrets_is_the_same_object() -> None:
    body = b'{"model": "gpt-4o", "messages": []}' * 1000
    out = redact_exchange(make_exchange(request_body=body, response_body=body), NO_POLICY)
    assert out.request_body is body and out.response_body is body
