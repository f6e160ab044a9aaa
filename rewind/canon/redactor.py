"""A session's redactor: the rules of ``redact`` plus every secret seen so far.

A literal secret found in one place (a header, a URL, a field named like a secret, a key
shape, an argument of the command) is scrubbed everywhere else from then on: later
exchanges, the agent's stdout and stderr, the recorded command. One ``Redactor`` lives as
long as a recording (or a replay, which must redact incoming requests the same way so
that fingerprints match). It is safe to use from several threads.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence

from rewind.canon.detect import Where, is_secret_value
from rewind.canon.redact import (
    MIN_LITERAL_LENGTH,
    REDACTED,
    PreparedRequest,
    RedactionPolicy,
    Scanned,
    Scrubber,
    prepare_request,
    redact_prepared,
    redact_scanned,
    request_secrets,
    response_secrets,
)
from rewind.core.exchange import Exchange, Headers

__all__ = ["Redactor", "flag_secrets"]


class Redactor:
    """Redacts exchanges, text and command lines with everything learned so far."""

    def __init__(self, policy: RedactionPolicy | None = None) -> None:
        self.policy = policy or RedactionPolicy()
        self._lock = threading.Lock()
        self._learned: dict[bytes, None] = {}
        self._scrubber = Scrubber.of(self.policy)

    @property
    def literals(self) -> tuple[bytes, ...]:
        """The policy's literals and every secret learned, in the order first seen."""
        with self._lock:
            return (*self.policy.literals, *self._learned)

    def learn(self, secrets: Iterable[bytes]) -> None:
        """Scrub ``secrets`` (those long enough) from everything redacted from now on."""
        new = [s for s in secrets if len(s) >= MIN_LITERAL_LENGTH and s not in self._learned]
        if not new:
            return
        with self._lock:
            self._learned.update(dict.fromkeys(new))
            self._scrubber = Scrubber.of(self.policy, self._learned)

    def learn_request(self, url: str, headers: Headers) -> None:
        """Learn a request's secrets as soon as it arrives, before its response."""
        self.learn(request_secrets(url, headers))

    def scrubber(self) -> Scrubber:
        with self._lock:
            return self._scrubber

    def redact_exchange(self, ex: Exchange) -> Exchange:
        """``ex`` redacted; the secrets it carries are learned first."""
        scanned = Scanned.of(ex)
        self.learn(scanned.secrets)
        return redact_scanned(ex, scanned, self.scrubber())

    def prepare_request(self, ex: Exchange) -> PreparedRequest:
        """``ex``'s request redacted ahead of its response (its secrets learned)."""
        return prepare_request(ex, self._learn_then_scrubber)

    def redact_prepared(self, ex: Exchange, prepared: PreparedRequest) -> Exchange | None:
        """``ex`` redacted reusing its prepared request, after learning its response's
        secrets; ``None`` when a secret learned since makes the preparation stale."""
        response, secrets = response_secrets(ex)
        return redact_prepared(ex, prepared, response, self._learn_then_scrubber(secrets))

    def _learn_then_scrubber(self, secrets: Iterable[bytes]) -> Scrubber:
        self.learn(secrets)
        return self.scrubber()

    def redact_text(self, text: str) -> str:
        """stdout, stderr, a log line or an error message, redacted."""
        return self.scrubber().text(text)

    def redact_bytes(self, data: bytes) -> bytes:
        """Bytes redacted; ``data`` itself when there is nothing to redact."""
        return self.scrubber().bytes(data)

    def redact_output(self, data: bytes) -> bytes:
        """A command's output with secrets masked, undecodable bytes kept as they were."""
        return self.redact_bytes(data)

    def redact_command(self, argv: Sequence[str]) -> tuple[str, ...]:
        """The command line with the values of secret flags replaced, then redacted as text.

        ``--api-key X``, ``--api-key=X``, ``--token X``, ``--password X``: the value becomes
        ``[REDACTED]`` (and is learned); the rest is redacted like any text.
        """
        self.learn(s.encode("utf-8", "surrogateescape") for s in flag_secrets(argv))
        masked = _mask_flags(argv)
        return tuple(self.redact_text(arg) for arg in masked)


def _flag_value(argv: Sequence[str], i: int) -> tuple[str, str] | None:
    """(flag, value) when ``argv[i]`` is the value of a flag named like a secret."""
    arg = argv[i]
    if arg.startswith("-") and "=" in arg:
        flag, _, value = arg.partition("=")
        return (flag, value) if _is_secret_flag(flag, value) else None
    if i > 0 and argv[i - 1].startswith("-") and "=" not in argv[i - 1]:
        return (argv[i - 1], arg) if _is_secret_flag(argv[i - 1], arg) else None
    return None


def _is_secret_flag(flag: str, value: str) -> bool:
    name = flag.lstrip("-")
    return bool(name) and is_secret_value(name, value.encode("utf-8", "surrogateescape"), Where.FLAG)


def flag_secrets(argv: Sequence[str]) -> list[str]:
    """The values of flags named like secrets in a command line."""
    found = (_flag_value(argv, i) for i in range(len(argv)))
    return [pair[1] for pair in found if pair is not None]


def _mask_flags(argv: Sequence[str]) -> list[str]:
    out = []
    for i, arg in enumerate(argv):
        pair = _flag_value(argv, i)
        if pair is None:
            out.append(arg)
        else:
            out.append(f"{pair[0]}={REDACTED}" if arg.startswith("-") else REDACTED)
    return out
