"""The cassette file: a faithful round trip, and nothing but our own error for bad input."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rewind.errors import CassetteError
from rewind.store.cassette import FORMAT_VERSION, MAGIC, Manifest, blob_entries, read_bytes, write

BLOBS = {hashlib.sha256(b).hexdigest(): b for b in (b"request body", b"\x00\xff response", b"")}


def cassette(signature: bytes = b"") -> bytes:
    manifest = Manifest("0.1.0", 1.5, [{"id": "abcdef012345", "steps": []}],
                        blob_entries((sha, len(data)) for sha, data in BLOBS.items()))
    out = io.BytesIO()
    write(out, manifest, BLOBS.__getitem__, signature)
    return out.getvalue()


VALID = cassette()


def test_a_cassette_gives_back_its_manifest_signature_and_every_blob() -> None:
    seen: dict[str, bytes] = {}
    opened = read_bytes(cassette(b'{"alg": "ed25519"}'), seen.__setitem__)
    assert seen == BLOBS and opened.manifest.sessions == [{"id": "abcdef012345", "steps": []}]
    assert opened.signature == {"alg": "ed25519"} and opened.manifest.rewind_version == "0.1.0"
    assert VALID.startswith(MAGIC + b"1\n")


def test_every_truncation_is_an_error() -> None:
    for size in range(len(VALID)):
        with pytest.raises(CassetteError):
            read_bytes(VALID[:size])


def test_trailing_bytes_are_an_error() -> None:
    with pytest.raises(CassetteError, match="after its"):
        read_bytes(VALID + b"x")


def test_a_newer_format_is_refused_saying_so() -> None:
    newer = MAGIC + b"%d\n" % (FORMAT_VERSION + 1) + VALID[len(MAGIC) + 2:]
    with pytest.raises(CassetteError, match="newer Rewind.*upgrade"):
        read_bytes(newer)


def test_a_blob_that_does_not_match_its_hash_is_an_error() -> None:
    manifest = Manifest("0.1.0", 1.0, [], blob_entries([("0" * 64, 3)]))
    out = io.BytesIO()
    with pytest.raises(CassetteError, match="changed while being exported"):
        write(out, manifest, lambda _sha: b"abc")


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_random_bytes_only_ever_raise_our_error(data: bytes) -> None:
    for candidate in (data, MAGIC + data, MAGIC + b"1\n" + data):
        with pytest.raises(CassetteError):
            read_bytes(candidate)


@settings(max_examples=300)
@given(st.integers(0, len(VALID) - 1), st.integers(1, 255))
def test_any_flipped_byte_of_a_valid_cassette_is_detected_or_harmless(position: int, flip: int) -> None:
    """Our error, or (a bit of the frame header that only sizes the decoder's window) the
    very same content: never other content read as valid."""
    altered = bytearray(VALID)
    altered[position] ^= flip
    seen: dict[str, bytes] = {}
    try:
        opened = read_bytes(bytes(altered), seen.__setitem__)
    except CassetteError:
        return
    assert seen == BLOBS and opened.manifest_bytes == read_bytes(VALID).manifest_bytes


def test_a_small_file_holding_a_huge_blob_is_verified_with_bounded_memory(tmp_path: Path) -> None:
    huge = 256 * 1024 * 1024  # zeros: a few hundred KiB compressed
    sha = hashlib.sha256()
    for _ in range(256):
        sha.update(bytes(1024 * 1024))
    manifest = Manifest("0.1.0", 1.0, [], blob_entries([(sha.hexdigest(), huge)]))
    path = tmp_path / "zeros.rw"
    with path.open("wb") as f:
        write(f, manifest, lambda _sha: bytes(huge))  # the writer's memory is not under test
    assert path.stat().st_size < 2 * 1024 * 1024
    probe = (  # VmHWM: this process's own peak (ru_maxrss would carry the parent's over exec)
        "import re, sys; from rewind.store.cassette import read; read(open(sys.argv[1], 'rb')); "
        "print(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1))"
    )
    done = subprocess.run([sys.executable, "-c", probe, str(path)], capture_output=True, text=True)
    assert int(done.stdout) / 1024 < 128  # MiB: verified a chunk at a time, never held whole
