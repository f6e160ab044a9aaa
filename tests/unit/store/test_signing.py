"""Ed25519 keys and cassette signatures: the right key passes, anything else fails loudly."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from rewind.errors import CassetteError
from rewind.store.signing import check, keygen, sign

MANIFEST = b'{"format":1,"sessions":[]}'


def test_keygen_writes_a_private_key_for_its_owner_only_and_never_overwrites(tmp_path: Path) -> None:
    public, key_id = keygen(tmp_path / "k")
    assert public == tmp_path / "k.pub" and len(key_id) == 16
    assert stat.S_IMODE((tmp_path / "k").stat().st_mode) == 0o600
    assert b"PRIVATE KEY" in (tmp_path / "k").read_bytes() and b"PUBLIC KEY" in public.read_bytes()
    with pytest.raises(CassetteError, match="exists already"):
        keygen(tmp_path / "k")


def test_a_signature_checks_with_its_key_and_only_its_key(tmp_path: Path) -> None:
    _, mine = keygen(tmp_path / "mine")
    keygen(tmp_path / "theirs")
    block, signer = sign(MANIFEST, tmp_path / "mine")
    signature = json.loads(block)
    assert signer == mine
    assert check(MANIFEST, signature) == mine
    assert check(MANIFEST, signature, tmp_path / "mine.pub") == mine
    with pytest.raises(CassetteError, match="not by the trusted key"):
        check(MANIFEST, signature, tmp_path / "theirs.pub")
    with pytest.raises(CassetteError, match="altered after signing"):
        check(MANIFEST.replace(b"[]", b"[1]"), signature)


def test_unsigned_is_fine_unless_a_key_is_required(tmp_path: Path) -> None:
    keygen(tmp_path / "k")
    assert check(MANIFEST, None) is None
    with pytest.raises(CassetteError, match="not signed"):
        check(MANIFEST, None, tmp_path / "k.pub")


@pytest.mark.parametrize("signature", [
    {"alg": "rsa"}, {"alg": "ed25519", "public_key": "!!", "signature": ""},
    {"alg": "ed25519", "public_key": "AAAA", "signature": "AAAA"},
])
def test_a_damaged_signature_is_our_error(signature: dict[str, str]) -> None:
    with pytest.raises(CassetteError):
        check(MANIFEST, signature)


def test_a_file_that_is_not_a_key_is_our_error(tmp_path: Path) -> None:
    (tmp_path / "junk").write_bytes(b"not a key")
    with pytest.raises(CassetteError, match="not a key"):
        sign(MANIFEST, tmp_path / "junk")
    with pytest.raises(CassetteError, match="cannot read"):
        sign(MANIFEST, tmp_path / "missing")
