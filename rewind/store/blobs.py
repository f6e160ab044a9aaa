"""Content-addressed objects: zstd-compressed, delta-coded, appended to pack files.

A blob's address is the sha256 of its raw bytes. Objects are shared by every session
that refers to them (a body recorded twice is stored once) and are kept while any
session refers to them (``rewind gc`` removes the rest). Each record in a pack is::

    b"RWO1" | sha256 (32) | base sha256 (32, zeros: none) | raw size (8) | data length (8) | data

``data`` is one zstd frame. With a base, it is compressed with the base's raw bytes as
a prefix dictionary (zstd "patch-from"): an agent resends the whole conversation on
every call, so a request costs only what it adds to the previous one. A base is always
an earlier object; chains are at most ``MAX_DEPTH`` long.

Reads check the header, decompress (bases first) and check the sha256: a mismatch is
``BlobCorrupt``; an absent pack, a short one or a missing base is ``BlobMissing``.
Records of the first format (``RWB1``, no base, in ``packs/``) are still read.
"""

from __future__ import annotations

import functools
import hashlib
import os
import struct
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import zstandard

from rewind.errors import BlobCorrupt, BlobMissing

MAGIC = b"RWO1"
HEADER = struct.Struct(">4s32s32sQQ")  # magic, sha, base sha, raw size, data length
LEGACY_MAGIC = b"RWB1"
LEGACY_HEADER = struct.Struct(">4s32sQ")  # magic, sha, data length (raw size in the frame)
NO_BASE = bytes(32)
ZSTD_LEVEL = 3
MAX_DEPTH = 64  # longest delta chain; a read decodes at most this many objects
MAX_DELTA_BASE = 32 * 1024 * 1024  # bigger bodies are compressed on their own
# Smaller ones too: a dictionary costs a compressor of its own, about five times the time
# of compressing a few hundred bytes plainly, to save a few dozen bytes.
MIN_DELTA_SIZE = 512
MAX_WINDOW = 1 << 31


@dataclass(frozen=True)
class BlobRef:
    """Where one object's compressed bytes are: pack (path under the home), offset, length."""

    sha: str
    pack: str
    data_offset: int
    data_length: int
    raw_size: int
    base: str | None = None


class BlobStore(Protocol):
    """Somewhere objects can be appended (``PackWriter`` locally; an object-storage
    backend would be another). Reading is ``BlobReader``'s, given references."""

    def put(self, sha: str, data: bytes, base: tuple[str, bytes] | None = None) -> BlobRef: ...

    def close(self) -> None: ...


def sha256_hex(data: bytes | memoryview) -> str:
    """The address of ``data``."""
    return hashlib.sha256(data).hexdigest()


def compress(data: bytes, base: bytes | None) -> bytes:
    """One zstd frame of ``data``, with ``base`` as its prefix dictionary if given."""
    if base is None:
        return _plain_compressor().compress(data)
    params = _params(_size_class(len(data)), _window_log(len(base) + len(data)))
    return zstandard.ZstdCompressor(compression_params=params, dict_data=_raw_dict(base)).compress(data)


_local = threading.local()


def _plain_compressor() -> zstandard.ZstdCompressor:
    """This thread's compressor without a dictionary: making one costs about ten times
    what compressing a small body does (a compressor is not shared between threads)."""
    compressor: zstandard.ZstdCompressor | None = getattr(_local, "compressor", None)
    if compressor is None:
        compressor = _local.compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
    return compressor


def _size_class(size: int) -> int:
    """``size`` rounded up to a power of two: parameters tuned for it, and reusable."""
    return 1 << max(10, (size - 1).bit_length())


@functools.lru_cache(maxsize=64)
def _params(source_size: int, window_log: int) -> zstandard.ZstdCompressionParameters:
    return zstandard.ZstdCompressionParameters.from_level(
        ZSTD_LEVEL, source_size=source_size, window_log=window_log
    )


def _window_log(size: int) -> int:
    return max(17, min(31, (size - 1).bit_length()))


def _raw_dict(base: bytes) -> zstandard.ZstdCompressionDict:
    return zstandard.ZstdCompressionDict(base, dict_type=zstandard.DICT_TYPE_RAWCONTENT)


def decompress(packed: bytes, raw_size: int, base: bytes | None) -> bytes:
    """The raw bytes of one frame; ``zstandard.ZstdError`` if it is not one."""
    dictionary = None if base is None else _raw_dict(base)
    dctx = zstandard.ZstdDecompressor(dict_data=dictionary, max_window_size=MAX_WINDOW)
    out: bytes = dctx.decompress(packed, max_output_size=max(raw_size, 1))
    return out


