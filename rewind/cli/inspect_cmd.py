"""``rewind inspect``: one session's steps with cost and tags, one step as the agent
received it, or the conversation the model saw at the last call."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click
from rich.console import Group

from rewind.cli.app import App
from rewind.cli.documents import (
    bodies,
    body_json,
    conversation_document,
    pick_step,
    prices,
    session_document,
    step_document,
)
from rewind.cli.inspect_render import (
    conversation_view,
    cost_line,
    received_panel,
    response_note,
    steps_table,
)
from rewind.cli.remote_cmd import remote_option
from rewind.cli.render import emit_json, gaps_lines, session_header, show, step_detail
from rewind.cli.sessions_cmd import JSON_HELP
from rewind.errors import RewindError

if TYPE_CHECKING:
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
@remote_option
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
        _inspect_conversation(app, steps, as_json)
    elif step_no is not None:
        _inspect_step(app, pick_step(steps, step_no), raw, as_json)
    else:
        _inspect_session(app, info, steps, as_json)


def _check_options(step_no: int | None, raw: bool, conversation: bool) -> None:
    if raw and step_no is None:
        raise click.UsageError("--raw needs --step N: it shows one step's response body as recorded")
    if conversation and step_no is not None:
        raise click.UsageError("--conversation and --step cannot be combined")


# --- the session -----------------------------------------------------------------------


def _inspect_session(app: App, info: SessionInfo, steps: list[StepRecord], as_json: bool) -> None:
    """The steps with cost and tag, and any the recorder could not store (gaps)."""
    if as_json:
        emit_json(session_document(app, info, steps))
        return
    from rewind.analysis.reading import session_cost, step_cost, tag_of

    store, table = app.store(), prices(app)
    costs, tags = [step_cost(table, s) for s in steps], [tag_of(s) for s in steps]
    show(
        Group(session_header(info), cost_line(session_cost(table, steps), table.as_of)),
        steps_table(steps, costs, tags),
        *gaps_lines(store.gaps(info.id)),
    )


# --- one step --------------------------------------------------------------------------


def _inspect_step(app: App, step: StepRecord, raw: bool, as_json: bool) -> None:
    """As JSON: the step, what it gave the agent, and both sides in full. As a view: the
    assembled answer then headers and the request body, or with ``raw`` the bytes."""
    if as_json:
        emit_json(step_document(app, step))
        return
    from rewind.analysis.reading import received

    request, response = bodies(app.store(), step)
    seen = received(step, response, prices(app))
    if raw or seen.meaning.kind != "llm":
        show(step_detail(step, body_json(request), body_json(response)))
    else:
        note = response_note(step, len(response)) if response else ""
        show(received_panel(seen, step.model), step_detail(step, body_json(request), note))


# --- the conversation ------------------------------------------------------------------


def _inspect_conversation(app: App, steps: list[StepRecord], as_json: bool) -> None:
    """The last LLM call's conversation and its own answer, as JSON or a transcript."""
    if as_json:
        emit_json(conversation_document(app, steps))
        return
    from rewind.analysis.reading import last_llm_step, meaning_of, transcript

    step = last_llm_step(steps)
    if step is None:
        raise RewindError("this session has no LLM call to show the conversation of")
    request, response = bodies(app.store(), step)
    meaning = meaning_of(step, response)
    failed = meaning if meaning.error_type or meaning.error_message else None
    show(conversation_view(step, transcript(step, request, meaning), failed))


COMMANDS = [inspect_command]
