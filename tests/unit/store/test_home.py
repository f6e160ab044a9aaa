"""Where the store lives: --home > REWIND_HOME > ~/.rewind, and nothing created early."""

from __future__ import annotations

from pathlib import Path

from rewind.store.home import Home, resolve_home


def test_explicit_home_wins_over_environment(tmp_path: Path) -> None:
    home = resolve_home(str(tmp_path / "a"), {"REWIND_HOME": str(tmp_path / "b")})
    assert home.root == tmp_path / "a"


def test_environment_used_without_explicit(tmp_path: Path) -> None:
    assert resolve_home(None, {"REWIND_HOME": str(tmp_path / "b")}).root == tmp_path / "b"


def test_default_is_dot_rewind_in_user_home() -> None:
    assert resolve_home(None, {}).root == Path("~/.rewind").expanduser()


def test_empty_environment_value_is_ignored() -> None:
    assert resolve_home(None, {"REWIND_HOME": ""}).root == Path("~/.rewind").expanduser()


def test_tilde_and_relative_paths_become_absolute() -> None:
    assert resolve_home("~/x", {}).root == Path("~/x").expanduser()
    assert resolve_home("rel", {}).root.is_absolute()


def test_layout_paths(tmp_path: Path) -> None:
    home = Home(tmp_path)
    assert home.ca_dir == tmp_path / "ca"
    assert home.index_path == tmp_path / "index.duckdb"
    assert home.lock_path == tmp_path / "index.lock"
    assert home.journal_dir == tmp_path / "journal"
    assert home.packs_dir == tmp_path / "packs"
    assert home.session_journal("abc") == tmp_path / "journal" / "abc"


def test_resolving_creates_nothing(tmp_path: Path) -> None:
    resolve_home(str(tmp_path / "h"), {})
    assert not (tmp_path / "h").exists()
