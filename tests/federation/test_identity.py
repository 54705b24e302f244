"""Node identity: a private key file, a libp2p-style peer id."""

import stat

import pytest

from koprogo_node.errors import KeyFileError
from koprogo_node.federation.identity import (
    KEY_FILE,
    NodeKey,
    peer_id,
    public_key_of,
    verify,
)

# RFC 8032 test 1: seed 9d61…7f60 has this public key.
RFC8032_PUBLIC = bytes.fromhex(
    "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
)


def test_peer_id_is_the_identity_multihash_in_base58():
    """An Ed25519 peer id starts 12D3KooW and holds the key, as libp2p's do."""
    pid = peer_id(RFC8032_PUBLIC)

    assert pid.startswith("12D3KooW")
    assert len(pid) == 52
    assert public_key_of(pid) == RFC8032_PUBLIC


def test_a_non_ed25519_id_is_refused():
    """A sha256 (RSA-style) peer id holds no Ed25519 key."""
    with pytest.raises(ValueError, match="not an Ed25519 peer id"):
        public_key_of("QmShJYgxNoKn7xqdRQj5PBcNfPSsbWkgFBPA4mK5PH73JB")


def test_key_is_made_once_with_mode_600_and_reused(tmp_path):
    """The key file is made once, owner-readable only, then reused."""
    first = NodeKey.load_or_create(tmp_path)
    second = NodeKey.load_or_create(tmp_path)

    mode = stat.S_IMODE((tmp_path / KEY_FILE).stat().st_mode)
    assert mode == 0o600
    assert first.peer_id == second.peer_id


def test_two_nodes_get_different_keys(tmp_path):
    """No two nodes share an identity."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()

    a = NodeKey.load_or_create(tmp_path / "a")
    b = NodeKey.load_or_create(tmp_path / "b")

    assert a.peer_id != b.peer_id


def test_key_readable_by_others_is_refused(tmp_path):
    """A key file others can read is refused with the fix."""
    NodeKey.load_or_create(tmp_path)
    (tmp_path / KEY_FILE).chmod(0o644)

    with pytest.raises(KeyFileError, match="chmod 600"):
        NodeKey.load_or_create(tmp_path)


def test_signature_verifies_only_for_its_message_and_key(tmp_path):
    """A signature checks out for its message and key, and for nothing else."""
    key = NodeKey.load_or_create(tmp_path)
    signature = key.sign(b"hello")

    assert verify(key.public_key, b"hello", signature)
    assert not verify(key.public_key, b"hellO", signature)
    assert not verify(RFC8032_PUBLIC, b"hello", signature)


def test_keys_show_prints_the_daemons_peer_id(tmp_path):
    """keys show gives the id the node made, and exits 3 before there is one."""
    from ..daemon.conftest import cli

    before = cli("keys", "show", "--data-dir", str(tmp_path))
    key = NodeKey.load_or_create(tmp_path)
    after = cli("keys", "show", "--data-dir", str(tmp_path), "--json")

    assert before.returncode == 3
    assert "no node key" in before.stderr
    assert '"peer_id": "%s"' % key.peer_id in after.stdout
    assert key.signing_key.encode().hex() not in after.stdout
