"""Team remotes: validated, kept 0600 under the home, and never holding a password."""

from __future__ import annotations

import stat

import pytest

from rewind.errors import ConfigError, StoreError
from rewind.store.home import Home
from rewind.store.remotes import (
    REMOTES_FILE,
    add_remote,
    check_remote,
    load_remotes,
    pick_remote,
    remove_remote,
)

CATALOG = "postgres://rewind@db.internal:5432/rewind"


def test_a_remote_round_trips_through_its_file(home: Home) -> None:
    remote = check_remote("team", CATALOG, "s3://agent-runs/rewind/", "https://minio.internal:9000/")
    add_remote(home, remote)
    assert load_remotes(home) == {"team": remote}
    assert (remote.data, remote.endpoint) == ("s3://agent-runs/rewind", "https://minio.internal:9000")
    assert stat.S_IMODE((home.root / REMOTES_FILE).stat().st_mode) == 0o600
    assert remove_remote(home, "team") == remote and load_remotes(home) == {}


@pytest.mark.parametrize(
    "catalog",
    [
        "postgres://rewind:hunter2@db/rewind",
        "postgresql://rewind:@db/rewind",
        "postgres://rewind@db/rewind?password=hunter2",
        "postgres://rewind@db/rewind?sslmode=require&PassWord=hunter2",
    ],
)
def test_a_catalog_with_a_password_is_refused_and_says_where_it_goes(home: Home, catalog: str) -> None:
    with pytest.raises(ConfigError) as caught:
        check_remote("team", catalog, "s3://runs", None)
    assert "PGPASSWORD" in (caught.value.hint or "") and "hunter2" not in str(caught.value)
    assert not (home.root / REMOTES_FILE).exists()


@pytest.mark.parametrize(
    ("name", "catalog", "data", "endpoint", "says"),
    [
        ("team", "mysql://u@h/db", "s3://runs", None, "not a PostgreSQL URL"),
        ("team", "postgres://db/rewind", "s3://runs", None, "needs a user, a host and a database"),
        ("team", "postgres://u@db", "s3://runs", None, "needs a user, a host and a database"),
        ("team", "postgres://u@db:99999/x", "s3://runs", None, "needs a user, a host and a database"),
        ("team", CATALOG, "gs://runs", None, "not an s3:// URL"),
        ("team", CATALOG, "s3://Bad_Bucket", None, "not a valid bucket name"),
        ("team", CATALOG, "s3://key:secret@runs", None, "carries credentials"),
        ("team", CATALOG, "s3://runs", "ftp://x", r"not an http\(s\) URL"),
        ("team", CATALOG, "s3://runs", "https://key:secret@r2.example", "carries credentials"),
        ("bad name", CATALOG, "s3://runs", None, "invalid remote name"),
        ("", CATALOG, "s3://runs", None, "invalid remote name"),
    ],
)
def test_bad_settings_are_refused(
    name: str, catalog: str, data: str, endpoint: str | None, says: str
) -> None:
    with pytest.raises(ConfigError, match=says):
        check_remote(name, catalog, data, endpoint)


def test_names_are_unique_and_removal_names_what_exists(home: Home) -> None:
    add_remote(home, check_remote("team", CATALOG, "s3://runs", None))
    with pytest.raises(ConfigError, match="exists already"):
        add_remote(home, check_remote("team", CATALOG, "s3://other", None))
    with pytest.raises(ConfigError) as caught:
        remove_remote(home, "nope")
    assert caught.value.hint == "configured: team"


@pytest.mark.parametrize(
    "content",
    [b"\xff\xfe not json", b'{"format": 9, "remotes": []}', b'{"format": 1, "remotes": [{"name": "x"}]}',
     b'{"format": 1, "remotes": [{"name": "x", "catalog": "postgres://u:p@h/d", "data": "s3://runs"}]}'],
)  # fmt: skip
def test_a_damaged_file_is_named_not_trusted(home: Home, content: bytes) -> None:
    home.root.mkdir(parents=True)
    (home.root / REMOTES_FILE).write_bytes(content)
    with pytest.raises(StoreError, match=REMOTES_FILE):
        load_remotes(home)


# --- pick_remote -----------------------------------------------------------------------


def test_the_only_remote_is_picked_when_none_is_named(home: Home) -> None:
    remote = check_remote("team", CATALOG, "s3://runs", None)
    add_remote(home, remote)
    assert pick_remote(home, None) == remote and pick_remote(home, "team") == remote


def test_several_remotes_and_none_named_lists_them_and_asks_for_one(home: Home) -> None:
    for name in ("team", "backup"):
        add_remote(home, check_remote(name, CATALOG, f"s3://{name}-runs", None))
    with pytest.raises(ConfigError, match=r"several remotes are configured \(backup, team\)") as caught:
        pick_remote(home, None)
    assert caught.value.hint == "choose one with --remote NAME"
    assert pick_remote(home, "backup").data == "s3://backup-runs"


@pytest.mark.parametrize(
    ("name", "says"), [(None, "no remote is configured"), ("team", "no remote named 'team'")]
)
def test_no_remote_configured_says_how_to_add_one(home: Home, name: str | None, says: str) -> None:
    with pytest.raises(ConfigError, match=says) as caught:
        pick_remote(home, name)
    assert (caught.value.hint or "").startswith("add one: rewind remote add NAME --catalog postgres://")
    assert not home.root.exists()


def test_an_unknown_name_lists_the_configured_remotes(home: Home) -> None:
    for name in ("team", "backup"):
        add_remote(home, check_remote(name, CATALOG, f"s3://{name}-runs", None))
    with pytest.raises(ConfigError, match="no remote named 'nope'") as caught:
        pick_remote(home, "nope")
    assert caught.value.hint == "configured: backup, team"
