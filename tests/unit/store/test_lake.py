"""Opening a team store: the catalog's conninfo, S3 credentials, one-line errors, and the
remote's format (made once, refused when newer, upgraded when older), on real services."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Mapping
from pathlib import Path

import duckdb
import pytest

from rewind.errors import FormatVersionError, RemoteError
from rewind.store import lake
from rewind.store.home import Home
from rewind.store.lake import FORMAT, S3Credentials, conninfo, open_lake, remote_errors, s3_credentials
from rewind.store.remotes import Remote
from rewind.store.team import RemoteStore, push
from tests.services import TeamRemote, free_port

from .test_transfer import record

CATALOG = "postgres://rewind@db.internal:5432/rewind"
REMOTE = Remote("team", CATALOG, "s3://agent-runs/rewind")
KEYS = {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "s3cr3t/Key+value"}
BOUND_S = 15.0  # an unreachable service must be reported well within this


@pytest.fixture
def no_aws_files(tmp_path: Path) -> dict[str, str]:
    """Variables that point the AWS profile files at nothing (the developer's ~/.aws is not read)."""
    return {"AWS_CONFIG_FILE": str(tmp_path / "none-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none-credentials")}  # fmt: skip


def remote_of(team_remote: TeamRemote, **changes: str) -> Remote:
    return dataclasses.replace(Remote("team", team_remote.catalog, team_remote.data, team_remote.endpoint),
                               **changes)  # fmt: skip


@pytest.fixture
def env(team_remote: TeamRemote, monkeypatch: pytest.MonkeyPatch) -> Mapping[str, str]:
    """The process environment with the remote's credentials (libpq reads PGPASSWORD from it)."""
    for key, value in team_remote.env.items():
        monkeypatch.setenv(key, value)
    return os.environ


# --- conninfo --------------------------------------------------------------------------


def test_conninfo_names_each_part_and_adds_a_connect_timeout() -> None:
    assert conninfo(CATALOG) == (
        f"dbname=rewind host=db.internal user=rewind port=5432 connect_timeout={lake.CONNECT_TIMEOUT_S}"
    )
    assert "port=" not in conninfo("postgres://rewind@db.internal/rewind")


def test_conninfo_quotes_spaces_quotes_and_backslashes() -> None:
    info = conninfo("postgres://o%27brien@db/my%20runs?application_name=a%5Cb")
    assert info.startswith(r"dbname='my runs' host=db user='o\'brien' application_name='a\\b' ")


def test_conninfo_passes_query_parameters_and_keeps_a_given_timeout() -> None:
    info = conninfo("postgresql://rewind@db:6432/rewind?sslmode=verify-full&connect_timeout=3")
    assert info == "dbname=rewind host=db user=rewind port=6432 sslmode=verify-full connect_timeout=3"


# --- S3 credentials --------------------------------------------------------------------


def test_credentials_come_from_the_environment_and_default_to_aws(no_aws_files: dict[str, str]) -> None:
    found = s3_credentials(REMOTE, {**no_aws_files, **KEYS, "AWS_SESSION_TOKEN": "tok"})
    assert found == S3Credentials("AKIDEXAMPLE", "s3cr3t/Key+value", "tok", "us-east-1", None, True)
    assert "ENDPOINT" not in found.secret_sql(REMOTE.data)


def test_the_environment_wins_over_the_profile_and_names_the_region(
    tmp_path: Path, no_aws_files: dict[str, str]
) -> None:
    credentials = tmp_path / "credentials"
    credentials.write_text("[default]\naws_access_key_id = FROMFILE\naws_secret_access_key = filesecret\n")
    env = {**no_aws_files, **KEYS, "AWS_SHARED_CREDENTIALS_FILE": str(credentials),
           "AWS_DEFAULT_REGION": "eu-west-1"}  # fmt: skip
    found = s3_credentials(REMOTE, env)
    assert (found.key_id, found.secret, found.region) == ("AKIDEXAMPLE", "s3cr3t/Key+value", "eu-west-1")
    assert s3_credentials(REMOTE, {**env, "AWS_REGION": "ap-south-1"}).region == "ap-south-1"


def test_credentials_come_from_a_named_profile(tmp_path: Path) -> None:
    (tmp_path / "credentials").write_text(
        "[default]\naws_access_key_id = WRONG\naws_secret_access_key = wrong\n"
        "[ci]\naws_access_key_id = CIKEY\naws_secret_access_key = cisecret\naws_session_token = citoken\n"
    )
    (tmp_path / "config").write_text("[default]\nregion = us-west-2\n[profile ci]\nregion = eu-central-1\n")
    env = {"AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"),
           "AWS_CONFIG_FILE": str(tmp_path / "config"), "AWS_PROFILE": "ci"}  # fmt: skip
    found = s3_credentials(REMOTE, env)
    assert (found.key_id, found.secret, found.session_token) == ("CIKEY", "cisecret", "citoken")
    assert found.region == "eu-central-1"
    assert s3_credentials(REMOTE, {**env, "AWS_PROFILE": "default"}).region == "us-west-2"


