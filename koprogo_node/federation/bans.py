"""Peers banned by the technician: a small JSON file in the data directory.

`koprogo-node peers ban` writes it; the daemon rereads it when it changes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

BANS_FILE = "bans.json"


def read_bans(data_dir: Path) -> list[str]:
    """Peer ids banned by `koprogo-node peers ban` (an empty list if none)."""
    try:
        data = json.loads((data_dir / BANS_FILE).read_text())
    except (OSError, ValueError):
        return []
    return [p for p in data.get("banned", []) if isinstance(p, str)]


def write_bans(data_dir: Path, banned: list[str]) -> None:
    """Replace the ban list atomically; the daemon picks it up within a second."""
    text = json.dumps({"banned": sorted(set(banned))}, indent=1)
    _replace_bytes(data_dir / BANS_FILE, text.encode())


def _replace_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
