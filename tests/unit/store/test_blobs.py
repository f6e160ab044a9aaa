"""Object packs: record format, deltas and chains, and every way an object can go bad."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
import zstandard

from rewind.errors import BlobCorrupt, BlobMissing
from rewind.store.blobs import (
    HEADER,
    LEGACY_HEADER,
    LEGACY_MAGIC,
    MAGIC,
    MAX_DEPTH,
    NO_BASE,
    BlobReader,
    BlobRef,
    PackWriter,
    decode_record,
    iter_objects,
    list_packs,
    reader_for,
    scan_pack,
    sha256_hex,
)

from .conftest import flip_byte

PACK = "objects/s1.pack"


def put(pack: PackWriter, data: bytes, base: bytes | None = None) -> BlobRef:
    return pack.put(sha256_hex(data), data, None if base is None else (sha256_hex(base), base))


@pytest.fixture
def pack(tmp_path: Path) -> PackWriter:
    return PackWriter(tmp_path, PACK)


def read(root: Path, refs: list[BlobRef], ref: BlobRef) -> bytes:
    return reader_for(root, {r.sha: r for r in refs}).get(ref)


def conversation(turns: int) -> bytes:
    """An agent's request after ``turns`` turns: the whole conversation, resent."""
    messages = [{"role": "user", "content": f"turn {n}: " + hashlib.sha256(b"%d" % n).hexdigest() * 40}
                for n in range(turns)]
    return json.dumps({"model": "gpt-4o", "messages": messages}).encode()


def write_legacy_pack(root: Path, sid: str, blobs: list[bytes]) -> list[BlobRef]:
    """A version-1 pack (``packs/<sid>.pack``, ``RWB1`` records) as the old writer made it."""
    (root / "packs").mkdir(parents=True, exist_ok=True)
    pack, raw, refs = f"packs/{sid}.pack", b"", []
    for data in blobs:
        frame = zstandard.ZstdCompressor().compress(data)
        header = LEGACY_HEADER.pack(LEGACY_MAGIC, hashlib.sha256(data).digest(), len(frame))
        refs.append(BlobRef(sha256_hex(data), pack, len(raw) + LEGACY_HEADER.size, len(frame), len(data)))
        raw += header + frame
    (root / pack).write_bytes(raw)
    return refs


def test_round_trip_without_base(pack: PackWriter, tmp_path: Path) -> None:
    blobs = [b"", b"hello", bytes(range(256)) * 100]
    refs = [put(pack, data) for data in blobs]
    assert [read(tmp_path, refs, ref) for ref in refs] == blobs
    assert all(ref.base is None for ref in refs)


def test_round_trip_with_base(pack: PackWriter, tmp_path: Path) -> None:
    first, second = conversation(3), conversation(4)
    refs = [put(pack, first), put(pack, second, base=first)]
    assert refs[1].base == refs[0].sha
    assert read(tmp_path, refs, refs[1]) == second


def test_record_format(pack: PackWriter, tmp_path: Path) -> None:
    base_ref = put(pack, b"base" * 10)
    ref = put(pack, b"payload" * 50, base=b"base" * 10)
    raw = (tmp_path / PACK).read_bytes()[HEADER.size + base_ref.data_length :]
    assert raw[:4] == MAGIC == b"RWO1"
    assert raw[4:36] == hashlib.sha256(b"payload" * 50).digest()
    assert raw[36:68] == hashlib.sha256(b"base" * 10).digest()
    assert int.from_bytes(raw[68:76], "big") == ref.raw_size == 350
    assert int.from_bytes(raw[76:84], "big") == ref.data_length == len(raw) - HEADER.size
    assert ref.data_offset == 2 * HEADER.size + base_ref.data_length
    first = (tmp_path / PACK).read_bytes()
    assert first[36:68] == NO_BASE  # no base: zeros
    assert zstandard.ZstdDecompressor().decompress(first[HEADER.size : HEADER.size + base_ref.data_length]) \
        == b"base" * 10


def test_delta_is_much_smaller_than_a_plain_frame(pack: PackWriter, tmp_path: Path) -> None:
    before, after = conversation(30), conversation(31)
    plain = PackWriter(tmp_path, "objects/plain.pack").put(sha256_hex(after), after)
    put(pack, before)
    delta = put(pack, after, base=before)
    assert delta.data_length * 5 < plain.data_length


def test_chain_decodes_through_several_bases(pack: PackWriter, tmp_path: Path) -> None:
    bodies = [conversation(n) for n in range(1, 8)]
    refs = [put(pack, bodies[0])]
    refs += [put(pack, body, base=prev) for prev, body in zip(bodies, bodies[1:], strict=False)]
    assert [r.base for r in refs[1:]] == [r.sha for r in refs[:-1]]
    fresh = BlobReader(tmp_path, {r.sha: r for r in refs}.get)
    assert fresh.get(refs[-1]) == bodies[-1]


def test_chain_longer_than_max_depth_is_refused(tmp_path: Path) -> None:
    # A chain is bounded so a read decodes at most MAX_DEPTH objects; refs are
    # forged so the test does not decode 64 frames.
    end = MAX_DEPTH + 10
    refs = {f"{n:064x}": BlobRef(f"{n:064x}", PACK, 0, 0, 0, f"{n + 1:064x}") for n in range(end)}
    lookups: list[str] = []

    def lookup(sha: str) -> BlobRef | None:
        lookups.append(sha)
        return refs.get(sha)

    reader = BlobReader(tmp_path, lookup)
    reader._cache[f"{end:064x}"] = b""  # noqa: SLF001 (stands for a decodable end)
    with pytest.raises(BlobMissing):
        reader.get(refs[f"{0:064x}"])
    assert len(lookups) <= MAX_DEPTH + 1


