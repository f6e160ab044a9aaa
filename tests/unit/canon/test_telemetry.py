"""Tests of rewind.canon.telemetry: the endpoint table and each service's generic success."""

from __future__ import annotations

import json

import pytest

from rewind.canon.telemetry import (
    ENDPOINTS,
    TelemetryEndpoint,
    is_telemetry,
    reply_for,
    telemetry_endpoint,
)

RUN_ID = "46a9ea42-2f8f-4338-a1ff-56ea7cb214af"

TELEMETRY = [
    ("api.openai.com", "/v1/traces/ingest", "POST", "openai-traces"),
    ("127.0.0.1:8123", "/v1/traces/ingest", "POST", "openai-traces"),
    ("api.smith.langchain.com", "/runs/batch", "POST", "langsmith"),
    ("eu.api.smith.langchain.com", "/runs/multipart", "POST", "langsmith"),
    ("api.smith.langchain.com", "/runs", "POST", "langsmith"),
    ("api.smith.langchain.com", f"/runs/{RUN_ID}", "PATCH", "langsmith"),
    ("api.smith.langchain.com", "/info", "GET", "langsmith"),
    ("api.smith.langchain.com", "/otel/v1/traces", "POST", "otlp"),
    ("cloud.langfuse.com", "/api/public/ingestion", "POST", "langfuse"),
    ("langfuse.internal:3000", "/api/public/ingestion", "POST", "langfuse"),
    ("us.cloud.langfuse.com", "/api/public/otel/v1/traces", "POST", "otlp"),
    ("o12345.ingest.us.sentry.io", "/api/4507/envelope/", "POST", "sentry"),
    ("sentry.example.com", "/api/1/store/?sentry_key=abc", "POST", "sentry"),
    ("us.i.posthog.com", "/batch/", "POST", "posthog"),
    ("eu.i.posthog.com", "/i/v0/e/", "POST", "posthog"),
    ("app.posthog.com", "/capture/", "POST", "posthog"),
    ("us.i.posthog.com", "/i/v0/ai/batch/", "POST", "posthog"),
    ("llmobs-intake.datadoghq.com", "/api/v2/llmobs", "POST", "datadog"),
    ("http-intake.logs.datadoghq.eu", "/api/v2/logs", "POST", "datadog"),
    ("localhost:8126", "/v0.5/traces", "PUT", "datadog-agent"),
    ("api.worker.helicone.ai", "/custom/v1/log", "POST", "helicone"),
    ("localhost:4318", "/v1/traces", "POST", "otlp"),
    ("telemetry.crewai.com:4319", "/v1/traces", "POST", "otlp"),
    ("logfire-api.pydantic.dev", "/v1/metrics", "POST", "otlp"),
    ("otel-collector", "/v1/logs", "POST", "otlp"),
]

NOT_TELEMETRY = [
    ("api.openai.com", "/v1/chat/completions", "POST"),
    ("api.openai.com", "/v1/responses", "POST"),
    ("api.openai.com", "/v1/traces/ingest", "GET"),
    ("api.openai.com", f"/v1/threads/{RUN_ID}/runs", "POST"),  # Assistants, not LangSmith
    ("api.example.com", "/runs/batch", "POST"),  # LangSmith paths count on its hosts only
    ("api.smith.langchain.com", "/runs/query", "POST"),  # a read
    ("api.smith.langchain.com", f"/runs/{RUN_ID}", "GET"),  # a read
    ("api.smith.langchain.com", "/commits/owner/prompt/latest", "GET"),  # a prompt pull
    ("api.smith.langchain.com", "/info", "POST"),
    ("us.i.posthog.com", "/flags/", "POST"),  # feature flags change what the agent does
    ("us.i.posthog.com", "/decide/", "POST"),
    ("api.example.com", "/batch/", "POST"),  # PostHog paths count on its hosts only
    ("api.example.com", "/e/", "POST"),
    ("cloud.langfuse.com", "/api/public/traces", "GET"),
    ("localhost:4318", "/v1/traces", "GET"),  # OTLP/HTTP is POST only: a GET is a query
    ("api.example.com", "/v1/traces/123", "POST"),
    ("api.example.com", "/api/v1/traces", "GET"),
    ("api.datadoghq.com", "/api/v1/query", "GET"),
    ("api.datadoghq.com", "/api/v2/logs", "GET"),
    ("oai.helicone.ai", "/v1/chat/completions", "POST"),  # Helicone's gateway carries LLM calls
    ("example.com", "/api/abc/envelope/", "POST"),
    ("evil-posthog.com", "/batch/", "POST"),
]


@pytest.mark.parametrize(("host", "path", "method", "service"), TELEMETRY)
def test_telemetry_uploads_are_recognized(host: str, path: str, method: str, service: str) -> None:
    endpoint = telemetry_endpoint(host, path, method)
    assert endpoint is not None and endpoint.service == service
    assert is_telemetry(host, path, method)


@pytest.mark.parametrize(("host", "path", "method"), NOT_TELEMETRY)
def test_look_alikes_are_not_telemetry(host: str, path: str, method: str) -> None:
    assert telemetry_endpoint(host, path, method) is None
    assert not is_telemetry(host, path, method)


def test_method_defaults_to_post_and_is_case_insensitive() -> None:
    assert is_telemetry("api.openai.com", "/v1/traces/ingest")
    assert is_telemetry("API.OPENAI.COM:443", "/v1/traces/ingest", "post")


def test_openai_trace_ingest_gets_204_without_a_body() -> None:
    endpoint = telemetry_endpoint("api.openai.com", "/v1/traces/ingest")
    assert endpoint is not None
    reply = reply_for(endpoint)
    assert (reply.status, reply.reason, reply.body, reply.headers()) == (204, "No Content", b"", ())


def test_langfuse_gets_a_multi_status_without_errors() -> None:
    endpoint = telemetry_endpoint("cloud.langfuse.com", "/api/public/ingestion")
    assert endpoint is not None
    reply = reply_for(endpoint)
    assert reply.status == 207 and json.loads(reply.body) == {"successes": [], "errors": []}


def test_otlp_answers_in_the_request_encoding() -> None:
    endpoint = telemetry_endpoint("localhost:4318", "/v1/traces")
    assert endpoint is not None
    protobuf = reply_for(endpoint, "application/x-protobuf")
    assert (protobuf.status, protobuf.body) == (200, b"")
    assert protobuf.headers() == (("content-type", "application/x-protobuf"),)
    as_json = reply_for(endpoint, "application/json")
    assert as_json.body == b"{}" and as_json.headers() == (("content-type", "application/json"),)


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.service)
def test_every_reply_is_a_success_with_a_valid_body(endpoint: TelemetryEndpoint) -> None:
    reply = endpoint.reply
    assert 200 <= reply.status < 300
    if reply.content_type == "application/json":
        json.loads(reply.body)
    assert (reply.status == 204) == (reply.body == b"" and reply.content_type is None)
