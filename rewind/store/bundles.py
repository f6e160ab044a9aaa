"""Bodies in a team store's object storage: bundles, each one zstd stream of raw blobs.

A push uploads the bodies the remote lacks, session by session, as bundles: each the
concatenation of its blobs compressed as one zstd stream (so a body that repeats the
previous one, as an agent's growing conversation does, costs only what it adds). A
session's small bodies (under ``LARGE_BODY``) go in bundles of up to ``SMALL_BUNDLE`` raw
bytes, its large ones in bundles of their own kind of up to ``BUNDLE_RAW_BYTES``: a pull
downloads whole bundles, so a small body another session shares (an empty output, a
system prompt) never drags a large bundle along. A bundle's object name is the sha256 of its compressed bytes:
``<data>/bundles/<sha256>.rwb``. The catalog's ``blob_rows`` say where each blob is:
``(sha, raw_size, bundle, data_offset, data_length)``, offsets into the raw stream.

Reading downloads a whole bundle once, decompresses it and checks every blob taken from
it against its sha256; anything else (a missing object, bytes that do not decompress, a
slice out of range, a hash mismatch) is a ``RemoteError`` naming the blob.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import duckdb
import zstandard

from rewind.errors import RemoteError
from rewind.store.blobs import ZSTD_LEVEL, sha256_hex

__all__ = ["BUNDLE_RAW_BYTES", "BlobPlace", "Bundle", "BundleReader", "make_bundles", "upload"]

BUNDLE_RAW_BYTES = 32 * 1024 * 1024
SMALL_BUNDLE = 4 * 1024 * 1024
LARGE_BODY = 256 * 1024
WINDOW_LOG = 25  # 32 MiB: a whole bundle is one window, so repeats anywhere in it are found
MAX_WINDOW = 1 << 27


@dataclass(frozen=True)
class BlobPlace:
    """Where one blob is: a row of the catalog's ``blob_rows``."""

    sha: str
    raw_size: int
    bundle: str
    data_offset: int
    data_length: int


@dataclass(frozen=True)
class Bundle:
    """An object to upload: its name (``bundles/<sha256>.rwb``), bytes and blobs."""

    name: str
    data: bytes
    places: tuple[BlobPlace, ...]
    raw_bytes: int


def make_bundles(blobs: Iterable[tuple[str, bytes]]) -> Iterator[Bundle]:
    """One session's blobs packed into bundles: the small ones, in order, up to
    ``SMALL_BUNDLE`` raw bytes each, then the large ones up to ``BUNDLE_RAW_BYTES`` (a blob
    larger than that gets a bundle of its own)."""
    blobs = list(blobs)
    yield from _packed([b for b in blobs if len(b[1]) < LARGE_BODY], SMALL_BUNDLE)
    yield from _packed([b for b in blobs if len(b[1]) >= LARGE_BODY], BUNDLE_RAW_BYTES)


def _packed(blobs: list[tuple[str, bytes]], limit: int) -> Iterator[Bundle]:
    batch: list[tuple[str, bytes]] = []
    size = 0
    for sha, data in blobs:
        if batch and size + len(data) > limit:
            yield _bundle(batch)
            batch, size = [], 0
        batch.append((sha, data))
        size += len(data)
    if batch:
        yield _bundle(batch)


def _bundle(batch: list[tuple[str, bytes]]) -> Bundle:
    params = zstandard.ZstdCompressionParameters.from_level(ZSTD_LEVEL, window_log=WINDOW_LOG)
    compressor = zstandard.ZstdCompressor(compression_params=params).compressobj()
    parts, spans, offset = [], [], 0
    for sha, data in batch:
        parts.append(compressor.compress(data))
        spans.append((sha, len(data), offset))
        offset += len(data)
    parts.append(compressor.flush())
    compressed = b"".join(parts)
    name = f"bundles/{hashlib.sha256(compressed).hexdigest()}.rwb"  # not .zst: COPY would compress it again
    places = tuple(BlobPlace(sha, size, name, start, size) for sha, size, start in spans)
    return Bundle(name, compressed, places, offset)


def upload(conn: duckdb.DuckDBPyConnection, data_url: str, bundle: Bundle) -> None:
    """Write one bundle object (httpfs: a multipart upload for a large one)."""
    url = f"{data_url}/{bundle.name}"
    conn.execute(f"COPY (SELECT ?::BLOB AS content) TO '{_quoted(url)}' (FORMAT blob)", [bundle.data])


def _quoted(url: str) -> str:
    return url.replace("'", "''")


class BundleReader:
    """Blobs read from their bundles, each bundle downloaded once and every blob verified.

    A bundle is decompressed only as far as the blobs asked for reach, so a damaged or
    hostile object cannot inflate beyond what the catalog says is in it."""

    def __init__(self, conn: duckdb.DuckDBPyConnection, data_url: str,
                 progress: Callable[[int], None] | None = None) -> None:  # fmt: skip
        self.conn, self.data_url, self.progress = conn, data_url, progress
        self._open: dict[str, _Inflating] = {}

    def get(self, place: BlobPlace, label: str) -> bytes:
        """The verified bytes of the blob at ``place``; ``RemoteError`` naming ``label``."""
        end = place.data_offset + place.data_length
        try:
            raw = self._bundle(place.bundle, label).upto(end)
        except zstandard.ZstdError:
            raise RemoteError(f"{label}: the remote object {place.bundle} is not a valid bundle",
                              hint="the remote copy is damaged; push it again") from None
        data = bytes(raw[place.data_offset:end])
        if end > len(raw) or len(data) != place.raw_size or sha256_hex(data) != place.sha:
            raise RemoteError(f"{label}: body {place.sha} on the remote fails its sha256 check",
                              hint="the remote copy is damaged; push it again from a machine that has it")
        return data

    def _bundle(self, name: str, label: str) -> _Inflating:
        if name not in self._open:
            self._open[name] = _Inflating(self._download(name, label))
        return self._open[name]

    def _download(self, name: str, label: str) -> bytes:
        url = f"{self.data_url}/{name}"
        try:
            row = self.conn.execute(f"SELECT content FROM read_blob('{_quoted(url)}')").fetchone()
        except duckdb.HTTPException as exc:
            if "HTTP 404" not in str(exc):
                raise
            row = None
        if row is None:
            raise RemoteError(f"{label}: the remote object {name} is missing",
                              hint="push the session again from a machine that has it")
        data = bytes(row[0])
        if self.progress is not None:
            self.progress(len(data))
        return data


class _Inflating:
    """A downloaded bundle, decompressed on demand."""

    def __init__(self, compressed: bytes) -> None:
        decompressor = zstandard.ZstdDecompressor(max_window_size=MAX_WINDOW)
        self._reader = decompressor.stream_reader(compressed, read_across_frames=True)
        self._raw = bytearray()
        self._done = False

    def upto(self, end: int) -> bytearray:
        """The raw stream up to ``end`` (less if the stream is shorter)."""
        while len(self._raw) < end and not self._done:
            chunk = self._reader.read(min(end - len(self._raw), 1 << 24))
            self._done = not chunk
            self._raw += chunk
        return self._raw
