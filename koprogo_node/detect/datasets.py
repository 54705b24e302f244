"""Where the public evaluation data sets are read from (never copied here)."""

from __future__ import annotations

import os
from pathlib import Path

SHARED_DATA_ENV = "KOPROGO_SHARED_DATA"


def shared_data_root() -> Path:
    """`$KOPROGO_SHARED_DATA`, or `../shared/data` beside the checkout."""
    override = os.environ.get(SHARED_DATA_ENV)
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[2].parent / "shared" / "data"
