"""Bodies packed into zstd bundles, content addressed, and every blob checked on the way back."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import random
from collections.abc import Iterator, Mapping

import duckdb
import pytest
import zstandard

from rewind.errors import RemoteError
from rewind.store import bundles
from rewind.store.bundles import BlobPlace, Bundle, BundleReader, make_bundles, upload
from rewind.store.lake import open_lake
from rewind.store.remotes import Remote
from tests.services import TeamRemote


def blob(size: int, seed: int) -> tuple[str, bytes]:
    """``(sha256, bytes)`` of ``size`` bytes that do not compress away."""
    data = random.Random(seed).randbytes(size)
    return hashlib.sha256(data).hexdigest(), data


def raw(bundle: Bundle) -> bytes:
    with zstandard.ZstdDecompressor().stream_reader(bundle.data) as reader:
        return reader.read()


def sizes(found: list[Bundle]) -> list[list[int]]:
    return [[p.raw_size for p in b.places] for b in found]


@pytest.fixture
def small_bundles(monkeypatch: pytest.MonkeyPatch) -> int:
    """Bundles of 100 raw bytes, every blob a small one."""
    monkeypatch.setattr(bundles, "SMALL_BUNDLE", 100)
    monkeypatch.setattr(bundles, "LARGE_BODY", 10**6)
    return 100


# --- packing ---------------------------------------------------------------------------


def test_blobs_are_packed_in_order_and_slice_back_out(small_bundles: int) -> None:
    blobs = [blob(60, 1), blob(40, 2), blob(30, 3), blob(70, 4), blob(1, 5)]
    found = list(make_bundles(blobs))
    assert sizes(found) == [[60, 40], [30, 70], [1]]  # 60 + 40 is the limit exactly; 30 + 70 too
    assert [p.sha for b in found for p in b.places] == [sha for sha, _ in blobs]
    data = dict(blobs)
    for bundle in found:
        stream = raw(bundle)
        assert bundle.raw_bytes == len(stream) == sum(p.raw_size for p in bundle.places)
        for place in bundle.places:
            assert place.bundle == bundle.name and place.data_length == place.raw_size
            assert stream[place.data_offset:place.data_offset + place.data_length] == data[place.sha]


def test_a_blob_larger_than_a_bundle_gets_one_of_its_own(small_bundles: int) -> None:
    found = list(make_bundles([blob(10, 1), blob(250, 2), blob(10, 3), blob(20, 4)]))
    assert sizes(found) == [[10], [250], [10, 20]]
    assert found[1].places[0].data_offset == 0 and raw(found[1]) == blob(250, 2)[1]


def test_small_bodies_never_share_a_bundle_with_large_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    """A pull downloads whole bundles: a small body (an empty output, a system prompt) that
    another session shares must not drag a large bundle along."""
    monkeypatch.setattr(bundles, "LARGE_BODY", 50)
    monkeypatch.setattr(bundles, "SMALL_BUNDLE", 100)
    monkeypatch.setattr(bundles, "BUNDLE_RAW_BYTES", 300)
    found = list(make_bundles([blob(10, 1), blob(200, 2), blob(0, 3), blob(60, 4), blob(49, 5), blob(90, 6)]))
    assert sizes(found) == [[10, 0, 49], [200, 60], [90]]


def test_no_blobs_make_no_bundle() -> None:
    assert list(make_bundles([])) == []


def test_a_bundle_is_named_by_its_content() -> None:
    blobs = [blob(500, 1), blob(300, 2)]
    first, again = list(make_bundles(blobs)), list(make_bundles(blobs))
    assert first == again and len(first) == 1
    assert first[0].name == f"bundles/{hashlib.sha256(first[0].data).hexdigest()}.rwb"
    other = list(make_bundles([blob(500, 1), blob(300, 3)]))[0]
    assert other.name != first[0].name


def test_a_body_that_repeats_the_one_before_costs_only_what_it_adds() -> None:
    sha, conversation = blob(100_000, 1)
    longer = conversation + b'{"role": "assistant", "content": "next"}'
    (bundle,) = make_bundles([(sha, conversation), (hashlib.sha256(longer).hexdigest(), longer)])
    assert bundle.raw_bytes == 200_040
    assert len(bundle.data) < 101_000


# --- on the real services --------------------------------------------------------------


@pytest.fixture
def remote(team_remote: TeamRemote, monkeypatch: pytest.MonkeyPatch) -> Remote:
    for key, value in team_remote.env.items():
        monkeypatch.setenv(key, value)
    return Remote("team", team_remote.catalog, team_remote.data, team_remote.endpoint)


@pytest.fixture
def conn(remote: Remote) -> Iterator[duckdb.DuckDBPyConnection]:
    env: Mapping[str, str] = os.environ
    with open_lake(remote, env) as conn:
        yield conn


def test_uploaded_blobs_are_read_back_each_bundle_downloaded_once(
    conn: duckdb.DuckDBPyConnection, remote: Remote, small_bundles: int
) -> None:
    blobs = [blob(50, 1), blob(40, 2), blob(90, 3), blob(5, 4)]
    found = list(make_bundles(blobs))
    assert len(found) == 2
    for bundle in found:
        upload(conn, remote.data, bundle)
    downloads: list[int] = []
    reader = BundleReader(conn, remote.data, downloads.append)
    places = [p for b in found for p in b.places]
    for place in places + places:
        assert reader.get(place, "step 1") == dict(blobs)[place.sha]
    assert downloads == [len(b.data) for b in found]


def test_a_changed_byte_fails_the_sha256_check_naming_the_blob(
    conn: duckdb.DuckDBPyConnection, remote: Remote
) -> None:
    bundle = next(make_bundles([blob(64, 1), blob(64, 2)]))
    altered = bytearray(raw(bundle))
    altered[70] ^= 0x01  # in the second blob
    upload(conn, remote.data, dataclasses.replace(bundle, data=zstandard.ZstdCompressor().compress(altered)))
    reader = BundleReader(conn, remote.data)
    assert reader.get(bundle.places[0], "step 1 (request body)") == blob(64, 1)[1]
    with pytest.raises(RemoteError, match=r"step 2 \(response body\): body [0-9a-f]{64} .*sha256") as caught:
        reader.get(bundle.places[1], "step 2 (response body)")
    assert bundle.places[1].sha in str(caught.value) and "push it again" in (caught.value.hint or "")


def test_a_place_past_the_end_of_its_bundle_fails_the_check(
    conn: duckdb.DuckDBPyConnection, remote: Remote
) -> None:
    bundle = next(make_bundles([blob(64, 1)]))
    upload(conn, remote.data, bundle)
    beyond = dataclasses.replace(bundle.places[0], data_offset=32)
    with pytest.raises(RemoteError, match="stdout: .*sha256"):
        BundleReader(conn, remote.data).get(beyond, "stdout")


def test_bytes_that_are_not_zstd_are_not_a_valid_bundle(
    conn: duckdb.DuckDBPyConnection, remote: Remote
) -> None:
    bundle = next(make_bundles([blob(64, 1)]))
    upload(conn, remote.data, dataclasses.replace(bundle, data=random.Random(7).randbytes(200)))
    with pytest.raises(RemoteError, match=f"step 3: the remote object {bundle.name} is not a valid bundle"):
        BundleReader(conn, remote.data).get(bundle.places[0], "step 3")


def test_a_missing_object_is_named(conn: duckdb.DuckDBPyConnection, remote: Remote) -> None:
    place = BlobPlace("0" * 64, 3, "bundles/" + "f" * 64 + ".rwb", 0, 3)
    downloads: list[int] = []
    with pytest.raises(RemoteError, match=f"step 4: the remote object {place.bundle} is missing") as caught:
        BundleReader(conn, remote.data, downloads.append).get(place, "step 4")
    assert "push the session again" in (caught.value.hint or "") and downloads == []


def test_a_bundle_is_inflated_only_as_far_as_the_bodies_asked_for() -> None:
    """A hostile object (200 MB of zeros in a few kB) cannot make a pull allocate more
    than the catalog says the bundle holds."""
    bomb = zstandard.ZstdCompressor().compress(bytes(200 * 1024 * 1024))
    assert len(bomb) < 100_000
    inflating = bundles._Inflating(bomb)
    assert len(inflating.upto(10)) == 10
    assert len(inflating.upto(1000)) == 1000
    with pytest.raises(zstandard.ZstdError):
        bundles._Inflating(b"not zstd at all").upto(10)
