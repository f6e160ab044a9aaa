"""The cassette file (``.rw``): sessions and their bodies in one portable, verifiable file.

Format version 1 (docs/cassette-format.md)::

    b"REWIND-CASSETTE\\n"            magic
    b"1\\n"                          the format version, ASCII
    one zstd frame of the payload:
        u64 big-endian  manifest length, then the manifest (RFC 8785 canonical JSON)
        u64 big-endian  signature length, then the signature (JSON) or nothing
        every blob of the manifest's ``blobs``, in that order, raw, back to back

The manifest names the format, the Rewind version, each session (its start and end,
fingerprint version, command, upstreams and routes, and its steps as journal rows) and
every blob with its sha256 and size. The signature, if any, is Ed25519 over the manifest
bytes (``store.signing``); since the manifest holds every blob's hash, it covers them.

Reading never trusts the file: sizes are bounded, every blob is hashed against the
manifest, nothing may follow the last blob, and every failure is a ``CassetteError``
naming what is wrong. ``read`` streams: blobs go one at a time to a callback, so a big
cassette is verified without holding it in memory.
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any, cast

import zstandard

from rewind.canon.canonjson import canonical_json
from rewind.errors import CassetteError

MAGIC = b"REWIND-CASSETTE\n"
FORMAT_VERSION = 1
MAX_MANIFEST = 256 * 1024 * 1024
MAX_SIGNATURE = 64 * 1024
MAX_BLOB = 1 << 40
_LENGTH = struct.Struct(">Q")
_SHA = frozenset("0123456789abcdef")
_CHUNK = 1 << 20
# The decoder's window (memory it must hold) is 8 MiB at most: written so, and a frame
# that asks for more is refused rather than allocated.
WINDOW_LOG = 23


@dataclass(frozen=True)
class BlobEntry:
    sha256: str
    size: int


@dataclass
class Manifest:
    """What a cassette holds; ``sessions`` are plain JSON objects (``store.transfer``)."""

    rewind_version: str
    created_at: float
    sessions: list[dict[str, Any]]
    blobs: list[BlobEntry] = field(default_factory=list)

    def to_bytes(self) -> bytes:
        return canonical_json({
            "format": FORMAT_VERSION,
            "rewind_version": self.rewind_version,
            "created_at": self.created_at,
            "sessions": self.sessions,
            "blobs": [{"sha256": b.sha256, "size": b.size} for b in self.blobs],
        })


@dataclass(frozen=True)
class Opened:
    """A cassette read and verified: its manifest, its bytes, and its signature."""

    manifest: Manifest
    manifest_bytes: bytes
    signature: dict[str, Any] | None


# --- writing --------------------------------------------------------------------------


def write(
    out: IO[bytes], manifest: Manifest, blobs: Callable[[str], bytes], signature: bytes = b"",
    progress: Callable[[int], None] | None = None,
) -> None:
    """Write a cassette to ``out``; ``blobs(sha)`` gives each blob's bytes."""
    manifest_bytes = manifest.to_bytes()
    out.write(MAGIC + b"%d\n" % FORMAT_VERSION)
    length_at = out.tell()
    out.write(_LENGTH.pack(0))  # the compressed length, filled in below
    size = 2 * _LENGTH.size + len(manifest_bytes) + len(signature) + sum(b.size for b in manifest.blobs)
    params = zstandard.ZstdCompressionParameters.from_level(
        10, window_log=WINDOW_LOG, write_checksum=True, write_content_size=True
    )
    compressor = zstandard.ZstdCompressor(compression_params=params)
    try:
        with compressor.stream_writer(out, size=size, closefd=False) as z:
            _write_payload(z, manifest, manifest_bytes, signature, blobs, progress)
    except zstandard.ZstdError as exc:  # closing a frame cut short by our own error
        if isinstance(exc.__context__, CassetteError):
            raise exc.__context__ from None
        raise
    end = out.tell()
    out.seek(length_at)
    out.write(_LENGTH.pack(end - length_at - _LENGTH.size))
    out.seek(end)


