"""Peers banned by the technician: a small JSON file in the data directory.

`koprogo-node peers ban` writes it; the daemon rereads it when it changes.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..files import replace_file

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
    replace_file(data_dir / BANS_FILE, text.encode())
