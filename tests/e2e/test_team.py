"""The team store through the real CLI, a real PostgreSQL catalog and a real S3 server
(moto): two homes stand for two machines. Record on one, push, pull on the other and
replay offline (a Python and a Node agent); remote list, inspect and stats equal to the
local ones; concurrent pushes; a push killed before it publishes; a tampered body; bad
credentials, unreachable servers, a missing bucket, a catalog of a newer format.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import zstandard

from rewind.testing.fake_provider import FakeProvider
from tests.e2e.harness import DEMO_AGENT, PYTHON, SECRET, Rewind, make_env, wait_for
from tests.e2e.test_cassette import ECHOES_A_TOKEN, home_state
from tests.services import PG_PASSWORD, MotoServer, TeamRemote, TeamServices, free_port

pytestmark = pytest.mark.e2e

OFFLINE = {"OPENAI_API_KEY": ""}


# --- machines and the remote -----------------------------------------------------------


def machine(tmp_path: Path, name: str, remote: TeamRemote, catalog: str | None = None) -> Rewind:
    """The CLI against a home of its own, with the remote ``team`` configured there."""
    home = tmp_path / name
    rw = Rewind(home, {**make_env(home), **remote.env})
    added = rw("remote", "add", "team", "--catalog", catalog or remote.catalog, "--data", remote.data,
               "--endpoint", remote.endpoint)  # fmt: skip
    assert added.returncode == 0, added.stderr
    return rw


@pytest.fixture
def laptop(tmp_path: Path, team_remote: TeamRemote) -> Rewind:
    return machine(tmp_path, "laptop", team_remote)


@pytest.fixture
def ci(tmp_path: Path, team_remote: TeamRemote) -> Rewind:
    return machine(tmp_path, "ci", team_remote)


def record(rw: Rewind, fake: FakeProvider, command: Sequence[str], name: str = "run", code: int = 0) -> str:
    routes = ["--route", f"api.openai.com={fake.url}", "--route", f"weather.example={fake.url}"]
    recorded = rw.record("--name", name, *routes, "--", *command)
    assert recorded.returncode == code, recorded.stdout + recorded.stderr
    match = re.search(r"Session recorded: (\w+)", recorded.stderr)
    assert match, recorded.stderr
    return match.group(1)


def pushed(rw: Rewind, *refs: str) -> dict[str, object]:
    result = rw("push", "--json", *refs)
    assert result.returncode == 0, result.stderr
    doc: dict[str, object] = json.loads(result.stdout)
    return doc


# --- the S3 server, read and written as a user of the bucket would --------------------


def s3(remote: TeamRemote) -> Any:
    import boto3  # moto's own dependency
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=remote.endpoint, aws_access_key_id="testing",
                        aws_secret_access_key="testing", region_name="us-east-1",
                        config=Config(s3={"addressing_style": "path"}))  # fmt: skip


def s3_keys(remote: TeamRemote, prefix: str = "") -> list[str]:
    listed = s3(remote).list_objects_v2(Bucket=remote.bucket, Prefix=prefix)
    return sorted(item["Key"] for item in listed.get("Contents", []))


def s3_get(remote: TeamRemote, key: str) -> bytes:
    data: bytes = s3(remote).get_object(Bucket=remote.bucket, Key=key)["Body"].read()
    return data


def s3_put(remote: TeamRemote, key: str, data: bytes) -> None:
    s3(remote).put_object(Bucket=remote.bucket, Key=key, Body=data)


def bundles(remote: TeamRemote) -> list[str]:
    return [k for k in s3_keys(remote, "team/bundles/") if k.endswith(".rwb")]


def unpacked(data: bytes) -> bytes:
    with zstandard.ZstdDecompressor(max_window_size=1 << 27).stream_reader(data) as reader:
        return reader.read()


def packed(data: bytes) -> bytes:
    return zstandard.ZstdCompressor().compress(data)


# --- two machines ------------------------------------------------------------------------


@pytest.mark.parametrize("agent", ["python", "node"])
def test_a_run_pushed_from_ci_replays_offline_on_a_laptop(
    ci: Rewind, laptop: Rewind, fake: FakeProvider, team_remote: TeamRemote, agent: str,
    request: pytest.FixtureRequest,
) -> None:
    command = DEMO_AGENT if agent == "python" else request.getfixturevalue("node_agent")
    sid = record(ci, fake, command)
    stdout = ci("replay", sid, **OFFLINE).stdout
    doc = pushed(ci, "run")
    assert doc["added"] == [sid] and doc["bodies_sent"] and doc["bodies_skipped"] == 0
    pulled = laptop("pull", "--json", "run")  # the newest "run" on the remote
    assert pulled.returncode == 0, pulled.stderr
    assert json.loads(pulled.stdout)["added"] == [sid]
    before = fake.request_count
    replayed = laptop("replay", "run", **OFFLINE)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert replayed.stdout == stdout and "Output identical." in replayed.stderr
    assert fake.request_count == before, "the laptop's replay reached the upstream"
    assert laptop.json("inspect", sid) == ci.json("inspect", sid)
    # What the remote holds is what the store held: redacted.
    assert all(SECRET.encode() not in unpacked(s3_get(team_remote, key)) for key in bundles(team_remote))
    assert SECRET not in ci("inspect", "--remote", "team", sid, "--step", "1", "--json").stdout


def test_list_inspect_and_stats_on_the_remote_equal_the_local_ones(
    ci: Rewind, fake: FakeProvider
) -> None:
    ok = record(ci, fake, DEMO_AGENT, name="nightly")
    failing = record(ci, fake, [PYTHON, "-c", "import sys; sys.exit(3)"], name="broken", code=3)
    pushed(ci, ok, failing)
    assert ci.json("list", "--remote", "team") == ci.json("list")
    assert ci.json("list", "--remote", "team", "--failed") == ci.json("list", "--failed") != []
    for by in ("model", "session"):
        assert ci.json("stats", "--remote", "team", "--by", by) == ci.json("stats", "--by", by)
    assert ci.json("inspect", "--remote", "team", "nightly") == ci.json("inspect", "nightly")
    assert ci.json("inspect", "--remote", "team", ok, "--step", "3") == ci.json("inspect", ok, "--step", "3")
    listed = ci("list", "--remote", "team")
    assert listed.returncode == 0 and ok in listed.stdout and "nightly" in listed.stdout


def test_pushing_again_adds_nothing_and_a_body_already_there_is_not_sent_again(
    ci: Rewind, fake: FakeProvider
) -> None:
    first = record(ci, fake, DEMO_AGENT, name="a")
    sent = pushed(ci, first)
    again = pushed(ci, first)
    assert again["added"] == [] and again["present"] == [first] and again["bodies_sent"] == 0
    second = record(ci, fake, DEMO_AGENT, name="b")  # the same question: the tool's answer repeats
    later = pushed(ci, second)
    assert later["added"] == [second]
    assert isinstance(later["bodies_skipped"], int) and later["bodies_skipped"] > 0
    assert isinstance(sent["bodies_sent"], int) and isinstance(later["bodies_sent"], int)
    assert later["bodies_sent"] < sent["bodies_sent"]


def test_record_push_records_then_publishes(
    ci: Rewind, laptop: Rewind, fake: FakeProvider
) -> None:
    routes = ["--route", f"api.openai.com={fake.url}", "--route", f"weather.example={fake.url}"]
    recorded = ci.record("--push", "team", "--name", "run", *routes, "--", *DEMO_AGENT)
    assert recorded.returncode == 0, recorded.stderr
    [sid] = [s["id"] for s in ci.json("list")]
    assert f"Pushed {sid} to team" in recorded.stderr
    assert [s["id"] for s in laptop.json("list", "--remote", "team")] == [sid]


def test_record_push_to_an_unknown_remote_runs_nothing(ci: Rewind, fake: FakeProvider) -> None:
    refused = ci("record", "--push", "elsewhere", "--", *DEMO_AGENT)
    assert refused.returncode == 2 and "no remote named 'elsewhere'" in refused.stderr
    assert ci.json("list") == [] and fake.request_count == 0


# --- faults ------------------------------------------------------------------------------


def test_three_machines_pushing_at_once_lose_nothing_and_duplicate_nothing(
    ci: Rewind, tmp_path: Path, fake: FakeProvider, team_remote: TeamRemote
) -> None:
    ids = [record(ci, fake, DEMO_AGENT, name=f"run{i}") for i in range(3)]
    others = []
    for name in ("ci2", "ci3"):  # the same sessions on two more machines
        shutil.copytree(ci.home, tmp_path / name)
        others.append(Rewind(tmp_path / name, {**ci.env, "REWIND_HOME": str(tmp_path / name)}))
    jobs = [ci.popen("push", ids[0], ids[1]), others[0].popen("push", ids[0], ids[2]),
            others[1].popen("push", *ids)]  # fmt: skip
    for job in jobs:  # the first pushes to a new remote also race to create its tables
        _, err = job.communicate(timeout=120)
        assert job.returncode == 0, err
    listed = ci.json("list", "--remote", "team")
    assert sorted(s["id"] for s in listed) == sorted(ids)
    assert all(s["steps"] == 3 for s in listed)
    assert ci.json("stats", "--remote", "team", "--by", "session") == ci.json("stats", "--by", "session")
    laptop = machine(tmp_path, "laptop", team_remote)
    pulled = laptop("pull", "--json", *ids)
    assert pulled.returncode == 0 and sorted(json.loads(pulled.stdout)["added"]) == sorted(ids)


@pytest.fixture
def catalog_locked(team_services: TeamServices, team_remote: TeamRemote) -> Iterator[subprocess.Popen[str]]:
    """A PostgreSQL session holding DuckLake's snapshot table locked against writes (readers
    still read): every commit to the catalog waits until it lets go."""
    yield _lock_snapshots(team_services, team_remote)


def _lock_snapshots(services: TeamServices, remote: TeamRemote) -> subprocess.Popen[str]:
    pg = services.postgres
    conninfo = f"host=127.0.0.1 port={pg.port} user={pg.user} dbname={remote.database}"
    session = subprocess.Popen(
        [str(pg.bin_dir / "psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", conninfo],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={"PATH": "/usr/bin:/bin", "PGPASSWORD": PG_PASSWORD},
    )  # fmt: skip
    assert session.stdin is not None and session.stdout is not None
    session.stdin.write("BEGIN; LOCK TABLE ducklake_snapshot IN EXCLUSIVE MODE; SELECT 'locked';\n")
    session.stdin.flush()
    assert session.stdout.readline().strip() == "locked"
    return session


def test_a_push_killed_before_it_publishes_shows_nothing_and_the_next_push_completes_it(
    ci: Rewind, laptop: Rewind, fake: FakeProvider, team_services: TeamServices, team_remote: TeamRemote
) -> None:
    first, second = (record(ci, fake, DEMO_AGENT, name=n) for n in ("first", "second"))
    pushed(ci, first)  # the remote's tables exist
    uploaded = set(bundles(team_remote))
    lock = _lock_snapshots(team_services, team_remote)
    try:
        push = ci.popen("push", second)
        wait_for(lambda: set(bundles(team_remote)) - uploaded, timeout=60)  # its bodies are up
        time.sleep(1.0)  # and it waits to commit
        assert push.poll() is None, push.communicate()
        assert [s["id"] for s in laptop.json("list", "--remote", "team")] == [first]
        push.send_signal(signal.SIGKILL)
        push.communicate(timeout=30)
    finally:
        assert lock.stdin is not None
        lock.stdin.write("ROLLBACK;\n\\q\n")
        lock.stdin.close()
        lock.wait(timeout=30)
    assert [s["id"] for s in laptop.json("list", "--remote", "team")] == [first]
    refused = laptop("pull", second)
    assert refused.returncode == 1 and "no session matches" in refused.stderr
    again = pushed(ci, second)
    assert again["added"] == [second]
    assert laptop("pull", second).returncode == 0
    replayed = laptop("replay", second, **OFFLINE)
    assert replayed.returncode == 0 and "Output identical." in replayed.stderr


@pytest.mark.parametrize("damage", ["changed byte", "random bytes", "deleted"])
def test_a_damaged_body_on_the_remote_is_refused_and_nothing_is_written(
    ci: Rewind, laptop: Rewind, fake: FakeProvider, team_remote: TeamRemote, damage: str
) -> None:
    sid = record(ci, fake, DEMO_AGENT)
    pushed(ci, sid)
    [key] = bundles(team_remote)
    raw = unpacked(s3_get(team_remote, key))
    if damage == "changed byte":
        s3_put(team_remote, key, packed(raw.replace(b"Paris", b"Pariz", 1)))
    elif damage == "random bytes":
        s3_put(team_remote, key, bytes(range(256)) * 8)
    else:
        s3(team_remote).delete_object(Bucket=team_remote.bucket, Key=key)
    before = home_state(laptop.home)
    refused = laptop("pull", sid)
    assert refused.returncode == 1, refused.stderr
    assert f"refused {sid}" in refused.stderr and "Traceback" not in refused.stderr
    assert {"changed byte": "sha256", "random bytes": "not a valid bundle", "deleted": "missing"}[damage] \
        in refused.stderr
    assert home_state(laptop.home) == before
    assert laptop.json("list") == []


def test_a_secret_is_never_pushed(ci: Rewind, fake: FakeProvider, team_remote: TeamRemote) -> None:
    word = "tok-" + "9f8e7d6c5b4a39281706"  # not a secret when recorded...
    recorded = ci.record("--name", "run", "--route", f"api.openai.com={fake.url}", "--", PYTHON, "-c",
                         ECHOES_A_TOKEN, WORD=word, OPENAI_BASE_URL="https://api.openai.com/v1")  # fmt: skip
    assert recorded.returncode == 0, recorded.stderr
    refused = ci("push", "run", MY_SERVICE_TOKEN=word)  # ...but it is one here
    assert refused.returncode == 1 and "step 1" in refused.stderr and "nothing was pushed" in refused.stderr
    assert bundles(team_remote) == []
    assert ci.json("list", "--remote", "team") == []


# --- bad input: one line each, no traceback ------------------------------------------


def one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("rewind: error:")]
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


def test_wrong_credentials_are_said_in_one_line_and_never_shown(
    ci: Rewind, fake: FakeProvider
) -> None:
    sid = record(ci, fake, DEMO_AGENT)
    wrong = "not-the-" + "password-4242"
    result = ci("push", sid, PGPASSWORD=wrong)
    one_line_error(result, "refused the credentials", "PGPASSWORD")
    assert wrong not in result.stderr
    one_line_error(ci("list", "--remote", "team", PGPASSWORD=wrong), "refused the credentials")
    no_keys = {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "",
               "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_CONFIG_FILE": "/nonexistent"}
    one_line_error(ci("push", sid, **no_keys), "no S3 credentials", "AWS_ACCESS_KEY_ID")


def iam_user(endpoint: str, bucket: str) -> tuple[str, str]:
    """On a moto that checks credentials after 4 requests: a user allowed everything, its
    key, and a bucket made with it."""
    import boto3
    from botocore.config import Config

    setup = {"endpoint_url": endpoint, "region_name": "us-east-1", "aws_access_key_id": "setup",
             "aws_secret_access_key": "setup"}  # fmt: skip
    iam = boto3.client("iam", **setup)
    iam.create_user(UserName="ci")
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    iam.put_user_policy(UserName="ci", PolicyName="all", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName="ci")["AccessKey"]
    boto3.client("s3", **{**setup, "aws_access_key_id": key["AccessKeyId"],
                          "aws_secret_access_key": key["SecretAccessKey"]},
                 config=Config(s3={"addressing_style": "path"})).create_bucket(Bucket=bucket)  # fmt: skip
    return key["AccessKeyId"], key["SecretAccessKey"]


def test_wrong_s3_keys_are_said_in_one_line_and_never_shown(
    tmp_path: Path, fake: FakeProvider, team_services: TeamServices
) -> None:
    moto = MotoServer(authenticate_after=4)
    moto.start()
    try:
        key_id, secret = iam_user(moto.endpoint, "checked")
        pg = team_services.postgres
        database = pg.create_database("s3_keys")
        remote = TeamRemote(f"postgres://{pg.user}@127.0.0.1:{pg.port}/{database}", "s3://checked/team",
                            moto.endpoint, "checked", database,
                            {"PGPASSWORD": PG_PASSWORD, "AWS_ACCESS_KEY_ID": key_id,
                             "AWS_SECRET_ACCESS_KEY": secret, "AWS_REGION": "us-east-1"})  # fmt: skip
        ci = machine(tmp_path, "ci", remote)
        sid = record(ci, fake, DEMO_AGENT)
        wrong = "wrong-" + secret[6:]
        result = ci("push", sid, AWS_SECRET_ACCESS_KEY=wrong)
        one_line_error(result, "S3 refused the secret key", "AWS_ACCESS_KEY_ID")
        assert wrong not in result.stderr and secret not in result.stderr
        one_line_error(ci("push", sid, AWS_ACCESS_KEY_ID="AKIA" + "X" * 16), "S3 refused the access key")
        assert ci.json("list", "--remote", "team") == []
        assert pushed(ci, sid)["added"] == [sid]  # the right keys
    finally:
        moto.stop()


def test_unreachable_servers_and_a_missing_bucket_are_said_in_one_line(
    tmp_path: Path, fake: FakeProvider, team_remote: TeamRemote
) -> None:
    closed = free_port()
    no_catalog = machine(tmp_path, "a", team_remote, catalog=f"postgres://rewind@127.0.0.1:{closed}/team")
    sid = record(no_catalog, fake, DEMO_AGENT)
    started = time.monotonic()
    one_line_error(no_catalog("push", sid), "cannot reach the catalog", f"127.0.0.1:{closed}")
    no_s3 = Rewind(tmp_path / "a", no_catalog.env)
    assert no_s3("remote", "rm", "team").returncode == 0
    assert no_s3("remote", "add", "team", "--catalog", team_remote.catalog, "--data", team_remote.data,
                 "--endpoint", f"http://127.0.0.1:{closed}").returncode == 0  # fmt: skip
    one_line_error(no_s3("push", sid), "cannot reach the S3 endpoint")
    assert no_s3("remote", "rm", "team").returncode == 0
    missing = "s3://no-such-bucket-here/team"
    assert no_s3("remote", "add", "team", "--catalog", team_remote.catalog, "--data", missing,
                 "--endpoint", team_remote.endpoint).returncode == 0  # fmt: skip
    one_line_error(no_s3("push", sid), "the bucket of s3://no-such-bucket-here/team does not exist")
    assert no_s3("remote", "rm", "team").returncode == 0
    assert no_s3("remote", "add", "team", "--catalog", team_remote.catalog, "--data", team_remote.data,
                 "--endpoint", team_remote.endpoint).returncode == 0  # fmt: skip
    assert no_s3("push", sid).returncode == 0  # nothing was left half-made by the failures before
    elsewhere = team_remote.data + "-moved"  # a bucket that exists, but not where the catalog's data is
    assert no_s3("remote", "rm", "team").returncode == 0
    assert no_s3("remote", "add", "team", "--catalog", team_remote.catalog, "--data", elsewhere,
                 "--endpoint", team_remote.endpoint).returncode == 0  # fmt: skip
    one_line_error(no_s3("push", sid), f"keeps its data in {team_remote.data}, not {elsewhere}")
    assert time.monotonic() - started < 90, "a failure to connect must not hang"


def test_a_catalog_of_a_newer_format_is_refused(ci: Rewind, fake: FakeProvider, team_remote: TeamRemote,
                                                monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    from rewind.store import lake
    from rewind.store.remotes import Remote

    sid = record(ci, fake, DEMO_AGENT)
    pushed(ci, sid)
    for key, value in team_remote.env.items():
        monkeypatch.setenv(key, value)
    remote = Remote("team", team_remote.catalog, team_remote.data, team_remote.endpoint)
    with lake.open_lake(remote, dict(team_remote.env)) as conn:
        conn.execute("INSERT INTO rewind_format VALUES (?, 0)", [lake.FORMAT + 1])
    one_line_error(ci("list", "--remote", "team"), f"format {lake.FORMAT + 1}", "upgrade Rewind")
    one_line_error(ci("push", sid), f"format {lake.FORMAT + 1}")
