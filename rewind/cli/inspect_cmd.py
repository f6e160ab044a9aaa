"""``rewind inspect``: one session's steps with cost and tags, one step as the agent
received it, or the conversation the model saw at the last call."""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

import click
from rich.console import Group

from rewind.cli.app import App
from rewind.cli.inspect_render import (
    conversation_json,
    conversation_view,
    cost_line,
    received_panel,
    response_note,
    step_cost_json,
    steps_table,
)
from rewind.cli.render import emit_json, gaps_lines, session_header, session_json, show, step_detail
from rewind.cli.sessions_cmd import JSON_HELP
from rewind.errors import RewindError

if TYPE_CHECKING:
    from rewind.analysis.pricing import PriceTable
    from rewind.store.index import Store
    from rewind.store.models import SessionInfo, StepRecord


@click.command("inspect")
@click.argument("session")
@click.option(
    "--step", "step_no", type=int, metavar="N", help="Show step N (from 1) as the agent received it."
)
@click.option("--raw", is_flag=True, help="With --step: the response body as recorded, not assembled.")
@click.option(
    "--conversation",
    is_flag=True,
    help="The conversation the model saw at the last LLM call, and its answer.",
)
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@click.pass_obj
def inspect_command(
    app: App, session: str, step_no: int | None, raw: bool, conversation: bool, as_json: bool
) -> None:
    """Show a session's steps, or one step in full.

    SESSION is an id, a unique id prefix, or a name (the newest with that name).

    Each step shows its cost, from a dated price table (a model it does not price is
    "unpriced", never $0), and its failure tag. --step shows what the agent received:
    the answer assembled from a stream, tool calls with parsed arguments, finish
    reason, error, usage ("not reported" when the provider gave none), timing.

    \b
    Examples:
      rewind inspect demo
      rewind inspect demo --step 3
      rewind inspect demo --step 3 --raw
      rewind inspect demo --conversation
    """
    _check_options(step_no, raw, conversation)
    store = app.store()
    info = store.session(session)
    steps = store.steps(info.id)
    if conversation:
        _inspect_conversation(store, steps, as_json)
    elif step_no is not None:
        _inspect_step(app, _pick(steps, step_no), raw, as_json)
    else:
        _inspect_session(app, info, steps, as_json)


def _check_options(step_no: int | None, raw: bool, conversation: bool) -> None:
    if raw and step_no is None:
        raise click.UsageError("--raw needs --step N: it shows one step's response body as recorded")
    if conversation and step_no is not None:
        raise click.UsageError("--conversation and --step cannot be combined")


def _prices(app: App) -> PriceTable:
    from rewind.analysis.pricing import load_prices

    return load_prices(app.home.root)


# --- the session -----------------------------------------------------------------------


def _inspect_session(app: App, info: SessionInfo, steps: list[StepRecord], as_json: bool) -> None:
    """The steps with cost and tag, and any the recorder could not store (gaps)."""
    from rewind.analysis.reading import session_cost, step_cost, tag_of

    store, table = app.store(), _prices(app)
    costs, tags = [step_cost(table, s) for s in steps], [tag_of(s) for s in steps]
    total, gaps = session_cost(table, steps), store.gaps(info.id)
    if not as_json:
        show(
            Group(session_header(info), cost_line(total, table.as_of)),
            steps_table(steps, costs, tags),
            *gaps_lines(gaps),
        )
        return
    from rewind.analysis.stats import summarize_steps  # cost and tags as `list` counts them

    emit_json({
        **session_json(info, summarize_steps(info, steps, table)),
        **{name: _text_blob(store, sha) for name, sha in _outputs(info)},
        "steps": [step_cost_json(s, c, t) for s, c, t in zip(steps, costs, tags, strict=True)],
        "gaps": [{"step": g.step, "reason": g.reason} for g in gaps],
    })  # fmt: skip


def _outputs(info: SessionInfo) -> list[tuple[str, str | None]]:
    return [("stdout", info.stdout_sha), ("stderr", info.stderr_sha)]


def _text_blob(store: Store, sha: str | None) -> str | None:
    """The command's recorded (redacted) output as text, if any was kept."""
    return None if sha is None else store.blob(sha).decode("utf-8", "replace")


# --- one step --------------------------------------------------------------------------


def _pick(steps: list[StepRecord], number: int) -> StepRecord:
    for step in steps:
        if step.step == number:
            return step
    raise RewindError(f"no step {number} in this session (it has {len(steps)} steps)")


def _bodies(store: Store, step: StepRecord) -> tuple[bytes, bytes]:
    return store.blob(step.request_sha), store.blob(step.response_sha) if step.response_sha else b""


def _inspect_step(app: App, step: StepRecord, raw: bool, as_json: bool) -> None:
    """As JSON: the step, what it gave the agent, and both sides in full. As a view: the
    assembled answer then headers and the request body, or with ``raw`` the bytes."""
    from rewind.analysis.reading import received

    request, response = _bodies(app.store(), step)
    seen = received(step, response, _prices(app))
    request_doc = {"headers": [list(h) for h in step.request_headers], "body": _body(request)}
    if as_json:
        response_doc = {"headers": [list(h) for h in step.response_headers], "body": _body(response)}
        extra = {"received": seen.to_json(), "request": request_doc, "response": response_doc}
        emit_json({**step_cost_json(step, seen.cost, seen.tag), **extra})
    elif raw or seen.meaning.kind != "llm":
        show(step_detail(step, request_doc["body"], _body(response)))
    else:
        note = response_note(step, len(response)) if response else ""
        show(received_panel(seen, step.model), step_detail(step, request_doc["body"], note))


def _body(data: bytes) -> Any:
    """JSON bodies as JSON, text as text, anything else as base64."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode("ascii")}
    try:
        return json.loads(text) if text.strip() else text
    except ValueError:
        return text


# --- the conversation ------------------------------------------------------------------


def _inspect_conversation(store: Store, steps: list[StepRecord], as_json: bool) -> None:
    """The last LLM call's conversation and its own answer, as JSON or a transcript."""
    from rewind.analysis.reading import last_llm_step, meaning_of, transcript

    step = last_llm_step(steps)
    if step is None:
        raise RewindError("this session has no LLM call to show the conversation of")
    request, response = _bodies(store, step)
    meaning = meaning_of(step, response)
    messages = transcript(step, request, meaning)
    if as_json:
        emit_json(conversation_json(step.step, messages))
        return
    failed = meaning if meaning.error_type or meaning.error_message else None
    show(conversation_view(step, messages, failed))


COMMANDS = [inspect_command]
