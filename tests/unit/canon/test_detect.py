"""Tests of rewind.canon.detect: secrets found by name and by shape, look-alikes left alone."""

from __future__ import annotations

import pytest

from rewind.canon import detect
from rewind.canon.detect import Strength, Where, is_secret_value, name_strength, name_words, scan

# A word ending in "ta" + "sk-..." : built at run time so no key-shaped literal is committed.
TASK_WORDS = "ta" + "sk-" + "management-system-overview"

# Built at run time so that nothing shaped like a real key is committed.
OPENAI = "sk-" + "proj-" + "Ab3" * 12
ANTHROPIC = "sk-" + "ant-api03-" + "Zq9" * 12
GOOGLE = "AI" + "za" + "Sy" + "x7" * 16 + "a"
GITHUB = "gh" + "p_" + "a1B2" * 9
GITHUB_PAT = "github" + "_pat_" + "11AB" * 8
SLACK = "xo" + "xb-" + "1234567890-abcdefABCDEF"
AWS = "AK" + "IA" + "Q3EGRZ7XKSW4TBNP"
JWT = "ey" + "JhbGciOiJIUzI1NiJ9." + "ey" + "JzdWIiOiIxMjM0NTY3ODkwIn0." + "dozjgNryP4J3jVmNHl0w5N"
CRED = "q7Wm2xR9vK4p"


def redacted(data: str) -> str:
    raw = data.encode()
    out, pos = [], 0
    for start, end in sorted(scan(raw).spans):
        out.append(raw[pos:start].decode() + "[REDACTED]")
        pos = max(pos, end)
    return "".join(out) + raw[pos:].decode()


def test_public_api() -> None:
    assert sorted(detect.__all__) == [
        "Found",
        "KEY_SHAPES",
        "Strength",
        "Where",
        "is_harmless",
        "is_secret_value",
        "looks_like_credential",
        "name_strength",
        "name_words",
        "scan",
    ]


@pytest.mark.parametrize("secret", [OPENAI, ANTHROPIC, GOOGLE, GITHUB, GITHUB_PAT, SLACK, AWS, JWT])
@pytest.mark.parametrize("template", ["{}", "x {} y", '{{"note": "{}"}}', "/v1/{}/models", "({})"])
def test_key_shapes_anywhere(secret: str, template: str) -> None:
    out = redacted(template.format(secret))
    assert secret not in out and "[REDACTED]" in out


@pytest.mark.parametrize(
    ("placement", "secret"),
    [
        (f'{{"api_key": "{CRED}"}}', CRED),
        ('{"a": [{"b": {"client_secret": "x y z"}}]}', "x y z"),
        (f'{{"password": "{CRED}", "n": 1}}', CRED),
        (f'{{"session_token": "{CRED}"}}', CRED),
        (f'{{"my_token": "{CRED}"}}', CRED),
        (f'{{"args": "{{\\"api_key\\": \\"{CRED}\\"}}"}}', CRED),
        (f"{{'apiKey': '{CRED}'}}", CRED),
        (f"password={CRED}&x=1", CRED),
        (f"a=1&access_token={CRED}", CRED),
        (f"https://h/p?key={CRED}", CRED),
        (f"https://h/p?X-Amz-Signature={CRED}&X-Amz-Credential=abc%2F1", CRED),
        (f"https://h/p?sig={CRED}", CRED),
        (f"https://bob:{CRED}@h/p", CRED),
        (f"https://{CRED}@h/p", CRED),
        (f"Authorization: Bearer {CRED}\n", CRED),
        (f"log\nX-My-Auth: {CRED}\n", CRED),
        (f"Bearer {CRED}", CRED),
        (f'--b\r\nContent-Disposition: form-data; name="api_key"\r\n\r\n{CRED}\r\n--b--', CRED),
    ],
)
def test_secrets_found_by_name(placement: str, secret: str) -> None:
    found = scan(placement.encode())
    assert secret not in redacted(placement)
    assert secret.encode() in found.secrets


