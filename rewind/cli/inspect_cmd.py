"""``rewind inspect``: one session's steps, or one step in full."""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

import click

from rewind.cli.app import App
from rewind.cli.render import (
    emit_json,
    gaps_lines,
    session_header,
    session_json,
    show,
    step_detail,
    step_json,
    steps_table,
)
from rewind.cli.sessions_cmd import JSON_HELP
from rewind.errors import RewindError
from rewind.store.models import SessionInfo, StepRecord

if TYPE_CHECKING:
    from rewind.store.index import Store


@click.command("inspect")
@click.argument("session")
@click.option("--step", "step_no", type=int, help="Show one step in full (numbered from 1).")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@click.pass_obj
def inspect_command(app: App, session: str, step_no: int | None, as_json: bool) -> None:
    """Show a session's steps, or one step in full.

    SESSION is an id, a unique id prefix, or a name (the newest with that name).
    """
    store = app.store()
    info = store.session(session)
    steps = store.steps(info.id)
    if step_no is not None:
        _inspect_step(app, _pick(steps, step_no), as_json)
    else:
        _inspect_session(store, info, steps, as_json)


def _inspect_session(store: Store, info: SessionInfo, steps: list[StepRecord], as_json: bool) -> None:
    """The steps, and any the recorder could not store (gaps), as JSON or a table."""
    gaps = store.gaps(info.id)
    if as_json:
        output = {name: _text_blob(store, sha) for name, sha in _outputs(info)}
        gap_docs = [{"step": g.step, "reason": g.reason} for g in gaps]
        emit_json({**session_json(info), **output, "steps": [step_json(s) for s in steps], "gaps": gap_docs})
    else:
        show(session_header(info), steps_table(steps), *gaps_lines(gaps))


def _outputs(info: SessionInfo) -> list[tuple[str, str | None]]:
    return [("stdout", info.stdout_sha), ("stderr", info.stderr_sha)]


def _text_blob(store: Store, sha: str | None) -> str | None:
    """The command's recorded (redacted) output as text, if any was kept."""
    return None if sha is None else store.blob(sha).decode("utf-8", "replace")


def _pick(steps: list[StepRecord], number: int) -> StepRecord:
    for step in steps:
        if step.step == number:
            return step
    raise RewindError(f"no step {number} in this session (it has {len(steps)} steps)")


def _inspect_step(app: App, step: StepRecord, as_json: bool) -> None:
    store = app.store()
    request = store.blob(step.request_sha)
    response = store.blob(step.response_sha) if step.response_sha else b""
    doc = {
        **step_json(step),
        "request": {"headers": [list(h) for h in step.request_headers], "body": _body(request)},
        "response": {"headers": [list(h) for h in step.response_headers], "body": _body(response)},
    }
    if as_json:
        emit_json(doc)
        return
    show(step_detail(step, doc["request"]["body"], doc["response"]["body"]))


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


COMMANDS = [inspect_command]
