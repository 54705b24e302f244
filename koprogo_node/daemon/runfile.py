"""`node.json` in the data directory: who runs here and where it listens.

The CLI reads it to find a running daemon's building id, web address, control
socket and configuration file
(the lock file says whether the daemon still runs).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from ..config.model import Config
from ..files import replace_file

RUN_FILE = "node.json"


def write_run_file(
    data_dir: Path,
    config: Config,
    web_url: str | None,
    control_socket: Path | None,
    config_path: Path | None,
) -> None:
    """Record the running daemon's identity (replaced atomically)."""
    data = {
        "pid": os.getpid(),
        "building_id": config.node.building_id,
        "name": config.node.name,
        "web_url": web_url,
        "control_socket": str(control_socket) if control_socket else None,
        "config_path": str(config_path.absolute()) if config_path else None,
        "started_s": round(time.time(), 3),
    }
    replace_file(data_dir / RUN_FILE, json.dumps(data))


def read_run_file(data_dir: Path) -> dict:
    """What the last daemon recorded, or {} when nothing usable is there."""
    try:
        data = json.loads((data_dir / RUN_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
