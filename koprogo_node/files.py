"""Small files the node rewrites (anchor, run file, bans, counters)."""

from __future__ import annotations

import os
from pathlib import Path


def replace_file(path: Path, data: bytes | str) -> None:
    """Replace `path` atomically: a reader sees the old file or the new one."""
    tmp = path.with_name(path.name + ".tmp")
    if isinstance(data, str):
        tmp.write_text(data)
    else:
        tmp.write_bytes(data)
    os.replace(tmp, path)
