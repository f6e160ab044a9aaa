"""Rewind's own certificate authority, made with ``cryptography``, and the trust bundle.

Files under the CA directory (``$REWIND_HOME/ca``):

    rewind-ca-cert.pem      the CA certificate users trust
    rewind-ca-key.pem       its private key (mode 0600)
    mitmproxy-ca.pem        key + certificate, the name mitmproxy's CertStore loads (0600)
    mitmproxy-ca-cert.pem   the certificate again, under mitmproxy's name
    mitmproxy-dhparam.pem   mitmproxy's DH parameters, written once here to avoid races
    bundle.pem              the user's current roots + the rewind CA (for SSL_CERT_FILE etc.)
"""

from __future__ import annotations

import datetime
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import certifi
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_CERT = "rewind-ca-cert.pem"
CA_KEY = "rewind-ca-key.pem"
MITM_CA = "mitmproxy-ca.pem"
MITM_CA_CERT = "mitmproxy-ca-cert.pem"
MITM_DHPARAM = "mitmproxy-dhparam.pem"
BUNDLE = "bundle.pem"
CA_COMMON_NAME = "Rewind local recording CA"


@dataclass(frozen=True)
class CaFiles:
    """Where the CA and the trust bundle live."""

    directory: Path

    @property
    def cert(self) -> Path:
        return self.directory / CA_CERT

    @property
    def key(self) -> Path:
        return self.directory / CA_KEY

    @property
    def bundle(self) -> Path:
        return self.directory / BUNDLE

    def exists(self) -> bool:
        return all((self.directory / n).exists() for n in (CA_CERT, CA_KEY, MITM_CA))


def ensure_ca(directory: Path, environ: dict[str, str] | None = None) -> tuple[CaFiles, bool]:
    """Create the CA if missing (idempotent) and refresh the bundle; True if created."""
    files = CaFiles(directory)
    created = not files.exists()
    if created:
        _write_ca(directory)
    write_bundle(files, dict(os.environ) if environ is None else environ)
    return files, created


def _write_ca(directory: Path) -> None:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = _make_ca_cert(key)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    _atomic_write(directory / CA_KEY, key_pem, mode=0o600)
    _atomic_write(directory / MITM_CA, key_pem + cert_pem, mode=0o600)
    _atomic_write(directory / MITM_CA_CERT, cert_pem)
    _atomic_write(directory / CA_CERT, cert_pem)
    _write_dhparam(directory / MITM_DHPARAM)


def _make_ca_cert(key: rsa.RSAPrivateKey) -> x509.Certificate:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, CA_COMMON_NAME),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Rewind"),
        ]
    )
    now = datetime.datetime.now(datetime.UTC)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=2))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_ca_key_usage(), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
    )
    return builder.sign(key, hashes.SHA256())


def _ca_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def _write_dhparam(path: Path) -> None:
    from mitmproxy.certs import DEFAULT_DHPARAM

    _atomic_write(path, DEFAULT_DHPARAM)


def user_roots(environ: dict[str, str], own_bundle: Path) -> bytes:
    """The roots the user trusts now: ``SSL_CERT_FILE`` if set (and not ours), else certifi."""
    configured = environ.get("SSL_CERT_FILE")
    if configured and Path(configured).resolve() != own_bundle.resolve():
        try:
            return Path(configured).read_bytes()
        except OSError:
            pass
    return Path(certifi.where()).read_bytes()


def write_bundle(files: CaFiles, environ: dict[str, str]) -> Path:
    """Write roots + rewind CA to ``bundle.pem`` (atomically: recordings may run at once)."""
    roots = user_roots(environ, files.bundle)
    ours = files.cert.read_bytes()
    if not roots.endswith(b"\n"):
        roots += b"\n"
    _atomic_write(files.bundle, roots + b"# Rewind local recording CA\n" + ours)
    return files.bundle


def _atomic_write(path: Path, data: bytes, mode: int = 0o600) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
