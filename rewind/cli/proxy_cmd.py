"""``rewind proxy`` (a long-running recording proxy) and ``rewind env`` (its shell lines)."""

from __future__ import annotations

import json
import os
import shlex
import signal
import threading
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import click

from rewind.capture.runner import CommandResult
from rewind.capture.wiring import Wiring
from rewind.cli.app import App
from rewind.cli.record_cmd import LOCAL_PORT_HELP, report, request_from_options
from rewind.cli.run import record
from rewind.errors import RewindError

STATE_FILE = "proxy.json"
EXPORTED = (
    "HTTPS_PROXY",
    "HTTP_PROXY",
    "https_proxy",
    "http_proxy",
    "NO_PROXY",
    "no_proxy",
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS",
    "OPENAI_BASE_URL",
    "ANTHROPIC_BASE_URL",
    "GOOGLE_GEMINI_BASE_URL",
)


@click.command("proxy")
@click.option("--name", help="A name for the session this proxy records.")
@click.option("--route", "routes", multiple=True, metavar="HOST=URL", help="Route HOST to URL.")
@click.option("--redact", multiple=True, metavar="REGEX", help="Extra body redaction pattern.")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="Port of the proxy on 127.0.0.1 (0: any free port).")
@click.option("--local-port", "local_ports", multiple=True, type=int, metavar="PORT", help=LOCAL_PORT_HELP)
@click.pass_obj
@click.pass_context
def proxy_command(
    ctx: click.Context, app: App, name: str | None, routes: tuple[str, ...], redact: tuple[str, ...],
    port: int, local_ports: tuple[int, ...],
) -> None:
    """Run a recording proxy until Ctrl-C, for agents started by hand.

    In another shell, `eval "$(rewind env)"` wires that shell to this proxy.
    Everything it records goes into one session, saved when the proxy stops.
    """
    options = request_from_options(("rewind", "proxy"), name, routes, redact, mode="proxy",
                                   local_ports=local_ports)
    req = replace(options, listen_port=port)
    state = app.home.root / STATE_FILE
    ctx.exit(report(record(app.home, req, body=lambda w, env: _serve(state, w, env))))


def _serve(state: Path, wiring: Wiring, env: Mapping[str, str]) -> CommandResult:
    started = time.time()
    exports = {k: v for k, v in env.items() if k in EXPORTED or _wired_for_local_ports(k, v)}
    state.write_text(json.dumps({"pid": os.getpid(), "env": exports}), encoding="utf-8")
    click.echo(f"Recording proxy on http://127.0.0.1:{wiring.proxy_port} — Ctrl-C to stop.", err=True)
    click.echo('Wire a shell to it with: eval "$(rewind env)"', err=True)
    try:
        _wait_for_stop()
    finally:
        state.unlink(missing_ok=True)
    return CommandResult(0, b"", b"", started, time.time())


def _wired_for_local_ports(name: str, value: str) -> bool:
    """A variable ``--local-port`` changed (a mention of the port, ``OLLAMA_HOST``)."""
    return name != "PYTHONUNBUFFERED" and os.environ.get(name) != value


def _wait_for_stop() -> None:
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.2):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)


@click.command("env")
@click.pass_obj
def env_command(app: App) -> None:
    """Print the export lines that point a shell at a running `rewind proxy`."""
    state = app.home.root / STATE_FILE
    if not state.is_file():
        raise RewindError("no `rewind proxy` is running for this home", hint="start one with: rewind proxy")
    exports = json.loads(state.read_text(encoding="utf-8"))["env"]
    for key, value in exports.items():
        click.echo(f"export {key}={shlex.quote(value)}")


COMMANDS = [proxy_command, env_command]
