"""The command group: lazy commands, a nearest-command hint, and a light import graph
(what `rewind --help` and `import rewind.cli` load; no timings, see bench/startup.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
from click.testing import CliRunner

from rewind.cli import COMMANDS, cli

HEAVY = ("mitmproxy", "duckdb", "zstandard", "rich")
LOADED = "import sys, json; print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"


def loaded_after(code: str) -> set[str]:
    """Top-level packages a fresh interpreter has imported after running ``code``."""
    run = subprocess.run(
        [sys.executable, "-c", f"{code}\n{LOADED}"], capture_output=True, text=True, check=True
    )
    return set(json.loads(run.stdout.splitlines()[-1]))


def test_import_rewind_cli_loads_no_heavy_package() -> None:
    assert loaded_after("import rewind.cli") & set(HEAVY) == set()


def test_help_lists_every_command_without_importing_any() -> None:
    code = (
        "from click.testing import CliRunner\nfrom rewind.cli import cli\nCliRunner().invoke(cli, ['--help'])"
    )
    assert loaded_after(code) & set(HEAVY) == set()
    output = CliRunner().invoke(cli, ["--help"]).output
    assert all(f"  {name} " in output for name in COMMANDS)


def test_list_on_an_empty_home_loads_neither_mitmproxy_nor_duckdb(tmp_path: Path) -> None:
    code = (
        "from click.testing import CliRunner\nfrom rewind.cli import cli\n"
        f"CliRunner().invoke(cli, ['--home', {str(tmp_path / 'h')!r}, 'list'])"
    )
    assert loaded_after(code) & {"mitmproxy", "duckdb"} == set()


def test_list_on_an_empty_home_loads_no_mitmproxy(tmp_path: Path) -> None:
    code = (
        "from click.testing import CliRunner\nfrom rewind.cli import cli\n"
        f"CliRunner().invoke(cli, ['--home', {str(tmp_path / 'h')!r}, 'list'])"
    )
    assert "mitmproxy" not in loaded_after(code)


def test_summaries_in_help_are_the_commands_own() -> None:
    ctx = click.Context(cli)
    for name, (_module, summary) in COMMANDS.items():
        command = cli.get_command(ctx, name)
        assert command is not None and command.get_short_help_str(limit=1000) == summary, name


def test_unknown_command_suggests_the_nearest() -> None:
    result = CliRunner().invoke(cli, ["lst"])
    assert result.exit_code == 2
    assert "No such command 'lst'. Did you mean 'list'?" in result.stderr


def test_unknown_command_without_a_near_one() -> None:
    result = CliRunner().invoke(cli, ["frobnicate"])
    assert result.exit_code == 2
    assert "No such command 'frobnicate'." in result.stderr and "Did you mean" not in result.stderr
