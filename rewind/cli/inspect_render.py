"""What ``rewind inspect`` shows beyond the shared renderers: costs, tags, what a step
gave the agent, and the conversation as the model saw it.

Everything recorded (text, tool names and arguments, error messages, headers, bodies)
is untrusted and shown as ``Text`` with control characters escaped (``render.visible``);
``--json`` keeps it exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from rewind.analysis.reading import NO_USAGE, Received, SessionCost, StepCost, usage_json
from rewind.canon.conversation import Message
from rewind.canon.meaning import Meaning, ToolCall
from rewind.canon.providers import Usage
from rewind.cli.render import BODY_KEEP, cell, json_text, step_json, visible
from rewind.store.models import StepRecord

NOT_REPORTED = "not reported"
_BELOW: RenderableType = Text("the response body, below")
Rows = list[tuple[str, RenderableType]]  # a label and its value, in the panel
UNPRICED = "unpriced"

# --- JSON ------------------------------------------------------------------------------


def step_cost_json(step: StepRecord, cost: StepCost, tag: str | None) -> dict[str, Any]:
    """``render.step_json`` plus the step's cost (``null`` = unknown) and failure tag."""
    return {**step_json(step), "cost_usd": cost.usd, "tag": tag}


def session_cost_json(total: SessionCost) -> dict[str, Any]:
    return {"cost_usd": total.usd, "unpriced_calls": total.unpriced_calls}


def conversation_json(step: int, messages: Sequence[Message]) -> dict[str, Any]:
    return {"step": step, "messages": [m.to_json() for m in messages]}


# --- small formats ---------------------------------------------------------------------


def usd(value: float | None) -> str:
    """``$0.0123``, ``$0.000125``; ``unpriced`` for ``None`` (never ``$0``)."""
    if value is None:
        return UNPRICED
    if value == 0:
        return "$0"
    if value < 0.000001:
        return "<$0.000001"
    return "$" + f"{value:.6f}".rstrip("0").rstrip(".")


def _cost_cell(step: StepRecord, cost: StepCost) -> str:
    if step.kind != "llm":
        return ""
    if cost.usd is None and cost.why_none == NO_USAGE:
        return "unknown" if _succeeded(step) else ""  # a failed call that reported nothing
    return usd(cost.usd)


def _succeeded(step: StepRecord) -> bool:
    return step.status is not None and 200 <= step.status < 300


def _tokens(step: StepRecord, count: int | None) -> str:
    if count is not None:
        return str(count)
    return NOT_REPORTED if step.kind == "llm" and step.status is not None else ""


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:.0f} ms"


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _status(step: StepRecord) -> str:
    return str(step.status) if step.status is not None else f"failed: {_short(step.error or '', 30)}"


# --- the session: steps with cost and tag ----------------------------------------------

STEP_COLUMNS = (
    "#", "KIND", "PROVIDER", "MODEL", "METHOD", "URL", "STATUS",
    "IN", "OUT", "COST", "LATENCY", "TTFT", "STREAM", "TAG",
)  # fmt: skip


def steps_table(steps: Sequence[StepRecord], costs: Sequence[StepCost], tags: Sequence[str | None]) -> Table:
    """``render.steps_table`` with each step's COST and failure TAG."""
    table = Table(*STEP_COLUMNS)
    for step, cost, tag in zip(steps, costs, tags, strict=True):
        table.add_row(*[cell(v) for v in _step_row(step, cost, tag)])
    return table


def _step_row(r: StepRecord, cost: StepCost, tag: str | None) -> tuple[object, ...]:
    return (
        r.step, r.kind, r.provider, r.model, r.method, _short(r.url, 60), _status(r),
        _tokens(r, r.input_tokens), _tokens(r, r.output_tokens), _cost_cell(r, cost),
        _ms(r.latency_ms), _ms(r.ttft_ms), "yes" if r.streamed else "", tag,
    )  # fmt: skip


def cost_line(total: SessionCost, as_of: str) -> Text:
    """``cost: $0.0123 (2 calls unpriced; prices as of 2026-08-21)``."""
    if total.llm_calls == 0:
        return Text("cost: $0 (no LLM calls)")
    notes = [f"{total.unpriced_calls} call{'s' if total.unpriced_calls != 1 else ''} unpriced"]
    notes = (notes if total.unpriced_calls else []) + ([f"prices as of {as_of}"] if as_of else [])
    amount = usd(total.usd) if total.usd is not None else "unknown"
    return Text(f"cost: {amount}" + (f" ({'; '.join(notes)})" if notes else ""))


# --- one step: what the agent received -------------------------------------------------


