"""A simulated building for the demo and benchmarks (pure: no I/O, no clock).

`Building` advances N lots, the common parts, a water meter and a gas or heat
meter through simulated time; `building_frames` and `encode_telegram` turn a
snapshot into the P1 telegrams the meters would send. Real recorded series
for the demo's CSV replay ship in `data/` (see `sample_csv`).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from .belgium import BRUSSELS, TARIFF_DAY, TARIFF_NIGHT, tariff_at
from .building import Building, BuildingSnapshot, BuildingSpec, LotTraits
from .frames import COMMON, building_frames, lot_key
from .meters import MeterSnapshot
from .telegram import Frame, MbusValue, crc16_arc, encode_telegram
from .weather import room_temperature_c

SAMPLES = {
    "machine_temperature": "machine_temperature_system_failure.csv",
    "ambient_temperature": "ambient_temperature_system_failure.csv",
}


def sample_csv(name: str) -> Path:
    """Return the path of a shipped NAB series: a key of `SAMPLES`."""
    if name not in SAMPLES:
        raise KeyError(f"no sample {name!r}; choose one of {sorted(SAMPLES)}")
    return Path(str(resources.files(__package__) / "data" / SAMPLES[name]))


__all__ = [
    "BRUSSELS",
    "COMMON",
    "SAMPLES",
    "TARIFF_DAY",
    "TARIFF_NIGHT",
    "Building",
    "BuildingSnapshot",
    "BuildingSpec",
    "Frame",
    "LotTraits",
    "MbusValue",
    "MeterSnapshot",
    "building_frames",
    "crc16_arc",
    "encode_telegram",
    "lot_key",
    "room_temperature_c",
    "sample_csv",
    "tariff_at",
]
