"""``rewind remote add|list|rm``: name the team stores this machine can reach."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

import click

from rewind.cli.app import App
from rewind.cli.render import emit_json, visible

F = TypeVar("F", bound=Callable[..., Any])


def remote_option(command: F) -> F:
    """``--remote NAME``: the command reads the team store NAME instead of the local one."""
    return click.option(
        "--remote", metavar="NAME", expose_value=False, callback=_use_remote,
        help="Read the team store NAME (its catalog; bodies only when shown) instead of this machine's.",
    )(command)


def _use_remote(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        app = ctx.ensure_object(App)
        app.use_remote(value)
        ctx.call_on_close(app.close)


@click.group("remote")
def remote_group() -> None:
    """Name team stores: a PostgreSQL catalog and S3-compatible storage.

    \b
    Examples:
      rewind remote add team --catalog postgres://rewind@db.internal:5432/rewind \\
          --data s3://agent-runs/rewind --endpoint https://minio.internal:9000
      rewind remote list
      rewind remote rm team

    Credentials are never written under the home: PostgreSQL's come from PGPASSWORD or
    ~/.pgpass, S3's from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (or a profile). A URL
    with a password in it is refused. Then: `rewind push`, `rewind pull`, and `--remote
    NAME` on list, inspect and stats; `rewind remote compact NAME` now and then.
    """


@remote_group.command("add")
@click.argument("name")
@click.option(
    "--catalog", required=True, metavar="postgres://USER@HOST:PORT/DB", help="The DuckLake catalog."
)
@click.option(
    "--data", required=True, metavar="s3://BUCKET/PREFIX", help="Where tables and bodies are stored."
)
@click.option("--endpoint", metavar="URL", help="An S3-compatible endpoint (MinIO, R2, ...); default: AWS.")
@click.pass_obj
def add_command(app: App, name: str, catalog: str, data: str, endpoint: str | None) -> None:
    """Add the remote NAME (an error if it exists)."""
    from rewind.store.remotes import add_remote, check_remote

    remote = check_remote(name, catalog, data, endpoint)
    add_remote(app.home, remote)
    click.echo(f"Remote {remote.name}: catalog {remote.catalog}, data {remote.data}", err=True)


@remote_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON to stdout instead of lines.")
@click.pass_obj
def list_command(app: App, as_json: bool) -> None:
    """List the remotes."""
    from rewind.store.remotes import load_remotes

    remotes = sorted(load_remotes(app.home).values(), key=lambda r: r.name)
    if as_json:
        emit_json([r.to_json() for r in remotes])
        return
    if not remotes:
        click.echo(
            "No remotes. Add one with: rewind remote add NAME --catalog URL --data s3://BUCKET", err=True
        )
    for r in remotes:
        endpoint = f"  endpoint {r.endpoint}" if r.endpoint else ""
        click.echo(visible(f"{r.name}  catalog {r.catalog}  data {r.data}{endpoint}"))


@remote_group.command("rm")
@click.argument("name")
@click.pass_obj
def rm_command(app: App, name: str) -> None:
    """Forget the remote NAME (nothing on the remote changes)."""
    from rewind.store.remotes import remove_remote

    removed = remove_remote(app.home, name)
    click.echo(f"Removed remote {removed.name}", err=True)


@remote_group.command("compact")
@click.argument("name")
@click.option("--keep-hours", type=click.FloatRange(min=0), default=1.0, show_default=True, metavar="H",
              help="Keep the files of the last H hours' snapshots (readers still using them).")  # fmt: skip
@click.pass_obj
def compact_command(app: App, name: str, keep_hours: float) -> None:
    """Merge the remote's small files into large ones, and delete replaced ones.

    Each push adds a few small files (or rows in the catalog); run this now and then
    (e.g. nightly) to keep listings and stats fast. Safe while others push and pull.
    """
    from rewind.store.team import compact

    done = compact(app.use_remote(name), os.environ, keep_hours)
    click.echo(f"{name}: {done.files_before} data files before, {done.files_after} after; "
               f"{done.inlined_rows} rows moved out of the catalog", err=True)  # fmt: skip
    if done.unreferenced_bundles:
        click.echo(f"{done.unreferenced_bundles} body bundle(s) ({done.unreferenced_bytes} bytes) are not "
                   "referenced (left by interrupted pushes; a later push of the same sessions uses them)",
                   err=True)  # fmt: skip


COMMANDS = [remote_group]