class PackWriter:
    """Appends objects to one pack file (``objects/<name>.pack``); one writer per pack."""

    def __init__(self, home_root: Path, pack: str) -> None:
        self.root = home_root
        self.pack = pack  # path relative to the home
        self._fd: int | None = None
        self._end = 0

    def put(self, sha: str, data: bytes, base: tuple[str, bytes] | None = None) -> BlobRef:
        """Append one record (a single ``write``) and return its reference."""
        packed = compress(data, None if base is None else base[1])
        base_sha = None if base is None else base[0]
        header = HEADER.pack(MAGIC, bytes.fromhex(sha), _base_bytes(base_sha), len(data), len(packed))
        start = self._append(header, packed)
        return BlobRef(sha, self.pack, start + HEADER.size, len(packed), len(data), base_sha)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _append(self, header: bytes, packed: bytes) -> int:
        """One ``writev`` of header and data (no joined copy of a big body)."""
        if self._fd is None:
            self._open()
        assert self._fd is not None
        start = self._end
        write_parts(self._fd, [header, packed])
        self._end += len(header) + len(packed)
        return start

    def _open(self) -> None:
        path = self.root / self.pack
        path.parent.mkdir(mode=0o700, exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._end = os.fstat(self._fd).st_size


def _base_bytes(base: str | None) -> bytes:
    return NO_BASE if base is None else bytes.fromhex(base)


# -- reading ----------------------------------------------------------------------------

Lookup = Callable[[str], "BlobRef | None"]


class BlobReader:
    """Reads objects by reference, decoding delta chains; remembers what it decoded."""

    def __init__(self, home_root: Path, lookup: Lookup) -> None:
        self.root = home_root
        self.lookup = lookup
        self._cache: dict[str, bytes] = {}

    def get(self, ref: BlobRef, depth: int = 0) -> bytes:
        """The verified raw bytes of ``ref`` (its bases decoded first)."""
        if ref.sha in self._cache:
            return self._cache[ref.sha]
        base = None if ref.base is None else self._base(ref, depth)
        data = decode_record(self.root, ref, base)
        self._cache[ref.sha] = data
        return data

    def _base(self, ref: BlobRef, depth: int) -> bytes:
        assert ref.base is not None
        base_ref = self.lookup(ref.base)
        if base_ref is None or depth >= MAX_DEPTH:
            raise BlobMissing(f"blob {ref.sha}: its base {ref.base} is not in the store")
        try:
            return self.get(base_ref, depth + 1)
        except (BlobMissing, BlobCorrupt) as e:
            raise type(e)(f"blob {ref.sha} is delta-coded against a damaged base: {e}") from None


def chain_depth(sha: str, lookup: Lookup) -> int:
    """How many bases decoding object ``sha`` goes through (at most ``MAX_DEPTH``)."""
    depth, ref = 0, lookup(sha)
    while ref is not None and ref.base is not None and depth < MAX_DEPTH:
        depth, ref = depth + 1, lookup(ref.base)
    return depth


def reader_for(home_root: Path, refs: Mapping[str, BlobRef]) -> BlobReader:
    """A reader resolving bases in ``refs``."""
    return BlobReader(home_root, refs.get)


def decode_record(home_root: Path, ref: BlobRef, base: bytes | None) -> bytes:
    """Read, decompress and verify one record."""
    path = home_root / ref.pack
    record = _read_span(path, ref)
    packed = _check_header(record, ref)
    try:
        data = decompress(packed, ref.raw_size, base)
    except zstandard.ZstdError as e:
        raise BlobCorrupt(f"blob {ref.sha} in {ref.pack} does not decompress: {e}") from None
    if len(data) != ref.raw_size or sha256_hex(data) != ref.sha:
        raise BlobCorrupt(f"blob {ref.sha} in {ref.pack} fails its sha256 check")
    return data


def _header_size(ref: BlobRef) -> int:
    return LEGACY_HEADER.size if ref.pack.startswith("packs/") else HEADER.size


def _read_span(path: Path, ref: BlobRef) -> bytes:
    size = _header_size(ref)
    want = size + ref.data_length
    try:
        with path.open("rb") as f:
            f.seek(max(ref.data_offset - size, 0))
            record = f.read(want)
    except FileNotFoundError:
        raise BlobMissing(f"blob {ref.sha}: pack file {path} is missing") from None
    except OSError as e:
        raise BlobMissing(f"blob {ref.sha}: pack file {path} cannot be read: {e.strerror}") from None
    if len(record) != want or ref.data_offset < size:
        raise BlobMissing(f"blob {ref.sha}: pack {ref.pack} ends before the blob does")
    return record


def _check_header(record: bytes, ref: BlobRef) -> bytes:
    if ref.pack.startswith("packs/"):
        magic, digest, length = LEGACY_HEADER.unpack_from(record)
        ok = magic == LEGACY_MAGIC and digest.hex() == ref.sha and length == ref.data_length
        return _or_corrupt(ok, record[LEGACY_HEADER.size :], ref)
    magic, digest, base, raw, length = HEADER.unpack_from(record)
    ok = (magic, digest.hex(), length, raw) == (MAGIC, ref.sha, ref.data_length, ref.raw_size)
    ok = ok and base == _base_bytes(ref.base)
    return _or_corrupt(ok, record[HEADER.size :], ref)


def _or_corrupt(ok: bool, packed: bytes, ref: BlobRef) -> bytes:
    if not ok:
        raise BlobCorrupt(f"blob {ref.sha}: pack {ref.pack} has no matching record there")
    return packed


# -- scanning ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PackScan:
    """What one pack holds: its whole records, and the bytes after them that are not one."""

    refs: list[BlobRef]
    size: int
    torn_bytes: int


def scan_pack(home_root: Path, pack: str) -> PackScan:
    """Every complete record of a pack, in order, read header by header (stops at a torn
    or foreign tail, whose length is reported)."""
    path = home_root / pack
    size = path.stat().st_size
    refs: list[BlobRef] = []
    with path.open("rb") as f:
        offset = 0
        while (ref := _next_record(f, pack, offset, size)) is not None:
            refs.append(ref)
            offset = ref.data_offset + ref.data_length
    return PackScan(refs, size, size - offset)


def _next_record(f: object, pack: str, offset: int, size: int) -> BlobRef | None:
    legacy = pack.startswith("packs/")
    header = LEGACY_HEADER if legacy else HEADER
    f.seek(offset)  # type: ignore[attr-defined]
    head: bytes = f.read(header.size)  # type: ignore[attr-defined]
    if len(head) < header.size:
        return None
    ref = _legacy_ref(f, head, pack, offset) if legacy else _ref(head, pack, offset)
    if ref is None or ref.data_offset + ref.data_length > size:
        return None
    return ref


def _ref(head: bytes, pack: str, offset: int) -> BlobRef | None:
    magic, digest, base, raw, length = HEADER.unpack(head)
    if magic != MAGIC:
        return None
    base_sha = None if base == NO_BASE else base.hex()
    return BlobRef(digest.hex(), pack, offset + HEADER.size, length, raw, base_sha)


def _legacy_ref(f: object, head: bytes, pack: str, offset: int) -> BlobRef | None:
    magic, digest, length = LEGACY_HEADER.unpack(head)
    if magic != LEGACY_MAGIC:
        return None
    frame: bytes = f.read(min(length, 32))  # type: ignore[attr-defined]
    try:
        raw = zstandard.frame_content_size(frame)
    except zstandard.ZstdError:
        return None
    return BlobRef(digest.hex(), pack, offset + LEGACY_HEADER.size, length, max(raw, 0))


def list_packs(home_root: Path) -> list[str]:
    """Every pack under the home, as paths relative to it (legacy ``packs/`` too)."""
    found = [*sorted((home_root / "objects").glob("*.pack")), *sorted((home_root / "packs").glob("*.pack"))]
    return [str(p.relative_to(home_root)) for p in found]


def iter_objects(home_root: Path) -> Iterator[BlobRef]:
    """Every whole record of every pack."""
    for pack in list_packs(home_root):
        yield from scan_pack(home_root, pack).refs


def write_parts(fd: int, parts: list[bytes]) -> None:
    """``os.writev`` until every part is written (one call for any regular file)."""
    views = [memoryview(p) for p in parts if p]
    while views:
        done = os.writev(fd, views)
        while views and done >= len(views[0]):
            done -= len(views[0])
            views.pop(0)
        if views and done:
            views[0] = views[0][done:]


def write_all(fd: int, data: bytes | memoryview) -> None:
    """``os.write`` until all of ``data`` is written (one call for any regular file)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