def _write_payload(
    z: Any, manifest: Manifest, manifest_bytes: bytes, signature: bytes,
    blobs: Callable[[str], bytes], progress: Callable[[int], None] | None,
) -> None:
    z.write(_LENGTH.pack(len(manifest_bytes)) + manifest_bytes)
    z.write(_LENGTH.pack(len(signature)) + signature)
    for entry in manifest.blobs:
        data = blobs(entry.sha256)
        if hashlib.sha256(data).hexdigest() != entry.sha256 or len(data) != entry.size:
            raise CassetteError(f"blob {entry.sha256[:12]} changed while being exported")
        z.write(data)
        if progress is not None:
            progress(len(data))


# --- reading --------------------------------------------------------------------------


def read(source: IO[bytes], on_blob: Callable[[str, bytes], None] | None = None) -> Opened:
    """Read and verify a whole cassette (every hash, no trailing bytes); ``on_blob`` gets
    each verified blob. Any problem is a ``CassetteError``."""
    _check_header(source)
    try:
        reader = _Inflater(source)
        manifest_bytes = _block(reader, MAX_MANIFEST, "manifest")
        signature_bytes = _block(reader, MAX_SIGNATURE, "signature")
        manifest = parse_manifest(manifest_bytes)
        for entry in manifest.blobs:
            data = _verified_blob(reader, entry, keep=on_blob is not None)
            if on_blob is not None:
                on_blob(entry.sha256, data)
        reader.check_end()
    except zstandard.ZstdError as exc:
        raise CassetteError(f"the cassette's compressed data is damaged ({exc})") from exc
    return Opened(manifest, manifest_bytes, _signature(signature_bytes))


class _Inflater:
    """``read(n)`` of the payload: the compressed section is read through a window of its
    declared length (never past it), and decompressed ``n`` bytes at a time, so output is
    bounded whatever the frame claims. ``check_end`` insists that the frame ended with all
    of the declared bytes used (a truncated frame or checksum reads short) and that nothing
    follows them."""

    def __init__(self, source: IO[bytes]) -> None:
        length = _LENGTH.unpack(_read_exactly(source, _LENGTH.size))[0]
        self.source = source
        self.window = _Window(source, length)
        decompressor = zstandard.ZstdDecompressor(max_window_size=1 << WINDOW_LOG)
        self.reader = decompressor.stream_reader(cast(IO[bytes], self.window))

    def read(self, size: int) -> bytes:
        data: bytes = self.reader.read(size)
        return data

    def check_end(self) -> None:
        if self.reader.read(1):
            raise CassetteError("the cassette has bytes after its last blob: it was altered")
        if self.window.left or self.window.short:
            raise CassetteError("the cassette is truncated (its compressed data ends early)")
        if self.source.read(1):
            raise CassetteError("the cassette has bytes after its compressed data: it was altered")


class _Window(io.RawIOBase):
    """The next ``left`` bytes of ``source``, as a readable stream; notes a short source."""

    def __init__(self, source: IO[bytes], left: int) -> None:
        self.source, self.left, self.short = source, left, False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        wanted = min(len(buffer), self.left)
        data = self.source.read(wanted) if wanted else b""
        if wanted and not data:
            self.short = True
        buffer[: len(data)] = data
        self.left -= len(data)
        return len(data)


def _read_exactly(source: IO[bytes], size: int) -> bytes:
    data = source.read(size)
    if len(data) != size:
        raise CassetteError("the cassette is truncated (in its header)")
    return bytes(data)


