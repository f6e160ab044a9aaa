"""CLI boundary: errors become one line and an exit code; usage errors are click's."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from rewind.cli import cli


def test_unknown_session_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--home", str(tmp_path), "inspect", "nope"])
    assert result.exit_code == 1
    assert "rewind: error:" in result.output and "Traceback" not in result.output


def test_unknown_command_and_option_are_usage_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["frobnicate"]).exit_code == 2
    assert runner.invoke(cli, ["--home", str(tmp_path), "list", "--bogus"]).exit_code == 2


def test_bad_pace_lists_valid_values(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--home", str(tmp_path), "replay", "x", "--pace", "warp"])
    assert result.exit_code == 2 and "fast" in result.output and "original" in result.output


def test_empty_list(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--home", str(tmp_path), "list", "--json"])
    assert result.exit_code == 0 and result.output.strip() == "[]"
