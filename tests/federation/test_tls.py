"""The node's TLS certificate: made once, kept private, reused."""

import ssl
import stat

import pytest

from koprogo_node.errors import ConfigError
from koprogo_node.federation.tls import (
    CERT_FILE,
    KEY_FILE,
    client_context,
    ensure_certificate,
    server_context,
)


def test_certificate_is_made_once_and_reused(tmp_path):
    """A second start finds the same certificate and key."""
    first = ensure_certificate(tmp_path)
    cert_pem = (tmp_path / CERT_FILE).read_bytes()
    key_pem = (tmp_path / KEY_FILE).read_bytes()

    second = ensure_certificate(tmp_path)

    assert first == second
    assert len(first.cert_sha256) == 32
    assert (tmp_path / CERT_FILE).read_bytes() == cert_pem
    assert (tmp_path / KEY_FILE).read_bytes() == key_pem


def test_key_file_is_owner_only(tmp_path):
    """The private key is written with mode 0600."""
    files = ensure_certificate(tmp_path)

    assert stat.S_IMODE(files.key_path.stat().st_mode) == 0o600


def test_key_readable_by_others_is_refused(tmp_path):
    """A key file others can read is a configuration error, with the fix."""
    files = ensure_certificate(tmp_path)
    files.key_path.chmod(0o644)

    with pytest.raises(ConfigError, match="chmod 600"):
        ensure_certificate(tmp_path)


def test_lost_certificate_is_remade_for_the_same_key(tmp_path):
    """Deleting the certificate keeps the key and makes a matching certificate."""
    first = ensure_certificate(tmp_path)
    key_pem = first.key_path.read_bytes()
    first.cert_path.unlink()

    second = ensure_certificate(tmp_path)

    assert second.key_path.read_bytes() == key_pem
    assert second.cert_path.exists()


def test_two_nodes_get_different_certificates(tmp_path):
    """Each node has its own certificate."""
    a = ensure_certificate(tmp_path / "a")
    b = ensure_certificate(tmp_path / "b")

    assert a.cert_sha256 != b.cert_sha256


def test_contexts_require_tls_1_3(tmp_path):
    """Both contexts refuse anything older than TLS 1.3."""
    server = server_context(tmp_path)
    client = client_context()

    assert server.minimum_version == ssl.TLSVersion.TLSv1_3
    assert client.minimum_version == ssl.TLSVersion.TLSv1_3
    assert client.verify_mode == ssl.CERT_NONE
    assert client.check_hostname is False
