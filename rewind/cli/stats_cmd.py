"""``rewind stats``: where the money and the time went."""

from __future__ import annotations

import time

import click

from rewind.cli.app import App
from rewind.cli.remote_cmd import remote_option
from rewind.cli.render import emit_json, show, stats_json, stats_table
from rewind.cli.sessions_cmd import JSON_HELP
from rewind.store.stats import By

DAY_SECONDS = 86400


@click.command("stats")
@click.option(
    "--days", type=click.IntRange(min=1), metavar="N", help="Only calls started in the last N days."
)
@click.option(
    "--by",
    type=click.Choice([b.value for b in By]),
    default=By.MODEL.value,
    show_default=True,
    help="Group by the requested model, the provider, the session, or the local day.",
)
@remote_option
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@click.pass_obj
def stats_command(app: App, days: int | None, by: str, as_json: bool) -> None:
    """Calls, tokens, latency, errors and cost, by model, provider, session or day.

    Cost comes from a dated price table (bundled; override it with $REWIND_PRICES or
    $REWIND_HOME/prices.json). A model the table does not price is shown as unpriced and
    left out of cost, never counted as free.

    \b
    Examples:
      rewind stats
      rewind stats --days 7 --by day
      rewind stats --by session --json
    """
    from rewind.analysis.pricing import load_prices
    from rewind.analysis.stats import stats

    since = time.time() - days * DAY_SECONDS if days is not None else None
    prices = load_prices(app.home.root)
    result = stats(app.store().stats(By(by), since), By(by), days, prices)
    if as_json:
        emit_json(stats_json(result))
    elif not result.rows:
        click.echo("No calls recorded" + (f" in the last {days} day(s)." if days else " yet."), err=True)
    else:
        show(stats_table(result))


COMMANDS = [stats_command]
