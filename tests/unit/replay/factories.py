"""Recorded steps as the store returns them, for the replay unit tests."""

from __future__ import annotations

from typing import Any

from rewind.store.models import StepRecord


def make_step(step: int, fingerprint: str = "v1:aa", **fields: Any) -> StepRecord:
    """A recorded step; by default an LLM call that got a 200."""
    defaults: dict[str, Any] = {
        "session_id": "s1",
        "kind": "llm",
        "method": "POST",
        "url": "https://api.openai.com/v1/chat/completions",
        "started_at": 1_700_000_000.0 + step,
        "request_headers": (("authorization", "[REDACTED]"),),
        "request_sha": f"req{step}",
        "provider": "openai",
        "status": 200,
        "response_sha": f"resp{step}",
    }
    return StepRecord(step=step, fingerprint=fingerprint, **{**defaults, **fields})