def received_panel(seen: Received, model: str | None) -> Panel:
    """The assembled answer, its usage, cost, tag and timing, one labelled row each."""
    grid = Table(show_header=False, box=None, pad_edge=False)
    grid.add_column(style="dim", no_wrap=True)
    grid.add_column()
    for label, value in _received_rows(seen, model):
        grid.add_row(label, value)
    return Panel(grid, title="What the agent received", title_align="left")


def _received_rows(seen: Received, model: str | None) -> Rows:
    m = seen.meaning
    rows = _answer_rows(m) if m.kind == "llm" else [("body", _BELOW)]
    rows.append(("tag", cell(seen.tag or "none")))
    if m.kind == "llm":
        rows += [("usage", Text(_usage_text(seen.usage))), ("cost", Text(_cost_text(seen.cost, model)))]
    return rows + [("timing", Text(_timing(seen)))]


def _answer_rows(m: Meaning) -> Rows:
    rows: Rows = []
    if m.reasoning:
        rows.append(("reasoning", _text_block(m.reasoning)))
    if m.text or not (m.tool_calls or m.refusal or m.error_type):
        rows.append(("text", _text_block(m.text) if m.text else Text("(no text)", style="dim")))
    if m.refusal:
        rows.append(("refusal", _text_block(m.refusal)))
    rows += [(f"tool call {i}", tool_call_view(c)) for i, c in enumerate(m.tool_calls, 1)]
    rows.append(("finish reason", cell(m.finish_reason or NOT_REPORTED)))
    if m.error_type or m.error_message:
        rows.append(("error", _error_text(m)))
    return rows


def _text_block(text: str) -> Text:
    return Text(visible(text, keep=BODY_KEEP))


def _error_text(m: Meaning) -> Text:
    parts = [p for p in (m.error_type, m.error_message) if p]
    return Text(visible(": ".join(parts), keep=BODY_KEEP), style="red")


def tool_call_view(call: ToolCall) -> Text:
    """``name`` then its arguments, pretty when they are JSON, flagged when not."""
    head = Text.assemble((visible(call.name) or "(unnamed)", "bold"))
    if not call.arguments_valid:
        head.append("  arguments are not valid JSON:", style="bold red")
        return Text("\n").join([head, Text(visible(str(call.arguments), keep=BODY_KEEP))])
    return Text("\n").join([head, Text(visible(json_text(call.arguments), keep=BODY_KEEP))])


def _usage_text(usage: Usage) -> str:
    counts = usage_json(usage)
    names = {"input_tokens": "input", "output_tokens": "output"}
    names |= {"cache_read_tokens": "cache read", "cache_write_tokens": "cache write"}
    return "  ".join(f"{names[k]} {NOT_REPORTED if v is None else v}" for k, v in counts.items())


def _cost_text(cost: StepCost, model: str | None) -> str:
    if cost.usd is not None:
        return f"{usd(cost.usd)} (priced as {cost.model})"
    if cost.why_none == NO_USAGE:
        return f"unknown: {NO_USAGE}"
    return f"{UNPRICED}: {cost.why_none or f'no price for {model}'}"


def _timing(seen: Received) -> str:
    latency = f"latency {_ms(seen.latency_ms) or 'n/a'}"
    if not seen.streamed:
        return f"not streamed, {latency}"
    chunks = "?" if seen.chunks is None else str(seen.chunks)
    return f"streamed, {chunks} chunks, ttft {_ms(seen.ttft_ms) or 'n/a'}, {latency}"


def response_note(step: StepRecord, size: int) -> str:
    """What stands in for a response body the panel above has already assembled."""
    return f"({size} bytes{' streamed' if step.streamed else ''}; assembled above; --raw shows them)"


# --- the conversation ------------------------------------------------------------------


def conversation_view(step: StepRecord, messages: Sequence[Message], failure: Meaning | None) -> Group:
    """A transcript: one header per turn, tool calls with their arguments, tool results
    with their tool's name; ``failure`` when the call itself got an error instead."""
    about = f"conversation at step {step.step} ({step.provider} {step.model or ''}), {len(messages)} messages"
    parts: list[RenderableType] = [Text(visible(about), style="bold")]
    for message in messages:
        parts += [Text(""), *message_lines(message)]
    if failure is not None:
        parts += [Text(""), Text.assemble(("step failed: ", "bold red"), _error_text(failure))]
    return Group(*parts)


def message_lines(message: Message) -> list[Text]:
    """The header of one turn, its text, and each tool call under it."""
    lines = [_message_header(message)]
    if message.text:
        lines.append(_text_block(message.text))
    for call in message.tool_calls:
        lines.append(Text.assemble(("→ tool call ", "cyan"), tool_call_view(call)))
    return lines


def _message_header(message: Message) -> Text:
    extra = [p for p in (message.name, message.tool_call_id and f"id {message.tool_call_id}") if p]
    label = message.role + (f" ({', '.join(extra)})" if extra else "")
    return Text(f"── {visible(label)} ──", style="bold")
