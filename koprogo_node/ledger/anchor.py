"""The head anchor: a small file beside the database naming the last block.

Deleting the newest blocks together with their rows leaves a chain that is
consistent in itself; the anchor, rewritten after every commit, makes that
visible. It is written after the COMMIT and never fsynced, so after a power
cut it may lag behind the database (fine) but is never ahead of it.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..files import replace_file


def anchor_path(db_path: Path) -> Path:
    """Where the anchor of the database at `db_path` lives."""
    return db_path.with_name(db_path.name + ".head")


def write_anchor(db_path: Path, height: int, block_hash: bytes) -> None:
    """Atomically replace the anchor."""
    data = json.dumps({"height": height, "hash": block_hash.hex()})
    replace_file(anchor_path(db_path), data)


def read_anchor(db_path: Path) -> tuple[int, str] | None:
    """Return (height, hash hex) from the anchor, or None if there is none."""
    try:
        data = json.loads(anchor_path(db_path).read_text())
        return int(data["height"]), str(data["hash"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        return (-1, "unreadable")