@pytest.mark.parametrize(
    "text",
    [
        TASK_WORDS,
        "pip install sk-learn scikit-learn",
        "Bearer of bad news",
        "AIza",
        "monkey keyboard tokenizer",
        "da39a3ee5e6b4b0d3255bfef95601890afd80709",
        "123e4567-e89b-12d3-a456-426614174000",
        '{"max_tokens": 1024, "usage": {"prompt_tokens": 10, "completion_tokens": 3}}',
        '{"token": "Hello", "logprob": -0.25, "bytes": [72]}',
        '{"cache_control": {"type": "ephemeral"}}',
        '{"properties": {"api_key": {"type": "string", "description": "The API key"}}}',
        '{"type": "thinking", "signature": "EqoBCkgIARABGAIiQL2x9"}',
        '{"monkey": "banana", "key": "color", "keyboard": "us"}',
        "https://h/p?keys=1&monkey=2&key=&max_tokens=100&page=2",
        "https://git@github.com/o/r.git",
        "x-ratelimit-remaining-tokens: 30000\n",
        "An sk- prefix, AKIA alone, eyJ alone, xoxb alone.",
    ],
)
def test_look_alikes_survive(text: str) -> None:
    assert redacted(text) == text


@pytest.mark.parametrize(
    ("name", "where", "strength"),
    [
        ("Authorization", Where.HEADER, Strength.STRONG),
        ("x-goog-api-key", Where.HEADER, Strength.STRONG),
        ("apiKey", Where.FIELD, Strength.STRONG),
        ("X-Amz-Signature", Where.QUERY, Strength.STRONG),
        ("key", Where.QUERY, Strength.STRONG),
        ("key", Where.FIELD, Strength.WEAK),
        ("max_tokens", Where.FIELD, Strength.WEAK),
        ("signature", Where.FIELD, Strength.NONE),
        ("signature", Where.HEADER, Strength.WEAK),
        ("monkey", Where.FIELD, Strength.NONE),
        ("tokenizer", Where.FIELD, Strength.NONE),
        ("mysecretvalue", Where.FIELD, Strength.WEAK),
    ],
)
def test_name_strength(name: str, where: Where, strength: Strength) -> None:
    assert name_strength(name, where) is strength


def test_name_words_split_camel_case_and_punctuation() -> None:
    assert name_words("X-API-Key") == ["x", "api", "key"]
    assert name_words("accessToken") == ["access", "token"]
    assert name_words("APIKey") == ["api", "key"]


@pytest.mark.parametrize(
    ("name", "value", "where", "secret"),
    [
        ("x-ratelimit-remaining-tokens", "30000", Where.HEADER, False),
        ("x-ratelimit-reset-tokens", "6m0s", Where.HEADER, False),
        ("anthropic-ratelimit-tokens-reset", "2024-01-01T00:00:00Z", Where.HEADER, False),
        ("x-session-enabled", "true", Where.HEADER, False),
        ("x-custom-token", "abc", Where.HEADER, True),
        ("password", "abc", Where.FIELD, True),
        ("token", "Hello", Where.FIELD, False),
        ("token", "abc12345", Where.FIELD, True),
        ("api-key", "", Where.HEADER, False),
    ],
)
def test_values_judged_by_shape(name: str, value: str, where: Where, secret: bool) -> None:
    assert is_secret_value(name, value.encode(), where) is secret


def test_scan_copies_nothing_and_finds_nothing_in_plain_data() -> None:
    data = b'{"model": "gpt-4o", "messages": []}' * 1000
    found = scan(data)
    assert found.spans == () and found.secrets == ()


FIELD_MARKERS = ["key", "token", "secret", "auth", "session", "password", "pwd", "cookie", "credential",
                 "jwt", "bearer"]  # each found by a _MARK_WORDS entry; "sig" is no marker in fields


@pytest.mark.parametrize("word", FIELD_MARKERS)
def test_every_marker_finds_its_json_field_in_any_case(word: str) -> None:
    assert any(w in word.encode() for w in detect._MARK_WORDS)
    for name in (f"my_{word}", f"MY_{word.upper()}", f"my{word.capitalize()}Value"):
        body = f'{{"model": "m", "{name}": "{CRED}", "other": "x"}}'
        assert redacted(body) == f'{{"model": "m", "{name}": "[REDACTED]", "other": "x"}}'


def test_json_fields_are_found_across_window_boundaries_of_big_bodies() -> None:
    filler = '{"text": "' + "a" * (detect._WINDOW - 20) + '", '
    body = (filler + f'"api_key": "{CRED}"}}').encode()
    assert body.index(b"api_key") < detect._WINDOW < body.index(b"api_key") + 20
    assert scan(body).secrets == (CRED.encode(),)


def test_secret_inside_a_non_secret_field_is_still_found() -> None:
    body = f'{{"content": "see https://u:{CRED}@example.com and Bearer {CRED}x"}}'
    assert CRED.encode() in scan(body.encode()).secrets
