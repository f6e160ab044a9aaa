"""Plain records the store reads and writes."""

from __future__ import annotations

from dataclasses import dataclass, field

from rewind.core.exchange import Headers


@dataclass(frozen=True)
class SessionStart:
    """What is known when a recording begins."""

    id: str
    name: str | None
    mode: str  # "record" | "proxy" | "mitmdump" | "replay-live" | "branch" | "mutate"
    started_at: float  # epoch seconds
    command: tuple[str, ...]
    cwd: str
    git_commit: str | None = None
    parent_id: str | None = None  # the replayed or branched session
    upstreams: dict[str, str] = field(default_factory=dict)  # provider -> upstream base URL
    routes: dict[str, str] = field(default_factory=dict)  # logical host -> target URL
    fingerprint_version: int = 1
    pid: int = 0
    fork_step: int | None = None  # the parent's step this branch changed (branch, mutate)
    fault: str | None = None  # the fault injected at fork_step (mutate)


@dataclass
class SessionInfo:
    """A session as listed: its start plus how it ended and its totals."""

    id: str
    name: str | None
    mode: str
    started_at: float
    command: tuple[str, ...]
    cwd: str
    status: str  # "recording" | "complete" | "interrupted"
    git_commit: str | None = None
    parent_id: str | None = None
    upstreams: dict[str, str] = field(default_factory=dict)
    routes: dict[str, str] = field(default_factory=dict)
    fingerprint_version: int = 1
    fork_step: int | None = None
    fault: str | None = None
    ended_at: float | None = None
    exit_code: int | None = None
    stdout_sha: str | None = None
    stderr_sha: str | None = None
    steps: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    lost: int = 0  # exchanges the recorder could not store (see Gap)

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass
class StepRecord:
    """One recorded, redacted exchange as the index keeps it; bodies live in blobs."""

    session_id: str
    step: int  # from 1, in the order the proxy received requests
    kind: str  # "llm" | "http" | "telemetry" (an observability upload, answered generically in replay)
    method: str
    url: str  # logical URL, redacted
    started_at: float
    fingerprint: str
    request_headers: Headers
    request_sha: str
    provider: str | None = None
    model: str | None = None
    status: int | None = None
    reason: str = ""
    error: str | None = None
    response_headers: Headers = ()
    response_sha: str | None = None
    latency_ms: float | None = None
    ttft_ms: float | None = None
    streamed: bool = False
    chunks: tuple[tuple[float, int], ...] | None = None  # (t_ms, length) per chunk
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    # What the response means to the agent (rewind.canon.meaning), read once at record time:
    meaning: str | None = None  # digest: equal for responses the agent cannot tell apart
    finish_reason: str | None = None  # the provider's own value ("refusal" for a refusal)
    error_type: str | None = None  # the provider's error type or code
    response_model: str | None = None  # the model the provider says answered
    tag: str | None = None  # failure tag (rewind.analysis.tags), None when it did not fail


@dataclass(frozen=True)
class Gap:
    """An exchange the recorder saw but could not store: its step number and why."""

    step: int
    reason: str
