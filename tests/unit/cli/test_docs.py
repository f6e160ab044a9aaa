"""docs/cli.md is generated from the commands' help and must stay in step with them."""

from __future__ import annotations

from pathlib import Path

import click

from rewind.cli import cli
from rewind.cli.docs import reference

ROOT = Path(__file__).resolve().parents[3]


def test_cli_reference_is_current() -> None:
    expected = reference()
    actual = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert actual == expected, "regenerate: python -m rewind.cli.docs > docs/cli.md"


def test_every_command_has_help_and_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ctx = click.Context(cli)
    for name in cli.list_commands(ctx):
        command = cli.get_command(ctx, name)
        assert command is not None and command.help, name
        assert f"rewind {name}" in readme or f"`{name}`" in readme, f"README does not mention {name}"


def test_readme_documents_every_replay_exit_code() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    from rewind.replay import outcome

    for code in (outcome.EXIT_OK, outcome.EXIT_MISS, outcome.EXIT_OUTPUT_DIFFERS, outcome.EXIT_UNUSED_STEPS):
        assert f"| {code} |" in readme
