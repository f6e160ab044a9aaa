"""Push, pull and compact through a real team store (PostgreSQL catalog, moto S3), and
``RemoteStore`` answering the local store's questions from the catalog."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import boto3
import pytest
import zstandard

from rewind.errors import CassetteError, RemoteError, SessionNotFound
from rewind.store.bundles import make_bundles, upload
from rewind.store.home import Home
from rewind.store.index import Store
from rewind.store.lake import open_lake
from rewind.store.remotes import Remote
from rewind.store.stats import Aggregates, By
from rewind.store.team import RemoteStore, compact, pull, push
from rewind.store.writer import SessionWriter
from tests.services import AWS_ENV, TeamRemote

from .conftest import Record, make_start, record_step


@pytest.fixture
def env(team_remote: TeamRemote, monkeypatch: pytest.MonkeyPatch) -> Mapping[str, str]:
    """The process environment with the remote's credentials (libpq reads PGPASSWORD from it)."""
    for key, value in team_remote.env.items():
        monkeypatch.setenv(key, value)
    return os.environ


@pytest.fixture
def remote(team_remote: TeamRemote) -> Remote:
    return Remote("team", team_remote.catalog, team_remote.data, team_remote.endpoint)


@pytest.fixture
def other(tmp_path: Path) -> Home:
    """A teammate's home, empty."""
    return Home(tmp_path / "teammate")


@pytest.fixture
def remote_store(home: Home, remote: Remote, env: Mapping[str, str]) -> Iterator[RemoteStore]:
    store = RemoteStore(home, remote, env)
    yield store
    store.close()


class Bucket:
    """The remote's objects, seen through S3 itself (boto3 against the moto server)."""

    def __init__(self, team_remote: TeamRemote) -> None:
        self.name = team_remote.bucket
        self.client = boto3.client("s3", endpoint_url=team_remote.endpoint, region_name=AWS_ENV["AWS_REGION"],
                                   aws_access_key_id=AWS_ENV["AWS_ACCESS_KEY_ID"],
                                   aws_secret_access_key=AWS_ENV["AWS_SECRET_ACCESS_KEY"])  # fmt: skip

    def keys(self, prefix: str = "team/") -> list[str]:
        listed = self.client.list_objects_v2(Bucket=self.name, Prefix=prefix)
        return sorted(item["Key"] for item in listed.get("Contents", []))

    def bundles(self) -> list[str]:
        return self.keys("team/bundles/")

    def get(self, key: str) -> bytes:
        return bytes(self.client.get_object(Bucket=self.name, Key=key)["Body"].read())

    def put(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.name, Key=key, Body=data)

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.name, Key=key)


@pytest.fixture
def bucket(team_remote: TeamRemote) -> Bucket:
    return Bucket(team_remote)


def session(
    home: Home, name: str, salt: str, steps: int = 2, started_at: float | None = None,
    gaps: tuple[tuple[int, str], ...] = (),
) -> str:
    """A session whose bodies and output are its own (``salt`` is in each); its id."""
    writer = SessionWriter(home, make_start(name, started_at))
    for n in range(1, steps + 1):
        record_step(writer, n, f'{{"q": "{salt} {n}"}}'.encode(), f"data: {salt} {n}\n\n".encode())
    for step, reason in gaps:
        writer.add_gap(step, reason)
    writer.finish(0, f"{salt} out\n".encode(), f"{salt} err\n".encode(), ended_at=time.time())
    return writer.session_id


