"""Telemetry uploads: traffic a framework sends on its own, recognized by endpoint.

Tracing and analytics clients post spans, runs and events in the background, with ids
and timestamps that differ on every run. Rewind records them as steps of kind
``telemetry``; replay answers each with the service's generic success (``reply_for``)
and never counts one as a miss, because the agent never reads what comes back.

The endpoint table (``ENDPOINTS``), one row per service. A row with no hosts matches on
any host: the path alone is distinctive, and the service is often self-hosted or reached
through a base URL (a fake provider on loopback). "upload" means POST, PUT or PATCH.

    service        hosts (suffix)         methods     paths                            reply
    openai-traces  any                    POST        /v1/traces/ingest                204, no body
    langsmith      smith.langchain.com    POST PATCH  [/api/v1]/runs, /runs/batch,     202 {}
                                                      /runs/multipart, /runs/{uuid}
    langsmith      smith.langchain.com    GET         [/api/v1]/info                   200 {}
    langfuse       any                    upload      /api/public/ingestion            207 {"successes": [],
                                                                                         "errors": []}
    sentry         any                    upload      /api/{id}/envelope/, /store/     200 {}
    posthog        posthog.com            upload      /batch/, /capture/, /e/, /s/,    200 {"status": 1}
                                                      /track/, /engage/, /i/v0/e/,
                                                      /i/v0/ai/batch/
    datadog        datadoghq.com, .eu,    upload      /api/v2/{logs,llmobs,series,     202 {}
                   ddog-gov.com                       apmtelemetry,spans}, /api/v1/...
    datadog-agent  any                    upload      /v0.3-5/traces, /v0.6/stats,     200 {}
                                                      /telemetry/proxy/..., /evp_proxy/...
    helicone       helicone.ai,           upload      /custom/v1/log, /oai/v1/log,     200 {}
                   hconeai.com                        /anthropic/v1/log, /v1/trace/log
    otlp           any                    POST        .../v1/traces, .../v1/metrics,   200, empty protobuf
                                                      .../v1/logs                      (JSON asked: {})

What each client accepts (read in their sources): openai-agents' ``BackendSpanExporter``
treats any status below 300 as exported (OpenAI answers ``204 No Content``); LangSmith's
client raises only on error statuses and builds ``LangSmithInfo(**json)`` from ``/info``
(every field has a default); Langfuse's ``_process_response`` wants 200/201, or 207 with
an empty ``errors`` list; sentry-sdk's transport wants a 2xx; posthog-python wants 200;
OTLP/HTTP exporters want a 2xx whose body, if any, is an ``Export*ServiceResponse`` in
the request's encoding (an empty message is valid). ddtrace reads an optional
``rate_by_service`` from the agent's JSON answer.

Look-alikes that are *not* telemetry: ``/v1/chat/completions`` and every other LLM path,
OpenAI Assistants' ``/v1/threads/{id}/runs`` (LangSmith paths count on LangSmith hosts
only), LangSmith reads such as ``/runs/query`` or a prompt pull, PostHog's ``/flags/``
and ``/decide/`` (feature flags: their answer changes what the agent does), and a
``GET`` to an upload path (OTLP/HTTP defines ``POST`` only, so a ``GET .../v1/traces``
is some API's query, not an export).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from http import HTTPStatus

__all__ = [
    "ENDPOINTS",
    "TelemetryEndpoint",
    "TelemetryReply",
    "is_telemetry",
    "reply_for",
    "telemetry_endpoint",
]

UPLOAD_METHODS = frozenset({"POST", "PUT", "PATCH"})
JSON = "application/json"
PROTOBUF = "application/x-protobuf"


@dataclass(frozen=True)
class TelemetryReply:
    """The generic success a service's client accepts: status, content type, body."""

    status: int
    content_type: str | None
    body: bytes

    @property
    def reason(self) -> str:
        return HTTPStatus(self.status).phrase

    def headers(self) -> tuple[tuple[str, str], ...]:
        """Response headers: the content type when there is a body."""
        return (("content-type", self.content_type),) if self.content_type else ()


