"""The replay engine: decide, for each incoming request, what the recording says.

Pure and mitmproxy-free. A request is redacted with the same rules as at recording
time (a session ``Redactor``, which learns secrets as it goes), fingerprinted, and
matched first in, first out against the recorded steps (``Matcher``). A hit yields
the recorded response (with its chunks, for streams), a recorded failure yields the
failure again, and a miss yields an explained error.

Telemetry uploads (``rewind.canon.telemetry``: openai-agents' trace export, LangSmith,
Langfuse, Sentry, PostHog, OTLP...) are never matched: each is answered with its
service's generic success and is never a miss, whatever its body (span ids and
timestamps differ on every run). Recorded telemetry steps are kept out of the matcher,
so they are neither served nor counted as unused. An upload that equals a recorded one
byte for byte gets the generic answer too: the agent never reads it, and a recorded
4xx or 5xx would only make the exporter log or retry.
A WebSocket step (kind ``websocket``) is matched by its handshake; its answer carries the
recorded conversation (``canon.websocket``), which the playback server plays
(``replay.wsplay``); a client message that matches none of it is a miss too
(``websocket_miss``). Every transcript is read when the engine is made, so a damaged one
fails the replay before the agent starts.
Steps recorded under an older fingerprint version are re-fingerprinted from their
stored (already redacted) request bytes: that is the migration.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from rewind.canon.fingerprint import (
    FINGERPRINT_VERSION,
    canonical_request,
    fingerprint_of,
    parse_version,
)
from rewind.canon.providers import Provider, detect_provider, provider_named
from rewind.canon.redact import RedactionPolicy
from rewind.canon.redactor import Redactor
from rewind.canon.telemetry import TelemetryEndpoint, is_telemetry, reply_for, telemetry_endpoint
from rewind.canon.websocket import Transcript, decode
from rewind.core.exchange import Exchange, Frame, Headers, header
from rewind.errors import ReplayError
from rewind.replay.explain import MissReport, explain_miss
from rewind.replay.matcher import Matcher, is_failure
from rewind.replay.misses import failure_response, miss_response
from rewind.replay.wsplay import HandshakeOnly, websocket_miss
from rewind.store.models import StepRecord

# Marks a generic telemetry answer (its value: the service), for whoever reads the traffic.
TELEMETRY_HEADER = "x-rewind-telemetry"


@dataclass(frozen=True)
class Incoming:
    """A request as the replay proxy received it (unredacted, in memory only)."""

    method: str
    url: str
    headers: Headers
    body: bytes
    listener: str | None = None


@dataclass(frozen=True)
class Answer:
    """What to send back: a recorded response, a recorded failure, a miss error, or the
    generic success of a telemetry upload (``telemetry`` names its service)."""

    status: int
    reason: str
    headers: Headers
    body: bytes
    step: StepRecord | None = None
    chunks: tuple[tuple[float, bytes], ...] | None = None
    miss: MissReport | None = None
    telemetry: str | None = None
    websocket: Transcript | None = None

    @property
    def streamed(self) -> bool:
        return self.chunks is not None


class ReplayEngine:
    """Answers requests from one recorded session."""

    def __init__(
        self,
        steps: Sequence[StepRecord],
        blobs: Mapping[str, bytes],
        policy: RedactionPolicy | Redactor,
        reuse: bool = False,
    ) -> None:
        self.blobs = blobs
        # One redactor for the whole replay: it learns secrets from incoming requests as a
        # recording's did, so a request is redacted (and fingerprinted) as it was recorded.
        self.redactor = policy if isinstance(policy, Redactor) else Redactor(policy)
        self.telemetry_steps = [step for step in steps if is_telemetry_step(step)]
        self.steps = [self._current(step) for step in steps if not is_telemetry_step(step)]
        self.matcher = Matcher(self.steps, reuse=reuse)
        self.misses: list[MissReport] = []
        self.telemetry_answers = 0
        self._lock = threading.Lock()
        self._canonicals: list[tuple[StepRecord, dict[str, Any]]] | None = None
        self.transcripts = {s.step: _transcript(s, blobs) for s in self.steps if is_websocket(s)}

    def decide(self, incoming: Incoming) -> Answer:
        """The answer to one request; a miss is remembered for the summary."""
        clean = self.redactor.redact_exchange(_as_exchange(incoming))
        endpoint = telemetry_endpoint(clean.host, clean.path, clean.method)
        if endpoint is not None:
            return self._telemetry(endpoint, header(clean.request_headers, "content-type"))
        provider = detect_provider(clean.host, clean.path, incoming.listener)
        canonical = canonical_request(
            clean.method, clean.url, clean.request_headers, clean.request_body, provider
        )
        fingerprint = fingerprint_of(canonical)
        step = self.matcher.take(fingerprint)
        if step is not None:
            return self._recorded(step)
        return self._missed(clean.method, clean.url, provider, fingerprint, canonical)

    def _current(self, step: StepRecord) -> StepRecord:
        if _version(step.fingerprint) == FINGERPRINT_VERSION:
            return step
        return dataclasses.replace(step, fingerprint=fingerprint_of(self._recorded_canonical(step)))

    def _recorded_canonical(self, step: StepRecord) -> dict[str, Any]:
        body = self.blobs[step.request_sha]
        provider = provider_named(step.provider)
        return canonical_request(step.method, step.url, step.request_headers, body, provider)

    def _recorded(self, step: StepRecord) -> Answer:
        if is_failure(step):
            status, headers, body = failure_response(step)
            return Answer(status, "Bad Gateway", headers, body, step=step)
        if step.step in self.transcripts:
            headers = step.response_headers
            return Answer(101, step.reason, headers, b"", step=step, websocket=self.transcripts[step.step])
        if step.status == 101:
            return self._handshake_only(step)
        body = self.blobs[step.response_sha] if step.response_sha else b""
        chunks = split_chunks(body, step.chunks) if step.chunks is not None else None
        status = step.status if step.status is not None else 502
        return Answer(status, step.reason, step.response_headers, body, step=step, chunks=chunks)

    def _telemetry(self, endpoint: TelemetryEndpoint, content_type: str | None) -> Answer:
        with self._lock:
            self.telemetry_answers += 1
        reply = reply_for(endpoint, content_type)
        headers = (*reply.headers(), (TELEMETRY_HEADER, endpoint.service))
        return Answer(reply.status, reply.reason, headers, reply.body, telemetry=endpoint.service)

    def _missed(
        self,
        method: str,
        url: str,
        provider: Provider | None,
        fingerprint: str,
        canonical: dict[str, Any],
    ) -> Answer:
        unserved = {s.step for s in self.matcher.unused()}  # closest first, unserved among equals
        report = self._remember(
            explain_miss(method, url, fingerprint, canonical, self._candidates(), unserved=unserved)
        )
        status, headers, body = miss_response(provider.value if provider else None, report)
        return Answer(status, "Not Found", headers, body, miss=report)

    def _handshake_only(self, step: StepRecord) -> Answer:
        report = self._remember(HandshakeOnly(step.method, step.url, step.fingerprint))
        body = report.text().encode("utf-8") + b"\n"
        return Answer(502, "Bad Gateway", (("content-type", "text/plain; charset=utf-8"),), body, miss=report)

    def websocket_miss(self, url: str, message: Frame) -> MissReport:
        """Remember a client WebSocket message the recording does not have."""
        return self._remember(websocket_miss(url, message))

    def _remember(self, report: MissReport) -> MissReport:
        """A miss, kept for the summary (from the proxy's thread or the playback server's)."""
        with self._lock:
            self.misses.append(report)
        return report

    def _candidates(self) -> list[tuple[StepRecord, dict[str, Any]]]:
        with self._lock:
            if self._canonicals is None:
                self._canonicals = [(s, self._recorded_canonical(s)) for s in self.steps]
            return self._canonicals


def is_telemetry_step(step: StepRecord) -> bool:
    """A recorded telemetry upload: so marked, or (recorded before the kind existed)
    sent to an endpoint of the telemetry table."""
    if step.kind == "telemetry":
        return True
    parts = urlsplit(step.url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return is_telemetry(parts.netloc, path, step.method)


def is_websocket(step: StepRecord) -> bool:
    """A recorded WebSocket conversation whose handshake the server accepted."""
    return step.kind == "websocket" and step.status == 101


def _transcript(step: StepRecord, blobs: Mapping[str, bytes]) -> Transcript:
    try:
        return decode(blobs[step.response_sha] if step.response_sha else b"")
    except ValueError as exc:
        raise ReplayError(
            f"step {step.step} (a WebSocket conversation) cannot be replayed: {exc}",
            hint="`rewind doctor` checks the store; re-record the session if it is damaged",
        ) from exc


def split_chunks(body: bytes, layout: Sequence[tuple[float, int]]) -> tuple[tuple[float, bytes], ...]:
    """The recorded chunks again, from the joined body and their (time, length) layout."""
    chunks, offset = [], 0
    for t_ms, length in layout:
        chunks.append((t_ms, body[offset : offset + length]))
        offset += length
    if offset < len(body):
        chunks.append((layout[-1][0] if layout else 0.0, body[offset:]))
    return tuple(chunks)


def _as_exchange(incoming: Incoming) -> Exchange:
    return Exchange(
        step=0,
        started_at=0.0,
        method=incoming.method,
        url=incoming.url,
        request_headers=incoming.headers,
        request_body=incoming.body,
        listener=incoming.listener,
    )


def _version(fingerprint: str) -> int | None:
    try:
        return parse_version(fingerprint)
    except ValueError:
        return None