def files(home: Home) -> dict[str, str]:
    """Every file under the home and the sha256 of its bytes."""
    return {str(p.relative_to(home.root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(home.root.rglob("*")) if p.is_file()}  # fmt: skip


def same_aggregates(a: Aggregates, b: Aggregates) -> bool:
    """Equal up to row order (the queries group without an order)."""
    def rows(agg: Aggregates) -> list[Any]:
        return [sorted(map(repr, part)) for part in (agg.tokens, agg.timings, agg.failures)] + [agg.names]

    return rows(a) == rows(b)


# --- push and pull ---------------------------------------------------------------------


def test_a_session_pushed_then_pulled_into_another_home_is_the_same(
    home: Home, other: Home, remote: Remote, env: Mapping[str, str]
) -> None:
    sid = session(home, "nightly", "alpha", steps=3, gaps=((4, "body too large"),))
    pushed = push(home, remote, [sid], env)
    assert (pushed.added, pushed.present, pushed.bodies_sent, pushed.bodies_skipped) == ([sid], [], 8, 0)
    _, _, blobs = Store(home).load(sid)
    assert pushed.raw_bytes == sum(len(b) for b in blobs.values()) and 0 < pushed.sent_bytes
    pulled = pull(other, remote, ["nightly"], env)
    assert (pulled.added, pulled.present, pulled.refused) == ([sid], [], [])
    assert pulled.received_bytes == pushed.sent_bytes  # one bundle, downloaded once
    (info_a, steps_a, blobs_a), (info_b, steps_b, blobs_b) = Store(home).load(sid), Store(other).load(sid)
    assert info_b == info_a and steps_b == steps_a and blobs_b == blobs_a
    assert [s.fingerprint for s in steps_b] == [s.fingerprint for s in steps_a]
    assert Store(other).gaps(sid) == Store(home).gaps(sid) and info_b.lost == 1
    again = pull(other, remote, [sid], env)
    assert (again.added, again.present, again.received_bytes) == ([], [sid], 0)


def test_pushing_again_adds_nothing_and_sends_no_body(
    home: Home, remote: Remote, env: Mapping[str, str], bucket: Bucket
) -> None:
    sid = session(home, "nightly", "alpha")
    push(home, remote, [sid], env)
    objects = bucket.keys()
    again = push(home, remote, [sid[:6]], env)
    assert (again.added, again.present, again.bodies_sent, again.sent_bytes) == ([], [sid], 0, 0)
    assert bucket.keys() == objects


def test_a_session_sharing_bodies_with_a_pushed_one_sends_only_its_new_ones(
    home: Home, record: Record, remote: Remote, env: Mapping[str, str], remote_store: RemoteStore
) -> None:
    first = record(steps=2, name="a").session_id  # request and response bodies 1..2, "out", "err"
    second = record(steps=3, name="b").session_id  # the same, and the bodies of step 3
    assert push(home, remote, [first], env).bodies_sent == 6
    done = push(home, remote, [second, first], env)
    assert (done.added, done.present) == ([second], [first])
    assert (done.bodies_sent, done.bodies_skipped) == (2, 6)
    assert {s.id for s in remote_store.sessions()} == {first, second}


def test_a_session_whose_bodies_are_all_on_the_remote_is_published_sending_none(
    home: Home, other: Home, record: Record, remote: Remote, env: Mapping[str, str]
) -> None:
    longer = record(steps=3, name="a").session_id
    rerun = record(steps=2, name="b").session_id  # every body of it is one of the first's
    push(home, remote, [longer], env)
    done = push(home, remote, [rerun], env)
    assert (done.added, done.bodies_sent, done.bodies_skipped) == ([rerun], 0, 6)
    assert pull(other, remote, [rerun], env).added == [rerun]


def test_pulling_a_small_session_does_not_download_a_large_one_sharing_its_output(
    home: Home, other: Home, remote: Remote, env: Mapping[str, str]
) -> None:
    big = SessionWriter(home, make_start("big"))
    record_step(big, 1, b'{"q": "big"}', os.urandom(3 * 1024 * 1024))
    big.finish(0, b"same output\n", b"", ended_at=time.time())
    small = SessionWriter(home, make_start("small"))
    record_step(small, 1, b'{"q": "small"}', b"data: tiny\n\n")
    small.finish(0, b"same output\n", b"", ended_at=time.time())  # its output is already on the remote
    push(home, remote, [big.session_id], env)
    assert push(home, remote, [small.session_id], env).bodies_skipped == 2  # the output and empty stderr
    done = pull(other, remote, [small.session_id], env)
    assert done.added == [small.session_id]
    assert done.received_bytes < 64 * 1024, "the big session's bundle came along"


def test_a_session_still_recording_is_refused_and_nothing_is_pushed(
    home: Home, remote: Remote, env: Mapping[str, str], remote_store: RemoteStore, bucket: Bucket
) -> None:
    done = session(home, "done", "alpha")
    writer = SessionWriter(home, make_start("live"))
    record_step(writer, 1)
    try:
        with pytest.raises(RemoteError, match=f"session {writer.session_id} is still recording"):
            push(home, remote, [done, writer.session_id], env)
    finally:
        writer.close()
    assert remote_store.sessions() == [] and bucket.keys() == []


def test_a_session_carrying_a_secret_is_refused_naming_the_step(
    home: Home, remote: Remote, env: Mapping[str, str], remote_store: RemoteStore, bucket: Bucket
) -> None:
    clean = session(home, "clean", "alpha")
    writer = SessionWriter(home, make_start("leaky"))
    record_step(writer, 1)
    record_step(writer, 2, response=b'{"echo": "my password is hunter2-literal"}')
    writer.finish(0, b"", b"")
    with pytest.raises(CassetteError, match=f"session {writer.session_id} step 2 .*response body"):
        push(home, remote, [clean, writer.session_id], env, literals=[b"hunter2-literal"])
    assert remote_store.sessions() == [] and bucket.keys() == []


def test_pulling_an_unknown_session_names_it(
    home: Home, other: Home, remote: Remote, env: Mapping[str, str]
) -> None:
    push(home, remote, [session(home, "nightly", "alpha")], env)
    with pytest.raises(SessionNotFound, match="no session matches 'nope'"):
        pull(other, remote, ["nope"], env)
    with pytest.raises(SessionNotFound, match="no session on the remote matches"):
        pull(other, remote, [], env, name="nope")
    assert not other.root.exists()


def test_pull_by_name_and_since(home: Home, other: Home, remote: Remote, env: Mapping[str, str]) -> None:
    now = time.time()
    old = session(home, "nightly", "old", started_at=now - 7200)
    new = session(home, "nightly", "new", started_at=now - 60)
    weekly = session(home, "weekly", "weekly", started_at=now - 30)
    push(home, remote, [old, new, weekly], env)
    assert pull(other, remote, [], env, name="nightly", since=now - 3600).added == [new]
    assert pull(other, remote, [], env, since=now - 3600).added == [weekly]
    by_name = pull(other, remote, [], env, name="nightly")
    assert (by_name.added, by_name.present) == ([old], [new])
    assert {s.id for s in Store(other).sessions()} == {old, new, weekly}


@pytest.mark.parametrize("damage", ["deleted", "overwritten"])
def test_a_session_whose_bodies_fail_is_refused_and_nothing_of_it_is_written(
    home: Home, other: Home, remote: Remote, env: Mapping[str, str], bucket: Bucket, damage: str
) -> None:
    bad = session(home, "bad", "alpha")
    push(home, remote, [bad], env)
    (key,) = bucket.bundles()
    good = session(home, "good", "beta")
    push(home, remote, [good], env)
    if damage == "deleted":
        bucket.delete(key)
    else:  # still a valid bundle, one byte changed
        raw = bytearray(zstandard.ZstdDecompressor().stream_reader(bucket.get(key)).read())
        raw[3] ^= 0x01
        bucket.put(key, zstandard.ZstdCompressor().compress(bytes(raw)))
    mine = session(other, "mine", "gamma")
    before = files(other)
    alone = pull(other, remote, [bad], env)
    assert alone.added == [] and [sid for sid, _ in alone.refused] == [bad]
    assert files(other) == before
    both = pull(other, remote, [bad, good], env)
    assert both.added == [good] and [sid for sid, _ in both.refused] == [bad]
    why = both.refused[0][1]
    assert f"session {bad}: step 1 (request body)" in why
    assert ("missing" if damage == "deleted" else "sha256") in why
    assert {s.id for s in Store(other).sessions()} == {mine, good}


def test_after_a_missing_bucket_the_hint_to_use_another_one_works(
    home: Home, remote: Remote, env: Mapping[str, str]
) -> None:
    sid = session(home, "nightly", "alpha")
    typo = Remote(remote.name, remote.catalog, "s3://no-such-bucket-here/team", remote.endpoint)
    with pytest.raises(RemoteError, match="does not exist") as caught:
        push(home, typo, [sid], env)
    assert "rewind remote rm" in (caught.value.hint or "")
    assert push(home, remote, [sid], env).added == [sid]


# --- reading the remote ----------------------------------------------------------------


def test_the_remote_store_answers_as_the_local_store_does(
    home: Home, remote: Remote, env: Mapping[str, str], remote_store: RemoteStore
) -> None:
    now = time.time()
    old = session(home, "nightly", "old", started_at=now - 7200, gaps=((3, "dropped"),))
    new = session(home, "nightly", "new", steps=3, started_at=now - 60)
    weekly = session(home, "weekly", "weekly", started_at=now - 30)
    push(home, remote, [old, new, weekly], env)
    local = Store(home)
    assert remote_store.sessions() == local.sessions() and len(local.sessions()) == 3
    assert remote_store.sessions(name="nightly", limit=1) == local.sessions(name="nightly", limit=1)
    assert remote_store.sessions(since=now - 3600) == local.sessions(since=now - 3600)
    assert remote_store.session("nightly") == local.session("nightly") and local.session("nightly").id == new
    assert remote_store.session(old[:8]).id == old
    for sid in (old, new, weekly):
        assert remote_store.steps(sid) == local.steps(sid)
        assert remote_store.gaps(sid) == local.gaps(sid)
    assert remote_store.gaps(old)[0].reason == "dropped"
    infos, per_session = remote_store.sessions_with_stats()
    local_infos, local_per_session = local.sessions_with_stats()
    assert infos == local_infos and same_aggregates(per_session, local_per_session)
    for by in (By.MODEL, By.SESSION, By.PROVIDER):
        assert same_aggregates(remote_store.stats(by), local.stats(by))
    assert remote_store.stats(By.SESSION).names == {old: "nightly", new: "nightly", weekly: "weekly"}


def test_the_remote_store_fetches_a_body_but_will_not_load_a_session(
    home: Home, remote: Remote, env: Mapping[str, str], remote_store: RemoteStore
) -> None:
    sid = session(home, "nightly", "alpha")
    push(home, remote, [sid], env)
    step = Store(home).steps(sid)[0]
    assert remote_store.blob(step.request_sha) == Store(home).blob(step.request_sha)
    with pytest.raises(RemoteError, match="reads the local store only") as caught:
        remote_store.load("nightly")
    assert caught.value.hint == "pull the session first: rewind pull --remote team nightly"
    with pytest.raises(RemoteError, match="is not on the remote 'team'"):
        remote_store.blob("0" * 64)


# --- compaction ------------------------------------------------------------------------


def test_compact_moves_inlined_rows_out_and_the_answers_stay_the_same(
    home: Home, other: Home, remote: Remote, env: Mapping[str, str], remote_store: RemoteStore
) -> None:
    first, second = session(home, "a", "alpha", gaps=((3, "dropped"),)), session(home, "b", "beta", steps=3)
    push(home, remote, [first], env)
    push(home, remote, [second], env)
    before = (remote_store.sessions(), remote_store.steps(second), remote_store.gaps(first))
    stats = remote_store.stats(By.MODEL)
    remote_store.close()
    done = compact(remote, env, keep_hours=0)
    # rows: 2 sessions + 5 steps + 1 gap + 14 bodies (2 a step, stdout, stderr) + the format's 1
    assert (done.files_before, done.inlined_rows, done.unreferenced_bundles) == (0, 23, 0)
    assert done.files_after > 0
    assert (remote_store.sessions(), remote_store.steps(second), remote_store.gaps(first)) == before
    assert same_aggregates(remote_store.stats(By.MODEL), stats)
    assert pull(other, remote, [first, second], env).added == [first, second]
    assert compact(remote, env).inlined_rows == 0


def test_compact_counts_bundles_no_body_refers_to(
    home: Home, remote: Remote, env: Mapping[str, str]
) -> None:
    push(home, remote, [session(home, "a", "alpha")], env)
    orphan = next(make_bundles([("0" * 64, b"left by an interrupted push")]))
    with open_lake(remote, env) as conn:
        upload(conn, remote.data, orphan)
    done = compact(remote, env)
    assert (done.unreferenced_bundles, done.unreferenced_bytes) == (1, len(orphan.data))


# --- two machines at once --------------------------------------------------------------

PUSHER = """
import os, sys
from pathlib import Path
from rewind.store.home import Home
from rewind.store.remotes import Remote
from rewind.store.team import push
name, catalog, data, endpoint, root, sid = sys.argv[1:]
print(push(Home(Path(root)), Remote(name, catalog, data, endpoint), [sid], os.environ).added)
"""


def push_at_once(pushes: list[tuple[Home, str]], remote: Remote, team_remote: TeamRemote) -> list[str]:
    """Push each ``(home, session)`` from its own process, all started together; what each added."""
    environ = {**os.environ, **team_remote.env}
    procs = [subprocess.Popen([sys.executable, "-c", PUSHER, remote.name, remote.catalog, remote.data,
                               remote.endpoint or "", str(home.root), sid],
                              env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for home, sid in pushes]  # fmt: skip
    added = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        added.append(out.splitlines()[-1])  # after any progress bar DuckDB printed
    return added


def test_two_machines_pushing_different_sessions_at_once_both_publish(
    home: Home, other: Home, remote: Remote, team_remote: TeamRemote, remote_store: RemoteStore
) -> None:
    mine, theirs = session(home, "mine", "alpha"), session(other, "theirs", "beta")
    added = push_at_once([(home, mine), (other, theirs)], remote, team_remote)  # a new remote: both make it
    assert added == [f"['{mine}']", f"['{theirs}']"]
    assert sorted(s.id for s in remote_store.sessions()) == sorted([mine, theirs])
    assert [s.step for s in remote_store.steps(mine)] == [1, 2]


def test_two_machines_pushing_the_same_session_at_once_show_it_once(
    home: Home, other: Home, remote: Remote, team_remote: TeamRemote, remote_store: RemoteStore
) -> None:
    sid = session(home, "shared", "alpha")
    added = push_at_once([(home, sid), (home, sid)], remote, team_remote)
    assert f"['{sid}']" in added and set(added) <= {f"['{sid}']", "[]"}
    assert [s.id for s in remote_store.sessions()] == [sid]
    assert remote_store.steps(sid) == Store(home).steps(sid)
    assert pull(other, remote, [sid], remote_store.env).added == [sid]