@dataclass(frozen=True)
class TelemetryEndpoint:
    """One row of the table: a service's upload path on some hosts (none: any host)."""

    service: str
    path: re.Pattern[str]
    reply: TelemetryReply
    hosts: tuple[str, ...] = ()
    methods: frozenset[str] = UPLOAD_METHODS

    def matches(self, host: str, path: str, method: str) -> bool:
        """Whether a ``method`` request to bare ``host`` and bare ``path`` is this upload."""
        if method not in self.methods or not self.path.search(path):
            return False
        return not self.hosts or any(_under(host, suffix) for suffix in self.hosts)


def _json(status: int, body: bytes = b"{}") -> TelemetryReply:
    return TelemetryReply(status, JSON, body)


_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_OTLP = re.compile(r"(^|/)v1/(traces|metrics|logs)/?$")

ENDPOINTS: tuple[TelemetryEndpoint, ...] = (
    TelemetryEndpoint(
        "openai-traces", re.compile(r"/v1/traces/ingest/?$"), TelemetryReply(204, None, b""),
        methods=frozenset({"POST"}),
    ),
    TelemetryEndpoint(
        "langsmith", re.compile(rf"^(/api/v1)?/runs(/batch|/multipart|/{_UUID})?/?$"), _json(202),
        hosts=("smith.langchain.com",), methods=frozenset({"POST", "PATCH"}),
    ),
    TelemetryEndpoint(
        "langsmith", re.compile(r"^(/api/v1)?/info/?$"), _json(200),
        hosts=("smith.langchain.com",), methods=frozenset({"GET"}),
    ),
    TelemetryEndpoint(
        "langfuse", re.compile(r"/api/public/ingestion/?$"),
        _json(207, b'{"successes": [], "errors": []}'),
    ),
    TelemetryEndpoint("sentry", re.compile(r"^/api/\d+/(envelope|store)/?$"), _json(200)),
    TelemetryEndpoint(
        "posthog", re.compile(r"^/(batch|capture|e|track|engage|s)/?$|^/i/v0/(e|ai/batch)/?$"),
        _json(200, b'{"status": 1}'), hosts=("posthog.com",),
    ),
    TelemetryEndpoint(
        "datadog",
        re.compile(r"^/api/v2/(logs|llmobs|apmtelemetry|series|spans)/?$|^/api/v1/(series|input)/?$"),
        _json(202), hosts=("datadoghq.com", "datadoghq.eu", "ddog-gov.com"),
    ),
    TelemetryEndpoint(
        "datadog-agent",
        re.compile(r"^/v0\.[3-5]/traces/?$|^/v0\.6/stats/?$|^/telemetry/proxy/api/v2/apmtelemetry/?$"
                   r"|^/evp_proxy/v\d+/api/v2/\w+/?$"),
        _json(200),
    ),
    TelemetryEndpoint(
        "helicone", re.compile(r"^/(custom|oai|anthropic)/v1/log/?$|^/v1/trace/log/?$"), _json(200),
        hosts=("helicone.ai", "hconeai.com"),
    ),
    TelemetryEndpoint("otlp", _OTLP, TelemetryReply(200, PROTOBUF, b""), methods=frozenset({"POST"})),
)


def telemetry_endpoint(host: str, path: str, method: str = "POST") -> TelemetryEndpoint | None:
    """The table row a request matches; ``host`` may carry a port, ``path`` a query."""
    return _endpoint_at(_bare_host(host), path.split("?", 1)[0], method.upper())


@functools.lru_cache(maxsize=4096)
def _endpoint_at(bare_host: str, bare_path: str, verb: str) -> TelemetryEndpoint | None:
    """Memoised: an agent calls a few endpoints many times, and a dozen regexes per call
    showed in the recording proxy's profile."""
    return next((e for e in ENDPOINTS if e.matches(bare_host, bare_path, verb)), None)


def is_telemetry(host: str, path: str, method: str = "POST") -> bool:
    """Whether a request is a telemetry upload (see the table in the module docstring)."""
    return telemetry_endpoint(host, path, method) is not None


def reply_for(endpoint: TelemetryEndpoint, request_content_type: str | None = None) -> TelemetryReply:
    """The generic success for ``endpoint``; OTLP answers in the request's encoding."""
    if endpoint.service == "otlp" and "json" in (request_content_type or "").lower():
        return _json(200)
    return endpoint.reply


def _under(host: str, suffix: str) -> bool:
    return host == suffix or host.endswith("." + suffix)


def _bare_host(host: str) -> str:
    host = host.lower()
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.split(":", 1)[0]
