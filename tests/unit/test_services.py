"""The team-store test services (``tests/services.py``) really run, and each remote is private."""

from __future__ import annotations

from tests.services import PG_PASSWORD, TeamRemote, TeamServices, http_status


def test_cluster_accepts_the_password(team_services: TeamServices, team_remote: TeamRemote) -> None:
    done = team_services.postgres.psql("SELECT current_user, current_database()", team_remote.database)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"rewind|{team_remote.database}"
    assert team_remote.env["PGPASSWORD"] == PG_PASSWORD


def test_cluster_refuses_a_wrong_password(team_services: TeamServices) -> None:
    done = team_services.postgres.psql("SELECT 1", password="not-the-password")
    assert done.returncode != 0
    assert 'password authentication failed for user "rewind"' in done.stderr


def test_cluster_listens_on_loopback_tcp_only(team_services: TeamServices) -> None:
    done = team_services.postgres.psql("SHOW listen_addresses; SHOW unix_socket_directories")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["127.0.0.1", ""]


def test_the_bucket_exists_and_a_missing_one_does_not(team_remote: TeamRemote) -> None:
    assert http_status("GET", f"{team_remote.endpoint}/{team_remote.bucket}") == 200
    assert http_status("GET", f"{team_remote.endpoint}/no-such-bucket") == 404


def test_the_remote_names_its_parts(team_services: TeamServices, team_remote: TeamRemote) -> None:
    port = team_services.postgres.port
    assert team_remote.catalog == f"postgres://rewind@127.0.0.1:{port}/{team_remote.database}"
    assert team_remote.data == f"s3://{team_remote.bucket}/team"
    assert team_remote.endpoint == team_services.moto.endpoint
    assert team_remote.database.startswith("team_test_the_remote_names_its_parts_")
    assert team_remote.bucket.startswith("team-test-the-remote-names-its-parts-")


def test_each_remote_is_fresh(team_services: TeamServices) -> None:
    first, second = team_services.new_remote("Same[Tag]"), team_services.new_remote("Same[Tag]")
    assert first.database != second.database
    assert first.bucket != second.bucket
    databases = team_services.postgres.psql("SELECT datname FROM pg_database ORDER BY datname")
    assert {first.database, second.database} <= set(databases.stdout.split())
    for remote in (first, second):
        assert http_status("GET", f"{remote.endpoint}/{remote.bucket}") == 200


def test_a_long_odd_test_name_still_gives_valid_names(team_services: TeamServices) -> None:
    remote = team_services.new_remote("test_x[" + "Ünïcode/..--__" * 20 + "]")
    assert len(remote.bucket) <= 63 and len(remote.database) <= 63
    assert remote.bucket[0].isalnum() and remote.bucket[-1].isalnum()
