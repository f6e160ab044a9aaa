"""Ed25519 keys and cassette signatures (``cryptography``).

``rewind keygen -o NAME`` writes ``NAME`` (the private key, PKCS#8 PEM, readable by its
owner only) and ``NAME.pub`` (the public key, PEM). A signature is JSON::

    {"alg": "ed25519", "public_key": "<base64 of the 32 raw bytes>", "signature": "<base64>"}

over the cassette's manifest bytes. A key is named by its id: the first 16 hex digits of
the sha256 of its raw public bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from rewind.errors import CassetteError

ALGORITHM = "ed25519"
_RAW = serialization.Encoding.Raw, serialization.PublicFormat.Raw


def keygen(path: Path) -> tuple[Path, str]:
    """Write a new key pair at ``path`` and ``path.pub``; (public key path, key id)."""
    public = path.with_name(path.name + ".pub")
    for target in (path, public):
        if target.exists():
            raise CassetteError(f"{target} exists already: choose another name (keys are never overwritten)")
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(private_pem)
        public.write_bytes(public_pem)
    except OSError as exc:
        raise CassetteError(f"cannot write the key pair: {exc}") from exc
    return public, key_id(key.public_key())


def key_id(public: Ed25519PublicKey) -> str:
    return hashlib.sha256(public.public_bytes(*_RAW)).hexdigest()[:16]


def sign(manifest: bytes, private_key: Path) -> tuple[bytes, str]:
    """The signature block for ``manifest`` by the key in ``private_key``, and that key's id."""
    key = _private(private_key)
    raw = key.public_key().public_bytes(*_RAW)
    block = json.dumps({
        "alg": ALGORITHM,
        "public_key": base64.b64encode(raw).decode("ascii"),
        "signature": base64.b64encode(key.sign(manifest)).decode("ascii"),
    }).encode("ascii")
    return block, key_id(key.public_key())


def check(manifest: bytes, signature: dict[str, Any] | None, trusted: Path | None = None) -> str | None:
    """The signing key's id when the signature is valid (by ``trusted``, if given); ``None``
    for an unsigned cassette when no key is required. ``CassetteError`` otherwise."""
    if signature is None:
        if trusted is not None:
            raise CassetteError("the cassette is not signed, but a signature by a trusted key is required")
        return None
    public = _embedded(signature)
    try:
        public.verify(_b64(signature.get("signature")), manifest)
    except InvalidSignature as exc:
        raise CassetteError("the cassette's signature is not valid: it was altered after signing") from exc
    if trusted is not None and public.public_bytes(*_RAW) != _public(trusted).public_bytes(*_RAW):
        raise CassetteError(
            f"the cassette is signed by key {key_id(public)}, not by the trusted key in {trusted}"
        )
    return key_id(public)


def _embedded(signature: dict[str, Any]) -> Ed25519PublicKey:
    if signature.get("alg") != ALGORITHM:
        raise CassetteError(f"the cassette's signature uses an unknown algorithm {signature.get('alg')!r}")
    try:
        return Ed25519PublicKey.from_public_bytes(_b64(signature.get("public_key")))
    except ValueError as exc:
        raise CassetteError("the cassette's signature names a damaged public key") from exc


def _b64(value: Any) -> bytes:
    try:
        return base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CassetteError("the cassette's signature is damaged") from exc


def _private(path: Path) -> Ed25519PrivateKey:
    key = _load(path, lambda data: serialization.load_pem_private_key(data, password=None))
    if not isinstance(key, Ed25519PrivateKey):
        raise CassetteError(f"{path} is not an Ed25519 private key (make one with `rewind keygen`)")
    return key


def _public(path: Path) -> Ed25519PublicKey:
    key = _load(path, serialization.load_pem_public_key)
    if not isinstance(key, Ed25519PublicKey):
        raise CassetteError(f"{path} is not an Ed25519 public key (the .pub file of `rewind keygen`)")
    return key


def _load(path: Path, loader: Any) -> Any:
    try:
        return loader(path.read_bytes())
    except OSError as exc:
        raise CassetteError(f"cannot read the key {path}: {exc.strerror or exc}") from exc
    except (ValueError, TypeError) as exc:
        raise CassetteError(f"{path} is not a key Rewind can read: {exc}") from exc
