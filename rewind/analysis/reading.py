"""Reading one recorded run: what each step gave the agent, what it cost, how it failed.

``received(step, response_body, table)`` is the view of one step as the agent saw it:
the response's meaning (``rewind.canon.meaning``: assembled text, tool calls with parsed
arguments, finish reason, error), the usage the index keeps (``None`` = not reported by
the provider), its cost and its failure tag. ``transcript(step, request_body,
meaning)`` is the conversation the model saw at that call (``rewind.canon.
conversation``) followed by the call's own answer as the last assistant turn.

Cost. A step is priced by the model the provider says answered (``response_model``: a
dated snapshot may have its own row) when the price table knows it, else by the model
the request named. Its cost is ``None``, never 0, when

    the step is not an LLM call ................................ (not counted anywhere)
    the model has no price ...................................... "no price for <model>"
    the provider reported no token counts ....................... "usage not reported"

A session's cost is the sum of its known step costs; ``unpriced_calls`` counts the
successful (2xx) LLM calls whose cost is unknown (a failed call that reported no usage
was not billed and is not counted). When every counted call is unpriced the total is
``None``; a session with no LLM call costs 0.

Tags: steps recorded now carry theirs; older ones (``tag`` ``None``) are tagged again
from what the index keeps (``rewind.analysis.tags.step_tag``), so every view agrees.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from rewind.analysis.pricing import PriceTable, cost_of_totals
from rewind.analysis.stats import steps_cost as summarize_steps_cost
from rewind.analysis.tags import step_tag
from rewind.canon.conversation import Message, conversation
from rewind.canon.meaning import Meaning, response_meaning
from rewind.canon.providers import Usage, provider_named
from rewind.core.exchange import header
from rewind.store.models import StepRecord

__all__ = [
    "NO_USAGE",
    "Received",
    "SessionCost",
    "StepCost",
    "answer_message",
    "last_llm_step",
    "meaning_of",
    "received",
    "session_cost",
    "step_cost",
    "step_usage",
    "tag_of",
    "transcript",
    "usage_json",
]

NO_USAGE = "usage not reported"


@dataclass(frozen=True)
class StepCost:
    """USD for one step, or ``None`` and why; ``model`` is the price-table name used."""

    usd: float | None
    model: str | None = None
    why_none: str | None = None


@dataclass(frozen=True)
class SessionCost:
    """The sum of a session's known step costs, and how many calls it leaves out."""

    usd: float | None
    unpriced_calls: int
    llm_calls: int


@dataclass(frozen=True)
class Received:
    """What one step gave the agent, with its usage, cost, tag and stream timing."""

    step: int
    meaning: Meaning
    usage: Usage
    cost: StepCost
    tag: str | None
    streamed: bool
    chunks: int | None
    ttft_ms: float | None
    latency_ms: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            **self.meaning.to_json(),
            "usage": usage_json(self.usage),
            "cost_usd": self.cost.usd,
            "tag": self.tag,
        }


def tag_of(step: StepRecord) -> str | None:
    """The step's failure tag: as recorded, else derived from the index's fields."""
    return step.tag or step_tag(step)


def step_usage(step: StepRecord) -> Usage:
    return Usage(step.input_tokens, step.output_tokens, step.cache_read_tokens, step.cache_write_tokens)


def usage_json(usage: Usage) -> dict[str, int | None]:
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_read_tokens": usage.cache_read_tokens,
        "cache_write_tokens": usage.cache_write_tokens,
    }


def _reported(usage: Usage) -> bool:
    return any(n is not None for n in usage_json(usage).values())


def _priced_model(table: PriceTable, step: StepRecord) -> str | None:
    """The model asked for (as ``rewind stats`` and ``list`` price it), else the response's."""
    return step.model or step.response_model


def step_cost(table: PriceTable, step: StepRecord) -> StepCost:
    """USD for one step, by the rules of the module docstring."""
    if step.kind != "llm":
        return StepCost(None)
    model = _priced_model(table, step)
    usage = step_usage(step)
    if table.price(model) is None:
        return StepCost(None, table.resolve(model), f"no price for {model or 'an unnamed model'}")
    if not _reported(usage):
        return StepCost(None, table.resolve(model), NO_USAGE)
    return StepCost(cost_of_totals(table, model, step.provider, usage), table.resolve(model))


def _billable(step: StepRecord) -> bool:
    return step.kind == "llm" and step.status is not None and 200 <= step.status < 300


def session_cost(table: PriceTable, steps: Sequence[StepRecord]) -> SessionCost:
    """The session total as ``rewind list`` and ``stats`` count it (``None`` when every
    call is unpriced; a call is unpriced when its model is not in the table)."""
    cost = summarize_steps_cost(steps, table)
    return SessionCost(cost.usd, cost.unpriced_calls, sum(1 for s in steps if s.kind == "llm"))

def meaning_of(step: StepRecord, response_body: bytes) -> Meaning:
    """What the step's recorded response means (never raises)."""
    provider, content_type = provider_named(step.provider), header(step.response_headers, "content-type")
    return response_meaning(provider, step.status, content_type, response_body, step.error)


def received(step: StepRecord, response_body: bytes, table: PriceTable) -> Received:
    """The "what the agent received" view of one step."""
    return Received(
        step=step.step,
        meaning=meaning_of(step, response_body),
        usage=step_usage(step),
        cost=step_cost(table, step),
        tag=tag_of(step),
        streamed=step.streamed,
        chunks=len(step.chunks) if step.chunks is not None else None,
        ttft_ms=step.ttft_ms,
        latency_ms=step.latency_ms,
    )


def last_llm_step(steps: Sequence[StepRecord]) -> StepRecord | None:
    """The session's last LLM call of a provider Rewind reads, if any."""
    readable = (s for s in reversed(steps) if s.kind == "llm" and provider_named(s.provider) is not None)
    return next(readable, None)


def answer_message(meaning: Meaning) -> Message | None:
    """The response as an assistant turn; ``None`` when it said nothing (an error)."""
    text = meaning.text or meaning.refusal or ""
    if meaning.kind != "llm" or not (text or meaning.tool_calls):
        return None
    return Message(role="assistant", text=text, tool_calls=meaning.tool_calls)


def transcript(step: StepRecord, request_body: bytes, meaning: Meaning) -> list[Message]:
    """The conversation the model saw at ``step``, then the step's own answer (its
    response's ``meaning``) when it gave one."""
    messages = conversation(provider_named(step.provider), urlsplit(step.url).path, request_body)
    answer = answer_message(meaning)
    return messages + ([answer] if answer is not None else [])
