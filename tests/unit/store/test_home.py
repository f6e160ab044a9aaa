"""Where the store lives: --home > REWIND_HOME > ~/.rewind, and nothing created early."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rewind.errors import ConfigError, StoreError
from rewind.store.home import Home, ensure_home, resolve_home


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
    assert home.gc_lock_path == tmp_path / "gc.lock"
    assert home.sessions_dir == tmp_path / "sessions"
    assert home.objects_dir == tmp_path / "objects"
    assert home.session_journal("abc") == tmp_path / "sessions" / "abc"
    assert home.sealed_record("abc") == tmp_path / "sessions" / "abc.rws"


def test_resolving_creates_nothing(tmp_path: Path) -> None:
    resolve_home(str(tmp_path / "h"), {})
    assert not (tmp_path / "h").exists()


def test_ensure_home_creates_a_private_directory(tmp_path: Path) -> None:
    home = Home(tmp_path / "a" / "b")
    ensure_home(home)
    ensure_home(home)  # twice is fine
    assert home.root.is_dir() and os.stat(home.root).st_mode & 0o077 == 0


def test_home_that_is_a_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(ConfigError, match="is a file") as info:
        ensure_home(Home(tmp_path / "file"))
    assert "REWIND_HOME" in (info.value.hint or "")
    assert (tmp_path / "file").read_text() == "not a directory"


def test_home_under_a_file_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError, match="cannot create"):
        ensure_home(Home(tmp_path / "file" / "home"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_unwritable_home_is_a_store_error(tmp_path: Path) -> None:
    root = tmp_path / "ro"
    root.mkdir(mode=0o500)
    try:
        with pytest.raises(StoreError, match="not writable"):
            ensure_home(Home(root))
        with pytest.raises(StoreError, match="cannot create"):
            ensure_home(Home(root / "inner"))
    finally:
        root.chmod(0o700)


def test_home_refused_by_permissions_is_a_store_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What a non-root user meets on a read-only home (root would write anyway).
    monkeypatch.setattr(os, "access", lambda *_a, **_k: False)
    with pytest.raises(StoreError, match="not writable") as info:
        ensure_home(Home(tmp_path))
    assert "REWIND_HOME" in (info.value.hint or "")
