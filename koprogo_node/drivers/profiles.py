"""Device profiles: what a meter model or device family means, as TOML data.

Profiles live in `sensors/<family>/<name>.toml` (family: dsmr, modbus, mqtt).
Each file opens with a `[profile]` table naming it:

    [profile]
    name = "eastron-sdm630"
    family = "modbus"
    title = "Eastron SDM630 three-phase meter"

The family's own tables follow (TOML puts every key after a table header in
that table, so the body is in tables of its own, e.g. `[dialect]` for DSMR).
Adding a meter model is adding a file. The folder is found at
`KOPROGO_PROFILES`, else beside the package in a source checkout, else
`/usr/share/koprogo-node/sensors`.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError

FAMILIES = ("dsmr", "modbus", "mqtt")
INSTALLED = Path("/usr/share/koprogo-node/sensors")


@dataclass(frozen=True)
class Profile:
    """One profile file: its header and the family-specific body."""

    name: str
    family: str
    title: str
    path: Path
    body: dict[str, Any]


def profiles_dir() -> Path:
    """The folder holding the profiles."""
    if os.environ.get("KOPROGO_PROFILES"):
        return Path(os.environ["KOPROGO_PROFILES"])
    checkout = Path(__file__).resolve().parents[2] / "sensors"
    return checkout if checkout.is_dir() else INSTALLED


def list_profiles(family: str | None = None) -> list[Profile]:
    """Every profile (of one family), sorted by family and name."""
    root = profiles_dir()
    families = [family] if family else list(FAMILIES)
    found = []
    for fam in families:
        for path in sorted((root / fam).glob("*.toml")):
            found.append(_read(path, fam))
    return found


def load_profile(family: str, name: str) -> Profile:
    """The profile `name` of `family`; ConfigError naming the known ones."""
    for profile in list_profiles(family):
        if profile.name == name:
            return profile
    known = ", ".join(p.name for p in list_profiles(family)) or "none"
    raise ConfigError(f"no {family} profile {name!r}; known: {known}")


def _read(path: Path, family: str) -> Profile:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"profile {path}: cannot read: {exc}") from exc
    header = data.pop("profile", None)
    if not isinstance(header, dict) or not header.get("name"):
        raise ConfigError(f"profile {path}: needs a [profile] table with a name")
    if header.get("family", family) != family:
        raise ConfigError(f"profile {path}: family must be {family!r}")
    return Profile(
        name=str(header["name"]),
        family=family,
        title=str(header.get("title", "")),
        path=path,
        body=data,
    )
