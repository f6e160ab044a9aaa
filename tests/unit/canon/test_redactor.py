"""Tests of rewind.canon.redactor: a secret seen once is scrubbed everywhere after."""

from __future__ import annotations

import threading
from dataclasses import fields
from typing import Any

import pytest

from rewind.canon import redactor as redactor_module
from rewind.canon.redact import REDACTED, RedactionPolicy
from rewind.canon.redactor import Redactor, flag_secrets
from rewind.core.exchange import Chunk, Exchange

# A secret with no recognisable shape: only learning can catch it outside its header.
PLAIN = "plainsecretvalue"


def make_exchange(**changes: Any) -> Exchange:
    base: dict[str, Any] = {
        "step": 1,
        "started_at": 0.0,
        "method": "POST",
        "url": "https://api.example.com/v1/run",
        "request_headers": (("Content-Type", "application/json"),),
        "request_body": b'{"q": 1}',
        "status": 200,
        "response_headers": (("Content-Type", "application/json"),),
        "response_body": b"{}",
    }
    return Exchange(**(base | changes))


def everything(ex: Exchange) -> str:
    return " ".join(repr(getattr(ex, f.name)) for f in fields(ex))


def test_public_api() -> None:
    assert sorted(redactor_module.__all__) == ["Redactor", "flag_secrets"]


def test_a_header_secret_is_scrubbed_from_later_exchanges_and_output() -> None:
    red = Redactor()
    red.redact_exchange(make_exchange(request_headers=(("X-Service-Key", PLAIN),)))
    later = red.redact_exchange(make_exchange(request_body=b'{"echo": "' + PLAIN.encode() + b'"}'))
    assert PLAIN not in everything(later)
    assert red.redact_output(b"done " + PLAIN.encode() + b"\n") == b"done [REDACTED]\n"
    assert red.redact_command(["agent", PLAIN]) == ("agent", REDACTED)


def test_learn_request_works_before_any_exchange_is_redacted() -> None:
    red = Redactor()
    red.learn_request(f"https://h/p?token={PLAIN}", ())
    assert red.redact_text(f"got {PLAIN}") == "got [REDACTED]"


def test_a_secret_in_a_response_body_is_learned() -> None:
    red = Redactor()
    created = make_exchange(response_body=b'{"id": "k1", "api_key": "' + PLAIN.encode() + b'"}')
    assert PLAIN not in everything(red.redact_exchange(created))
    assert red.redact_text(PLAIN) == REDACTED


def test_secrets_learned_in_the_same_exchange_are_scrubbed_from_all_of_it() -> None:
    ex = make_exchange(
        request_headers=(("Authorization", f"Bearer {PLAIN}"),),
        url=f"https://api.example.com/v1/{PLAIN}/x",
        chunks=(Chunk(1.0, b"data: " + PLAIN.encode()[:4]), Chunk(2.0, PLAIN.encode()[4:] + b"\n\n")),
        response_body=b"data: " + PLAIN.encode() + b"\n\n",
    )
    out = Redactor().redact_exchange(ex)
    assert PLAIN not in everything(out)
    assert out.response_body == b"".join(c.data for c in out.chunks or ())


def test_the_policy_literals_and_patterns_apply() -> None:
    red = Redactor(RedactionPolicy.build([r"\d{3}-\d{4}"], {"DB_PASSWORD": PLAIN}))
    assert red.redact_text(f"{PLAIN} 555-1234") == "[REDACTED] [REDACTED]"
    assert red.literals == (PLAIN.encode(),)


def test_environment_urls_with_credentials_are_literals() -> None:
    policy = RedactionPolicy.build(environ={"OPENAI_BASE_URL": f"https://u:{PLAIN}@gw.local/v1"})
    assert Redactor(policy).redact_text(f"x {PLAIN}") == "x [REDACTED]"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["a", "--api-key", PLAIN], ["a", "--api-key", REDACTED]),
        (["a", f"--api-key={PLAIN}"], ["a", f"--api-key={REDACTED}"]),
        (["a", "--token", PLAIN, "--x", "1"], ["a", "--token", REDACTED, "--x", "1"]),
        (["a", "--password", "short"], ["a", "--password", REDACTED]),
        (["a", "--max-tokens", "100"], ["a", "--max-tokens", "100"]),
        (["a", "--name", "bob", "--verbose"], ["a", "--name", "bob", "--verbose"]),
    ],
)
def test_command_line_secret_flags(argv: list[str], expected: list[str]) -> None:
    assert list(Redactor().redact_command(argv)) == expected


def test_a_flag_secret_is_learned_for_the_output() -> None:
    red = Redactor()
    red.redact_command(["agent", "--api-key", PLAIN])
    assert red.redact_output(PLAIN.encode()) == b"[REDACTED]"
    assert flag_secrets(["agent", "--api-key", PLAIN]) == [PLAIN]


def test_nothing_to_redact_returns_the_same_bytes_object() -> None:
    data = b'{"model": "gpt-4o"}' * 10_000
    assert Redactor(RedactionPolicy(literals=(b"abcdefgh1",))).redact_bytes(data) is data


def test_redaction_is_deterministic() -> None:
    ex = make_exchange(request_body=b'{"password": "hunter22", "x": "sk-' + b"a1" * 15 + b'"}')
    assert Redactor().redact_exchange(ex) == Redactor().redact_exchange(ex)


def test_learning_from_many_threads() -> None:
    red = Redactor()
    secrets = [f"threadsecret{i:04d}" for i in range(40)]
    threads = [threading.Thread(target=red.learn, args=([s.encode()],)) for s in secrets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(red.literals) == {s.encode() for s in secrets}


def test_a_request_prepared_ahead_redacts_exactly_as_the_whole_exchange_would() -> None:
    ex = make_exchange(request_headers=(("Authorization", f"Bearer {PLAIN}"),),
                       request_body=b'{"echo": "' + PLAIN.encode() + b'"}')
    ahead = Redactor()
    prepared = ahead.prepare_request(make_exchange(request_headers=ex.request_headers,
                                                   request_body=ex.request_body, status=None))
    reused = ahead.redact_prepared(ex, prepared)
    assert reused is not None and reused == Redactor().redact_exchange(ex)
    assert PLAIN not in everything(reused)


def test_a_prepared_request_is_stale_once_a_secret_is_learned_after_it() -> None:
    # The response names a secret the request carried unnoticed: the request must lose it too.
    ex = make_exchange(request_body=b'{"note": "' + PLAIN.encode() + b'"}',
                       response_body=b'{"api_key": "' + PLAIN.encode() + b'"}')
    redactor = Redactor()
    prepared = redactor.prepare_request(ex)
    assert PLAIN.encode() in prepared.request_body  # nothing said it was a secret yet
    assert redactor.redact_prepared(ex, prepared) is None
    assert PLAIN not in everything(redactor.redact_exchange(ex))


def test_a_prepared_request_is_stale_for_another_request() -> None:
    redactor = Redactor()
    prepared = redactor.prepare_request(make_exchange())
    assert redactor.redact_prepared(make_exchange(request_body=b'{"q": 2}'), prepared) is None
