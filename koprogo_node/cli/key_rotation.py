"""Replacing the node's Ed25519 identity while keeping the old key file.

The live key file is never missing or half-written: the old seed is first
copied aside, the new one is written to a temporary file, and a rename puts
it in place. The writer lock is held meanwhile, so a daemon cannot start on
a key that is being replaced.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from nacl.signing import SigningKey

from ..errors import ConfigError
from ..federation.identity import KEY_FILE, NodeKey
from ..ledger.lock import WriterLock

_PENDING_SUFFIX = ".new"


@dataclass(frozen=True)
class Rotation:
    """The outcome of a key rotation."""

    old_peer_id: str
    new_peer_id: str
    key_file: Path
    retired_file: Path


def rotate_node_key(data_dir: Path) -> Rotation:
    """Give the node a new key; the old one stays as node_key.retired-<peer id>.

    The key file must exist. Files made here get its owner, so a rotation
    run with sudo leaves keys the daemon's user can read. Raises LedgerBusy
    when a daemon holds the data directory, ConfigError when the present
    key file is unreadable as a key.
    """
    owner = (data_dir / KEY_FILE).stat()
    lock = WriterLock(data_dir)
    lock_existed = lock.path.exists()
    lock.acquire()
    try:
        if not lock_existed:
            _give_to(lock.path, owner)
        old = NodeKey.load_or_create(data_dir)
        retired = _keep_aside(data_dir, old, owner)
        _install(data_dir / KEY_FILE, bytes(SigningKey.generate()), owner)
        new = NodeKey.load_or_create(data_dir)
    finally:
        lock.release()
    return Rotation(old.peer_id, new.peer_id, data_dir / KEY_FILE, retired)


def _keep_aside(data_dir: Path, old: NodeKey, owner: os.stat_result) -> Path:
    """Copy the old seed to a file named by its peer id, which says whose it was."""
    seed = bytes(old.signing_key)
    path = data_dir / f"{KEY_FILE}.retired-{old.peer_id}"
    try:
        _write_secret(path, seed, owner)
    except FileExistsError:
        # Only this very key is ever kept under this name (it was restored
        # and is retired again); anything else there is not ours to touch.
        if path.read_bytes() != seed:
            raise ConfigError(f"{path} exists and holds another key") from None
    return path


def _install(path: Path, seed: bytes, owner: os.stat_result) -> None:
    """Put a new seed at `path` by rename, so readers see old or new."""
    pending = path.with_name(path.name + _PENDING_SUFFIX)
    pending.unlink(missing_ok=True)  # left by a rotation that was interrupted
    _write_secret(pending, seed, owner)
    os.replace(pending, path)
    _sync_dir(path.parent)


def _write_secret(path: Path, seed: bytes, owner: os.stat_result) -> None:
    """Create `path` (mode 0600, never replacing a file) holding `seed`."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    _give_to(path, owner)
    with os.fdopen(fd, "wb") as file:
        file.write(seed)
        file.flush()
        os.fsync(file.fileno())


def _give_to(path: Path, owner: os.stat_result) -> None:
    """Make `path` belong to the owner of the key file (only root can)."""
    if os.geteuid() == 0:
        os.chown(path, owner.st_uid, owner.st_gid)


def _sync_dir(folder: Path) -> None:
    """Make a rename in `folder` survive a power cut (the Pi has no UPS)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
