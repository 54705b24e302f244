"""A node's Ed25519 identity and its libp2p-style peer id.

The peer id is derived as libp2p derives it for Ed25519 keys: the public key
in libp2p's protobuf `PublicKey` message (type Ed25519, 32 bytes of key) is
36 bytes, short enough for the identity multihash (code 0x00, length 0x24),
and the multihash is written in base58btc. Such ids start with "12D3KooW".
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import base58
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from ..errors import KeyFileError

KEY_FILE = "node_key"
_PROTOBUF_ED25519 = bytes([0x08, 0x01, 0x12, 0x20])  # KeyType=Ed25519, Data=32 B
_IDENTITY_MULTIHASH = bytes([0x00, len(_PROTOBUF_ED25519) + 32])


def peer_id(public_key: bytes) -> str:
    """The libp2p peer id of an Ed25519 public key."""
    if len(public_key) != 32:
        raise ValueError("an Ed25519 public key is 32 bytes")
    return base58.b58encode(
        _IDENTITY_MULTIHASH + _PROTOBUF_ED25519 + public_key
    ).decode()


def public_key_of(peer: str) -> bytes:
    """The Ed25519 public key inside a peer id; ValueError if it holds none."""
    try:
        raw = base58.b58decode(peer)
    except ValueError as exc:
        raise ValueError(f"{peer!r} is not base58") from exc
    prefix = _IDENTITY_MULTIHASH + _PROTOBUF_ED25519
    if len(raw) != len(prefix) + 32 or not raw.startswith(prefix):
        raise ValueError(f"{peer!r} is not an Ed25519 peer id")
    return raw[len(prefix) :]


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Whether `signature` is `public_key`'s signature of `message`."""
    try:
        VerifyKey(public_key).verify(message, signature)
    except (BadSignatureError, ValueError):
        return False
    return True


@dataclass(frozen=True)
class NodeKey:
    """The node's signing key, kept in a file only its user can read."""

    signing_key: SigningKey

    @property
    def public_key(self) -> bytes:
        return bytes(self.signing_key.verify_key)

    @property
    def peer_id(self) -> str:
        return peer_id(self.public_key)

    def sign(self, message: bytes) -> bytes:
        """The Ed25519 signature of `message`."""
        return self.signing_key.sign(message).signature

    @classmethod
    def load_or_create(cls, data_dir: Path, filename: str = KEY_FILE) -> NodeKey:
        """Read the key from `data_dir`, making it (mode 0600) on first start."""
        path = data_dir / filename
        try:
            return cls._read(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise KeyFileError(f"cannot read {path}: {exc.strerror}") from exc
        try:
            return cls._create(path)
        except FileExistsError:  # made by another process meanwhile
            return cls._read(path)
        except OSError as exc:
            raise KeyFileError(f"cannot make {path}: {exc.strerror}") from exc

    @classmethod
    def _create(cls, path: Path) -> NodeKey:
        seed = bytes(SigningKey.generate())
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as file:
            file.write(seed)
            file.flush()
            os.fsync(file.fileno())
        return cls(SigningKey(seed))

    @classmethod
    def _read(cls, path: Path) -> NodeKey:
        seed = path.read_bytes()
        if len(seed) != 32:
            raise KeyFileError(
                f"{path}: not a node key (expected 32 bytes); restore it from a"
                " backup, or move it aside to make a new identity"
            )
        if path.stat().st_mode & 0o077:
            raise KeyFileError(f"{path}: readable by others; chmod 600 it")
        return cls(SigningKey(seed))
