"""The node's self-signed TLS certificate and the SSL contexts built on it.

Certificates are not checked against any authority: the client accepts any
certificate, and the signed handshake (handshake.py) binds the channel to the
node keys by signing the SHA-256 of the certificate each side sees. TLS only
gives confidentiality; who is at the other end is proven by the handshake.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ..errors import ConfigError

CERT_FILE = "tls_cert.pem"
KEY_FILE = "tls_key.pem"
# A Pi boots with a wrong clock and nobody checks these dates, so the window
# is wide enough never to make a handshake fail on time.
_NOT_BEFORE = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)
_NOT_AFTER = datetime.datetime(2999, 12, 31, tzinfo=datetime.UTC)


@dataclass(frozen=True)
class TlsFiles:
    """Where the certificate and key are, and the certificate's SHA-256."""

    cert_path: Path
    key_path: Path
    cert_sha256: bytes


def ensure_certificate(tls_dir: Path) -> TlsFiles:
    """Make the key (mode 0600) and certificate on first start, then reuse them."""
    tls_dir.mkdir(parents=True, exist_ok=True)
    key_path, cert_path = tls_dir / KEY_FILE, tls_dir / CERT_FILE
    key = _load_or_create_key(key_path)
    if not _certificate_matches(cert_path, key):
        _write_certificate(cert_path, key)
    der = x509.load_pem_x509_certificate(cert_path.read_bytes()).public_bytes(
        serialization.Encoding.DER
    )
    return TlsFiles(cert_path, key_path, certificate_sha256(der))


def certificate_sha256(der: bytes) -> bytes:
    """The SHA-256 of a DER certificate, as signed in the handshake."""
    return hashlib.sha256(der).digest()


def server_context(tls_dir: Path) -> ssl.SSLContext:
    """A TLS 1.3 server context presenting this node's certificate."""
    files = ensure_certificate(tls_dir)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.load_cert_chain(files.cert_path, files.key_path)
    return context


def client_context() -> ssl.SSLContext:
    """A TLS 1.3 client context that accepts any certificate (see module doc)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _load_or_create_key(path: Path) -> ec.EllipticCurvePrivateKey:
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # made by another process meanwhile
        return _read_key(path)
    with os.fdopen(fd, "wb") as file:
        file.write(pem)
        file.flush()
        os.fsync(file.fileno())
    return key


def _read_key(path: Path) -> ec.EllipticCurvePrivateKey:
    pem = path.read_bytes()
    if path.stat().st_mode & 0o077:
        raise ConfigError(f"{path}: readable by others; chmod 600 it")
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except ValueError as exc:
        raise ConfigError(f"{path}: not a TLS private key: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ConfigError(f"{path}: expected an EC private key")
    return key


def _certificate_matches(path: Path, key: ec.EllipticCurvePrivateKey) -> bool:
    """Whether `path` holds a certificate for `key`."""
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except (FileNotFoundError, ValueError):
        return False
    return cert.public_key() == key.public_key()


def _write_certificate(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "koprogo-node")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_NOT_BEFORE)
        .not_valid_after(_NOT_AFTER)
        .sign(key, hashes.SHA256())
    )
    temporary = path.with_suffix(".tmp")
    temporary.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    os.replace(temporary, path)  # a power cut never leaves half a certificate
