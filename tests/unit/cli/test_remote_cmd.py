"""``rewind remote``: add, list and remove team stores through the CLI."""

from __future__ import annotations

import json

from rewind.store.home import Home

from .conftest import Invoke

CATALOG = "postgres://rewind@db.internal:5432/rewind"


def test_add_list_and_remove(home: Home, rewind: Invoke) -> None:
    added = rewind("remote", "add", "team", "--catalog", CATALOG, "--data", "s3://runs/rewind")
    assert added.exit_code == 0, added.output
    assert rewind("remote", "list").stdout == f"team  catalog {CATALOG}  data s3://runs/rewind\n"
    listed = json.loads(rewind("remote", "list", "--json").stdout)
    assert listed == [{"name": "team", "catalog": CATALOG, "data": "s3://runs/rewind", "endpoint": None}]
    assert rewind("remote", "rm", "team").exit_code == 0
    assert json.loads(rewind("remote", "list", "--json").stdout) == []


def test_a_password_in_the_catalog_is_refused_and_never_written(home: Home, rewind: Invoke) -> None:
    refused = rewind(
        "remote", "add", "team", "--catalog", "postgres://u:hunter2@db/rewind", "--data", "s3://runs"
    )
    assert refused.exit_code == 2 and "PGPASSWORD" in refused.stderr and "hunter2" not in refused.stderr
    assert not home.root.exists() or b"hunter2" not in b"".join(
        p.read_bytes() for p in home.root.rglob("*") if p.is_file()
    )


def test_unknown_remote_and_empty_list_say_so(home: Home, rewind: Invoke) -> None:
    missing = rewind("remote", "rm", "nope")
    assert missing.exit_code == 2 and "no remote named 'nope'" in missing.stderr
    assert "No remotes" in rewind("remote", "list").stderr
