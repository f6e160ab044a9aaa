"""Pack files: record format, round trip, and every way a blob can go bad."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import zstandard

from rewind.errors import BlobCorrupt, BlobMissing
from rewind.store.blobs import (
    HEADER,
    MAGIC,
    BlobRef,
    BlobStore,
    PackStore,
    pack_path,
    read_blob,
    scan_pack,
    sha256_hex,
)


def put(store: PackStore, data: bytes) -> BlobRef:
    return store.put(sha256_hex(data), data)


@pytest.fixture
def store(tmp_path: Path) -> PackStore:
    return PackStore(tmp_path / "packs", "s1")


def test_round_trip(store: PackStore) -> None:
    blobs = [b"", b"hello", bytes(range(256)) * 100]
    refs = [put(store, data) for data in blobs]
    assert [store.get(ref) for ref in refs] == blobs


def test_record_format(store: PackStore) -> None:
    ref = put(store, b"payload" * 50)
    raw = pack_path(store.packs_dir, "s1").read_bytes()
    assert raw[:4] == MAGIC == b"RWB1"
    assert raw[4:36] == hashlib.sha256(b"payload" * 50).digest()
    assert int.from_bytes(raw[36:44], "big") == ref.data_length == len(raw) - HEADER.size
    assert ref.data_offset == 44
    assert zstandard.ZstdDecompressor().decompress(raw[44:]) == b"payload" * 50


def test_compresses(store: PackStore) -> None:
    ref = put(store, b"a" * 10_000)
    assert ref.raw_size == 10_000 and ref.data_length < 100


def test_appends_after_existing_records(store: PackStore, tmp_path: Path) -> None:
    first = put(store, b"one")
    store.close()
    second = put(PackStore(tmp_path / "packs", "s1"), b"two")
    assert second.data_offset == first.data_offset + first.data_length + HEADER.size
    assert read_blob(tmp_path / "packs", second) == b"two"


def test_scan_lists_complete_records_and_stops_at_torn_tail(store: PackStore) -> None:
    refs = [put(store, b"a"), put(store, b"bb")]
    path = pack_path(store.packs_dir, "s1")
    with path.open("ab") as f:
        f.write(MAGIC + b"\x00" * 10)
    assert list(scan_pack(path)) == refs


def test_tampered_data_byte_is_corrupt(store: PackStore) -> None:
    data = bytes(range(256)) * 4  # incompressible enough that each byte matters
    ref = put(store, data)
    flip_byte(pack_path(store.packs_dir, "s1"), ref.data_offset + ref.data_length - 5)
    with pytest.raises(BlobCorrupt, match=ref.sha):
        store.get(ref)


def test_tampered_header_is_corrupt(store: PackStore) -> None:
    ref = put(store, b"x")
    flip_byte(pack_path(store.packs_dir, "s1"), 10)
    with pytest.raises(BlobCorrupt, match=ref.sha):
        store.get(ref)


def test_ref_with_wrong_sha_is_corrupt(store: PackStore) -> None:
    ref = put(store, b"x")
    other = BlobRef(sha256_hex(b"y"), ref.pack, ref.data_offset, ref.data_length, 1)
    with pytest.raises(BlobCorrupt):
        store.get(other)


def test_missing_pack(tmp_path: Path) -> None:
    ref = BlobRef(sha256_hex(b"x"), "gone", 44, 10, 1)
    with pytest.raises(BlobMissing, match="gone"):
        read_blob(tmp_path, ref)


def test_truncated_pack_is_missing_the_blob(store: PackStore) -> None:
    ref = put(store, b"hello" * 100)
    path = pack_path(store.packs_dir, "s1")
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(BlobMissing, match=ref.sha):
        store.get(ref)


def test_pack_store_is_a_blob_store(store: PackStore) -> None:
    backend: BlobStore = store
    assert backend.get(backend.put(sha256_hex(b"q"), b"q")) == b"q"


def flip_byte(path: Path, offset: int) -> None:
    raw = bytearray(path.read_bytes())
    raw[offset] ^= 0xFF
    path.write_bytes(bytes(raw))