@pytest.mark.parametrize(
    ("endpoint", "variables", "host", "use_ssl"),
    [
        ("http://127.0.0.1:9000", {}, "127.0.0.1:9000", False),
        ("https://acct.r2.cloudflarestorage.com", {}, "acct.r2.cloudflarestorage.com", True),
        (None, {"AWS_ENDPOINT_URL": "http://minio.internal:9000"}, "minio.internal:9000", False),
        (None, {"AWS_ENDPOINT_URL": "http://a:1", "AWS_ENDPOINT_URL_S3": "https://s3.b:2"}, "s3.b:2", True),
        ("https://remote.example", {"AWS_ENDPOINT_URL": "http://env.example"}, "remote.example", True),
    ],
)
def test_the_endpoint_comes_from_the_remote_then_the_environment(
    no_aws_files: dict[str, str], endpoint: str | None, variables: dict[str, str], host: str, use_ssl: bool
) -> None:
    remote = dataclasses.replace(REMOTE, endpoint=endpoint)
    found = s3_credentials(remote, {**no_aws_files, **KEYS, **variables})
    assert (found.endpoint, found.use_ssl) == (host, use_ssl)
    sql = found.secret_sql(REMOTE.data)
    assert f"ENDPOINT '{host}'" in sql and f"USE_SSL {str(use_ssl).lower()}" in sql
    assert "URL_STYLE 'path'" in sql


def test_no_credentials_name_the_remote_and_where_they_come_from(no_aws_files: dict[str, str]) -> None:
    with pytest.raises(RemoteError, match="no S3 credentials for the remote 'team'") as caught:
        s3_credentials(REMOTE, {**no_aws_files, "AWS_ACCESS_KEY_ID": "only-the-id"})
    assert "AWS_ACCESS_KEY_ID" in (caught.value.hint or "")


# --- errors ----------------------------------------------------------------------------

# DuckDB 1.5.5's words when the catalog cannot be attached; libpq's reason follows.
PG = (
    'IO Error: Failed to attach DuckLake MetaData "__ducklake_metadata_team" at path + "postgres:{info}"'
    'Unable to connect to Postgres at "{info}": connection to server at "db.internal", port 5432 failed: '
)
INFO = "dbname=rewind host=db.internal user=rewind port=5432 connect_timeout=10"
BUNDLE_URL = "s3://agent-runs/rewind/bundles/" + "9f403a" + "0" * 58 + ".rwb"