def test_missing_base_is_blob_missing(pack: PackWriter, tmp_path: Path) -> None:
    put(pack, b"base body")
    ref = put(pack, b"base body, grown", base=b"base body")
    with pytest.raises(BlobMissing, match=ref.base or "?"):
        read(tmp_path, [ref], ref)


def test_damaged_base_makes_the_delta_unreadable(pack: PackWriter, tmp_path: Path) -> None:
    base = bytes(range(256)) * 8
    refs = [put(pack, base), put(pack, base + b"more", base=base)]
    flip_byte(tmp_path / PACK, refs[0].data_offset + refs[0].data_length - 3)
    with pytest.raises(BlobCorrupt, match="damaged base"):
        read(tmp_path, refs, refs[1])


def test_tampered_data_byte_is_corrupt(pack: PackWriter, tmp_path: Path) -> None:
    data = bytes(range(256)) * 4  # incompressible enough that each byte matters
    ref = put(pack, data)
    flip_byte(tmp_path / PACK, ref.data_offset + ref.data_length - 5)
    with pytest.raises(BlobCorrupt, match=ref.sha):
        read(tmp_path, [ref], ref)


@pytest.mark.parametrize("offset", [1, 10, 40, 70, 80])  # magic, sha, base, raw size, length
def test_tampered_header_is_corrupt(pack: PackWriter, tmp_path: Path, offset: int) -> None:
    ref = put(pack, b"x" * 100)
    flip_byte(tmp_path / PACK, offset)
    with pytest.raises(BlobCorrupt, match=ref.sha):
        read(tmp_path, [ref], ref)


def test_ref_with_wrong_sha_is_corrupt(pack: PackWriter, tmp_path: Path) -> None:
    ref = put(pack, b"x")
    other = BlobRef(sha256_hex(b"y"), ref.pack, ref.data_offset, ref.data_length, 1)
    with pytest.raises(BlobCorrupt):
        decode_record(tmp_path, other, None)


def test_missing_pack_is_blob_missing(tmp_path: Path) -> None:
    ref = BlobRef(sha256_hex(b"x"), "objects/gone.pack", HEADER.size, 10, 1)
    with pytest.raises(BlobMissing, match="gone"):
        decode_record(tmp_path, ref, None)


def test_truncated_pack_is_blob_missing(pack: PackWriter, tmp_path: Path) -> None:
    ref = put(pack, b"hello" * 100)
    path = tmp_path / PACK
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(BlobMissing, match=ref.sha):
        read(tmp_path, [ref], ref)


def test_appends_after_existing_records(pack: PackWriter, tmp_path: Path) -> None:
    first = put(pack, b"one")
    pack.close()
    second = put(PackWriter(tmp_path, PACK), b"two")
    assert second.data_offset == first.data_offset + first.data_length + HEADER.size
    assert read(tmp_path, [second], second) == b"two"


def test_scan_lists_whole_records_and_reports_a_torn_tail(pack: PackWriter, tmp_path: Path) -> None:
    refs = [put(pack, b"a"), put(pack, b"bb", base=b"a")]
    whole = (tmp_path / PACK).stat().st_size
    with (tmp_path / PACK).open("ab") as f:
        f.write(MAGIC + b"\x00" * 10)
    scan = scan_pack(tmp_path, PACK)
    assert scan.refs == refs
    assert (scan.size, scan.torn_bytes) == (whole + 14, 14)


def test_scan_stops_at_a_record_cut_short(pack: PackWriter, tmp_path: Path) -> None:
    refs = [put(pack, b"a" * 50), put(pack, bytes(range(200)))]
    path = tmp_path / PACK
    path.write_bytes(path.read_bytes()[:-7])
    scan = scan_pack(tmp_path, PACK)
    assert scan.refs == refs[:1]
    assert scan.torn_bytes == HEADER.size + refs[1].data_length - 7


def test_legacy_pack_records_still_read(tmp_path: Path) -> None:
    blobs = [b"legacy one", b"legacy two" * 100]
    refs = write_legacy_pack(tmp_path, "old1", blobs)
    scan = scan_pack(tmp_path, "packs/old1.pack")
    assert scan.refs == refs and scan.torn_bytes == 0
    assert [read(tmp_path, refs, ref) for ref in refs] == blobs


def test_legacy_record_tampered_is_corrupt(tmp_path: Path) -> None:
    ref = write_legacy_pack(tmp_path, "old1", [bytes(range(256)) * 4])[0]
    flip_byte(tmp_path / ref.pack, ref.data_offset + ref.data_length - 5)
    with pytest.raises(BlobCorrupt, match=ref.sha):
        read(tmp_path, [ref], ref)


def test_every_pack_is_listed_legacy_too(pack: PackWriter, tmp_path: Path) -> None:
    put(pack, b"new")
    write_legacy_pack(tmp_path, "old1", [b"old"])
    assert list_packs(tmp_path) == [PACK, "packs/old1.pack"]
    assert sorted(r.sha for r in iter_objects(tmp_path)) == sorted([sha256_hex(b"new"), sha256_hex(b"old")])


def test_pack_is_private(pack: PackWriter, tmp_path: Path) -> None:
    put(pack, b"secret body")
    assert os.stat(tmp_path / PACK).st_mode & 0o077 == 0
