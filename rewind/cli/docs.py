"""The CLI reference (docs/cli.md), generated from the commands' own ``--help``.

Regenerate with ``python -m rewind.cli.docs > docs/cli.md``; a test fails when the
file and the commands disagree.
"""

from __future__ import annotations

import click

from rewind.cli import cli

HEADER = """# Rewind CLI reference

Generated from `--help` by `python -m rewind.cli.docs > docs/cli.md`; do not edit.
"""


def help_text(args: list[str]) -> str:
    """What ``rewind ARGS --help`` prints."""
    with click.Context(cli, info_name="rewind", terminal_width=100, **cli.context_settings) as root:
        if not args:
            return cli.get_help(root)
        command = cli.get_command(root, args[0])
        assert command is not None, args[0]
        with click.Context(command, info_name=args[0], parent=root, terminal_width=100) as sub:
            return command.get_help(sub)


def reference() -> str:
    root = click.Context(cli, info_name="rewind")
    sections = [HEADER, "## rewind\n", _block(help_text([]))]
    for name in cli.list_commands(root):
        sections += [f"## rewind {name}\n", _block(help_text([name]))]
    return "\n".join(sections)


def _block(text: str) -> str:
    return f"```\n{text.rstrip()}\n```\n"


if __name__ == "__main__":
    print(reference(), end="")
