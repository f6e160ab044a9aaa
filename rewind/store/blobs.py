"""Content-addressed blobs, zstd-compressed and appended to one pack file per session.

A blob's address is the sha256 of its raw bytes. Each record in a pack is::

    b"RWB1" | sha256 (32 raw bytes) | compressed length (8 bytes, big-endian) | zstd data

A ``BlobRef`` says where the data of one record sits. A record is flushed before the
journal line that references it is written, so a reference never points past the end
of its pack; a record torn by ``kill -9`` is simply never referenced. Reads check the
header and the sha256 of the decompressed bytes.

``BlobStore`` is the small interface the rest of the store needs; ``PackStore`` is the
local implementation, and an object-storage backend would be another.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import zstandard

from rewind.errors import BlobCorrupt, BlobMissing

MAGIC = b"RWB1"
HEADER = struct.Struct(">4s32sQ")  # magic, raw sha256, compressed length
ZSTD_LEVEL = 3


@dataclass(frozen=True)
class BlobRef:
    """Where one blob's compressed bytes are: pack name, data offset and length."""

    sha: str
    pack: str
    data_offset: int
    data_length: int
    raw_size: int


class BlobStore(Protocol):
    """Somewhere blobs can be put and got back by reference."""

    def put(self, sha: str, data: bytes) -> BlobRef: ...

    def get(self, ref: BlobRef) -> bytes: ...


def sha256_hex(data: bytes) -> str:
    """The address of ``data``."""
    return hashlib.sha256(data).hexdigest()


class PackStore:
    """Blobs in ``<packs_dir>/<pack>.pack``: appends go to ``pack``, reads to any pack."""

    def __init__(self, packs_dir: Path, pack: str) -> None:
        self.packs_dir = packs_dir
        self.pack = pack
        self._fd: int | None = None
        self._end = 0
        self._compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL)

    def put(self, sha: str, data: bytes) -> BlobRef:
        """Append one record (a single ``write``) and return its reference."""
        packed = self._compressor.compress(data)
        header = HEADER.pack(MAGIC, bytes.fromhex(sha), len(packed))
        start = self._append(header + packed)
        return BlobRef(sha, self.pack, start + HEADER.size, len(packed), len(data))

    def get(self, ref: BlobRef) -> bytes:
        return read_blob(self.packs_dir, ref)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _append(self, record: bytes) -> int:
        if self._fd is None:
            self._open()
        assert self._fd is not None
        start = self._end
        write_all(self._fd, record)
        self._end += len(record)
        return start

    def _open(self) -> None:
        self.packs_dir.mkdir(parents=True, exist_ok=True)
        path = pack_path(self.packs_dir, self.pack)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._end = os.fstat(self._fd).st_size


def pack_path(packs_dir: Path, pack: str) -> Path:
    """The file holding pack ``pack``."""
    return packs_dir / f"{pack}.pack"


def read_blob(packs_dir: Path, ref: BlobRef) -> bytes:
    """The raw bytes ``ref`` points to; ``BlobMissing`` / ``BlobCorrupt`` otherwise."""
    record = _read_record(pack_path(packs_dir, ref.pack), ref)
    _check_header(record[: HEADER.size], ref)
    data = _decompress(record[HEADER.size :], ref)
    if len(data) != ref.raw_size or sha256_hex(data) != ref.sha:
        raise BlobCorrupt(f"blob {ref.sha} in pack {ref.pack} fails its sha256 check")
    return data


def scan_pack(path: Path) -> Iterator[BlobRef]:
    """Every complete record of a pack, in order (stops at a torn or foreign tail)."""
    raw, offset = path.read_bytes(), 0
    while offset + HEADER.size <= len(raw):
        magic, digest, length = HEADER.unpack_from(raw, offset)
        start = offset + HEADER.size
        if magic != MAGIC or start + length > len(raw):
            return
        size = zstandard.frame_content_size(raw[start : start + length])
        yield BlobRef(digest.hex(), path.stem, start, length, size)
        offset = start + length


def _read_record(path: Path, ref: BlobRef) -> bytes:
    want = HEADER.size + ref.data_length
    try:
        with path.open("rb") as f:
            f.seek(ref.data_offset - HEADER.size)
            record = f.read(want)
    except FileNotFoundError:
        raise BlobMissing(f"blob {ref.sha}: pack file {path} is missing") from None
    if len(record) != want:
        raise BlobMissing(f"blob {ref.sha}: pack {ref.pack} ends before the blob does")
    return record


def _check_header(header: bytes, ref: BlobRef) -> None:
    magic, digest, length = HEADER.unpack(header)
    if magic != MAGIC or digest.hex() != ref.sha or length != ref.data_length:
        raise BlobCorrupt(f"blob {ref.sha}: pack {ref.pack} has no matching record there")


def _decompress(packed: bytes, ref: BlobRef) -> bytes:
    try:
        data: bytes = zstandard.ZstdDecompressor().decompress(
            packed, max_output_size=ref.raw_size
        )
    except zstandard.ZstdError as e:
        raise BlobCorrupt(f"blob {ref.sha} in pack {ref.pack} does not decompress: {e}") from None
    return data


def write_all(fd: int, data: bytes) -> None:
    """``os.write`` until all of ``data`` is written (one call for any regular file)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