def _check_header(source: IO[bytes]) -> None:
    if source.read(len(MAGIC)) != MAGIC:
        raise CassetteError("not a Rewind cassette (it does not start as one)")
    digits = b""
    while (char := source.read(1)) != b"\n":
        if not char.isdigit() or len(digits) >= 6:
            raise CassetteError("the cassette's format version line is damaged")
        digits += char
    if not digits:
        raise CassetteError("the cassette's format version line is damaged")
    version = int(digits)
    if version > FORMAT_VERSION:
        raise CassetteError(
            f"the cassette has format version {version}, made by a newer Rewind; this one "
            f"reads up to version {FORMAT_VERSION}: upgrade Rewind to import it"
        )
    if version != FORMAT_VERSION:
        raise CassetteError(f"unknown cassette format version {version}")


def _block(reader: _Inflater, limit: int, what: str) -> bytes:
    size = _LENGTH.unpack(_exactly(reader, _LENGTH.size, what))[0]
    if size > limit:
        raise CassetteError(f"the cassette's {what} claims {size} bytes: damaged")
    return _exactly(reader, size, what)


def _chunks(reader: _Inflater, size: int, what: str) -> Iterator[bytes]:
    """The next ``size`` bytes of the payload, at most a chunk at a time."""
    left = size
    while left:
        part = reader.read(min(left, _CHUNK))
        if not part:
            raise CassetteError(f"the cassette is truncated (in its {what})")
        left -= len(part)
        yield part


def _exactly(reader: _Inflater, size: int, what: str) -> bytes:
    return b"".join(_chunks(reader, size, what))


def _verified_blob(reader: _Inflater, entry: BlobEntry, keep: bool) -> bytes:
    """A blob read and hashed a chunk at a time; its bytes kept only when wanted."""
    digest, parts = hashlib.sha256(), []
    for part in _chunks(reader, entry.size, f"blob {entry.sha256[:12]}"):
        digest.update(part)
        if keep:
            parts.append(part)
    if digest.hexdigest() != entry.sha256:
        raise CassetteError(f"blob {entry.sha256[:12]} does not match its hash: the cassette was altered")
    return b"".join(parts)


def _signature(data: bytes) -> dict[str, Any] | None:
    if not data:
        return None
    value = _json(data, "signature")
    if not isinstance(value, dict):
        raise CassetteError("the cassette's signature is damaged")
    return value


def _json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise CassetteError(f"the cassette's {what} is not valid JSON: damaged") from exc


def parse_manifest(data: bytes) -> Manifest:
    """The manifest, its shape checked (sessions are checked when imported)."""
    raw = _json(data, "manifest")
    if not isinstance(raw, dict) or raw.get("format") != FORMAT_VERSION:
        raise CassetteError("the cassette's manifest is damaged (no format 1 manifest)")
    sessions, blobs = raw.get("sessions"), raw.get("blobs")
    if not isinstance(sessions, list) or not all(isinstance(s, dict) for s in sessions):
        raise CassetteError("the cassette's manifest has no valid session list")
    return Manifest(
        rewind_version=str(raw.get("rewind_version", "")),
        created_at=_number(raw.get("created_at")),
        sessions=sessions,
        blobs=list(_blob_entries(blobs)),
    )


def _number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def _blob_entries(value: Any) -> Iterator[BlobEntry]:
    if not isinstance(value, list):
        raise CassetteError("the cassette's manifest has no valid blob list")
    seen: set[str] = set()
    for item in value:
        sha, size = (item.get("sha256"), item.get("size")) if isinstance(item, dict) else (None, None)
        ok_sha = isinstance(sha, str) and len(sha) == 64 and set(sha) <= _SHA
        if not ok_sha or not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= MAX_BLOB:
            raise CassetteError("the cassette's manifest lists a blob that is not valid")
        if sha in seen:
            raise CassetteError(f"the cassette's manifest lists blob {sha[:12]} twice")
        seen.add(str(sha))
        yield BlobEntry(str(sha), size)


def read_bytes(data: bytes, on_blob: Callable[[str, bytes], None] | None = None) -> Opened:
    """``read`` of a cassette held in memory."""
    return read(io.BytesIO(data), on_blob)


def blob_entries(blobs: Iterable[tuple[str, int]]) -> list[BlobEntry]:
    return [BlobEntry(sha, size) for sha, size in blobs]
