"""``rewind ui``: serve the local web viewer until Ctrl-C (loaded by name by the CLI's
command table: the viewer is the stage above the CLI, whose documents it serves)."""

from __future__ import annotations

import errno
import os
import sys

import click

from rewind.cli.app import App
from rewind.errors import ConfigError

DEFAULT_PORT = 8787


@click.command("ui")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=DEFAULT_PORT,
    show_default=True,
    help="Port to listen on (0: any free one).",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to bind. Anything but loopback requires the access token printed in the URL.",
)
@click.option(
    "--open/--no-open",
    "open_browser",
    default=None,
    help="Open the page in a browser (default: when there is a display and a terminal).",
)
@click.pass_obj
def ui_command(app: App, port: int, host: str, open_browser: bool | None) -> None:
    """Serve a read-only web viewer of the store on localhost, and print its URL.

    \b
    Examples:
      rewind ui
      rewind ui --port 0 --no-open
      rewind ui --host 0.0.0.0          # reachable from elsewhere: needs the token

    Sessions (live while recording), a session's timeline, tokens and cost, its
    conversation and every step's request and response, two sessions compared, and the
    lineage of branches. Works offline (every asset is served from the package) and
    never changes the store. Every page has a URL to paste into a bug report.
    """
    from rewind.ui.server import UiServer, ViewerConfig

    config = ViewerConfig.for_host(host, port)
    try:
        server = UiServer(app, config)
    except OSError as exc:
        raise ConfigError(_bind_error(host, port, exc), hint="choose another --port, or --port 0") from exc
    click.echo(f"Rewind viewer: {server.url}", err=False)
    if config.token is not None:
        click.echo(f"rewind: listening on {host}: the URL's token is required; keep it private", err=True)
    click.echo("Ctrl-C to stop.", err=True)
    sys.stdout.flush()
    if _should_open(open_browser):
        import webbrowser

        webbrowser.open(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def _bind_error(host: str, port: int, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return f"port {port} on {host} is already in use"
    return f"cannot listen on {host}:{port}: {exc.strerror or exc}"


def _should_open(requested: bool | None) -> bool:
    if requested is not None:
        return requested
    has_display = sys.platform in ("darwin", "win32") or bool(
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    )
    return has_display and sys.stdout.isatty()


COMMANDS = [ui_command]
