"""The CA: made once, with the extensions strict verifiers need, key private, bundle fresh."""

from __future__ import annotations

import ssl
import stat
from pathlib import Path

from cryptography import x509

from rewind.capture.ca import CA_COMMON_NAME, MITM_CA, ensure_ca


def test_creates_ca_with_key_identifiers_and_private_key(tmp_path: Path) -> None:
    files, created = ensure_ca(tmp_path / "ca", {})
    assert created
    cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    assert stat.S_IMODE(files.key.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "ca" / MITM_CA).stat().st_mode) == 0o600


def test_is_idempotent(tmp_path: Path) -> None:
    first, _ = ensure_ca(tmp_path, {})
    before = first.cert.read_bytes()
    _, created = ensure_ca(tmp_path, {})
    assert not created
    assert first.cert.read_bytes() == before


def test_bundle_holds_user_roots_and_our_ca(tmp_path: Path) -> None:
    roots = tmp_path / "roots.pem"
    other, _ = ensure_ca(tmp_path / "other", {})
    roots.write_bytes(other.cert.read_bytes())
    files, _ = ensure_ca(tmp_path / "ca", {"SSL_CERT_FILE": str(roots)})
    names = [c.subject.rfc4514_string() for c in x509.load_pem_x509_certificates(files.bundle.read_bytes())]
    assert len(names) == 2 and all(CA_COMMON_NAME in n for n in names)
    ssl.create_default_context(cafile=str(files.bundle))  # loadable by OpenSSL


def test_bundle_ignores_itself_as_ssl_cert_file(tmp_path: Path) -> None:
    files, _ = ensure_ca(tmp_path, {})
    size = files.bundle.stat().st_size
    ensure_ca(tmp_path, {"SSL_CERT_FILE": str(files.bundle)})
    assert files.bundle.stat().st_size == size  # certifi + ours again, not nested