@pytest.mark.parametrize(
    ("detail", "says", "hint"),
    [
        (PG.format(info=INFO) + 'FATAL:  password authentication failed for user "rewind"\n',
         "the catalog at db.internal:5432 refused the credentials of user 'rewind'", "PGPASSWORD"),
        (PG.format(info=INFO) + "fe_sendauth: no password supplied\n",
         "asks user 'rewind' for a password", "~/.pgpass"),
        (PG.format(info=INFO) + "Connection refused\n\tIs the server running on that host and accepting "
         "TCP/IP connections?\n", "cannot reach the catalog at db.internal:5432", "PostgreSQL running"),
        ("HTTP Error: Unable to connect to URL s3://agent-runs/rewind/x.rwb: Not Found (HTTP code 404)"
         "\n\nNoSuchBucket: The specified bucket does not exist",
         "the bucket of s3://agent-runs/rewind does not exist", "rewind remote rm"),
        ("HTTP Error: Unable to connect to URL s3://agent-runs/rewind/x.rwb: Forbidden (HTTP code 403)"
         "\n\nAccessDenied: Access Denied",
         "S3 denied access to s3://agent-runs/rewind", "AWS_ACCESS_KEY_ID"),
        ("HTTP Error: HTTP GET error on 's3://agent-runs/rewind/x.rwb' (HTTP 403)",
         "S3 denied access to s3://agent-runs/rewind", "AWS_ACCESS_KEY_ID"),
        ("HTTP Error: Unable to connect to URL https://s3.example/agent-runs: Service Unavailable",
         "cannot reach the S3 endpoint for s3://agent-runs/rewind", "--endpoint"),
        ("Catalog Error: something unforeseen\nLINE 1: SELECT",
         "remote 'team': Catalog Error: something unforeseen", "rewind remote list"),
    ],
    ids=["wrong-password", "no-password", "refused", "no-bucket", "denied", "http-403", "unreachable",
         "other"],
)  # fmt: skip
def test_a_duckdb_error_becomes_one_line_saying_what_to_do(detail: str, says: str, hint: str) -> None:
    error = lake._remote_error(REMOTE, detail)
    assert str(error).startswith("remote 'team': ") and says in str(error)
    assert "\n" not in str(error) and hint in (error.hint or "")


def test_a_closed_s3_port_as_duckdb_reports_it_says_the_endpoint_is_unreachable() -> None:
    detail = "IO Error: Could not connect to server error for HTTP PUT to 'http://127.0.0.1:47631/b/x.rwb'"
    error = lake._remote_error(REMOTE, detail)
    assert "cannot reach the S3 endpoint" in str(error) and "--endpoint" in (error.hint or "")


def test_a_server_error_on_a_bundle_whose_name_holds_403_is_not_called_a_denial() -> None:
    error = lake._remote_error(REMOTE, f"HTTP Error: Unable to connect to URL {BUNDLE_URL}: "
                                       "Internal Server Error (HTTP code 500)")  # fmt: skip
    assert "denied" not in str(error) and "Internal Server Error (HTTP code 500)" in str(error)
    assert "AWS_ACCESS_KEY_ID" not in (error.hint or "")


def test_a_missing_catalog_database_is_named() -> None:
    error = lake._remote_error(REMOTE, PG.format(info=INFO) + 'FATAL:  database "rewind" does not exist\n')
    assert "database 'rewind' does not exist at db.internal:5432" in str(error)
    assert (error.hint or "").startswith("create it: createdb -h db.internal")


def test_secrets_are_scrubbed_from_the_error() -> None:
    credentials = S3Credentials("AKIDEXAMPLE", "s3cr3t/Key+value", "session-tok", "us-east-1", None, True)
    with pytest.raises(RemoteError) as caught, remote_errors(REMOTE, credentials):
        raise duckdb.IOException("IO Error: secret s3cr3t/Key+value with token session-tok refused")
    assert "s3cr3t/Key+value" not in str(caught.value) and "session-tok" not in str(caught.value)
    assert "***" in str(caught.value)


# --- on the real services --------------------------------------------------------------


def formats(conn: duckdb.DuckDBPyConnection) -> list[int]:
    rows = conn.execute("SELECT version FROM team.rewind_format ORDER BY version").fetchall()
    return [version for (version,) in rows]


def test_the_first_open_makes_the_schema_and_the_second_finds_it(
    team_remote: TeamRemote, env: Mapping[str, str]
) -> None:
    remote = remote_of(team_remote)
    with open_lake(remote, env) as conn:
        assert formats(conn) == [FORMAT]
        assert conn.execute("SELECT count(*) FROM sessions").fetchone() == (0,)
    with open_lake(remote, env) as conn:
        assert formats(conn) == [FORMAT]
        views = conn.execute("SELECT view_name FROM duckdb_views() WHERE database_name = 'team'").fetchall()
        assert sorted(v for (v,) in views) == ["blobs", "gaps", "sessions", "steps"]


def test_a_slow_remote_query_prints_no_progress_bar_on_stdout(
    team_remote: TeamRemote, env: Mapping[str, str]
) -> None:
    with open_lake(remote_of(team_remote), env) as conn:
        shown = conn.execute("SELECT current_setting('enable_progress_bar') "
                             "AND current_setting('enable_progress_bar_print')").fetchone()  # fmt: skip
    assert shown == (False,)


