"""Which DSMR dialect a recording speaks, from the profiles in sensors/dsmr/."""

from __future__ import annotations

import re

from ..errors import ConfigError
from .profiles import Profile, list_profiles


def dialect_profiles() -> list[Profile]:
    """DSMR profiles in detection order."""
    return sorted(list_profiles("dsmr"), key=lambda p: p.body["dialect"]["order"])


def detect_spec(data: bytes) -> str:
    """The parser dialect of the first profile whose markers all appear."""
    text = data.decode("latin-1")
    for profile in dialect_profiles():
        dialect = profile.body["dialect"]
        if all(re.search(p, text, re.MULTILINE) for p in dialect["detect"]):
            return dialect["spec"]
    raise ConfigError("no DSMR profile recognises this input; pass --spec")