def test_a_catalog_from_a_newer_rewind_is_refused(team_remote: TeamRemote, env: Mapping[str, str]) -> None:
    remote = remote_of(team_remote)
    with open_lake(remote, env) as conn:
        conn.execute("INSERT INTO team.rewind_format VALUES (?, ?)", [FORMAT + 1, time.time()])
    newer = f"format {FORMAT + 1}; this Rewind knows up to {FORMAT}"
    with pytest.raises(FormatVersionError, match=newer) as caught:
        with open_lake(remote, env):
            pass
    assert "upgrade Rewind" in (caught.value.hint or "")


def test_a_catalog_from_an_older_rewind_is_upgraded_and_reads_again(
    home: Home, team_remote: TeamRemote, env: Mapping[str, str]
) -> None:
    remote = remote_of(team_remote)
    sid = record(home, "before-forks")
    push(home, remote, [sid], env)
    with open_lake(remote, env) as conn:  # as format 3 left it: no fork_step, no fault
        conn.execute("ALTER TABLE team.session_rows DROP COLUMN fault")
        conn.execute("ALTER TABLE team.session_rows DROP COLUMN fork_step")
        conn.execute("DELETE FROM team.rewind_format")
        conn.execute("INSERT INTO team.rewind_format VALUES (3, ?)", [time.time()])
    with open_lake(remote, env) as conn:
        assert max(formats(conn)) == FORMAT
        columns = conn.execute("SELECT column_name FROM duckdb_columns() "
                               "WHERE database_name = 'team' AND table_name = 'session_rows'")  # fmt: skip
        assert {("fork_step",), ("fault",)} <= set(columns.fetchall())
    store = RemoteStore(home, remote, env)
    try:
        info = store.session(sid)
    finally:
        store.close()
    assert (info.id, info.name, info.steps) == (sid, "before-forks", 2)
    assert (info.fork_step, info.fault) == (None, None)


def test_a_wrong_password_is_one_line_about_the_credentials(
    team_remote: TeamRemote, env: Mapping[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGPASSWORD", "not-the-password")
    with pytest.raises(RemoteError) as caught:
        with open_lake(remote_of(team_remote), env):
            pass
    message = str(caught.value)
    assert "refused the credentials of user 'rewind'" in message and "\n" not in message
    assert "not-the-password" not in message and "PGPASSWORD" in (caught.value.hint or "")


def test_a_closed_catalog_port_is_reported_quickly(team_remote: TeamRemote, env: Mapping[str, str]) -> None:
    remote = remote_of(team_remote, catalog=f"postgres://rewind@127.0.0.1:{free_port()}/rewind")
    started = time.monotonic()
    with pytest.raises(RemoteError, match="cannot reach the catalog at 127.0.0.1:"):
        with open_lake(remote, env):
            pass
    assert time.monotonic() - started < BOUND_S


def test_a_closed_s3_port_is_a_remote_error_reported_quickly(
    team_remote: TeamRemote, env: Mapping[str, str]
) -> None:
    remote = remote_of(team_remote, endpoint=f"http://127.0.0.1:{free_port()}")
    started = time.monotonic()
    with pytest.raises(RemoteError) as caught:
        with open_lake(remote, env) as conn:
            conn.execute(f"COPY (SELECT 'x'::BLOB AS content) TO '{remote.data}/probe.rwb' (FORMAT blob)")
    assert time.monotonic() - started < BOUND_S
    assert "cannot reach the S3 endpoint for s3://" in str(caught.value) and "\n" not in str(caught.value)
    assert "--endpoint" in (caught.value.hint or "")


def test_a_missing_bucket_is_named_when_first_written(
    team_remote: TeamRemote, env: Mapping[str, str]
) -> None:
    remote = remote_of(team_remote, data="s3://no-such-bucket-here/team")
    with pytest.raises(RemoteError, match="the bucket of s3://no-such-bucket-here/team does not exist"):
        with open_lake(remote, env) as conn:
            conn.execute(f"COPY (SELECT 'x'::BLOB AS content) TO '{remote.data}/probe.rwb' (FORMAT blob)")
