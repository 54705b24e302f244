"""How fast the storage under the data directory is being worn out.

SD cards do not report their wear. What the kernel does report is how many
sectors were written to each block device since boot; with the card's size and
a conservative endurance (full-card writes a consumer card survives), that
gives years left at the current write rate. eMMC reports its own wear in
`device/life_time`, which is used when present.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

SECTOR_BYTES = 512  # /sys/block/*/stat counts 512-byte sectors whatever the device
# Full-card writes a cheap consumer SD card is expected to survive (TLC flash
# is rated 500-3000 program/erase cycles; the low end, as cards rarely say).
CARD_WRITE_CYCLES = 500
STAT_SECTORS_WRITTEN = 6  # field index in /sys/block/<dev>/stat


@dataclass(frozen=True)
class WearEstimate:
    """Write rate and the years a card of this size lasts at that rate."""

    device: str
    capacity_bytes: int
    bytes_per_day: float
    years_left: float | None  # None: nothing written since boot
    emmc_used_percent: int | None = None  # from the device itself, if eMMC


def estimate(
    device: str,
    stat_text: str,
    size_sectors: int,
    uptime_s: float,
    life_time: str | None = None,
) -> WearEstimate:
    """Estimate wear from the kernel's counters (pure: texts and numbers in)."""
    written = int(stat_text.split()[STAT_SECTORS_WRITTEN]) * SECTOR_BYTES
    capacity = size_sectors * SECTOR_BYTES
    per_day = written / max(uptime_s, 1.0) * 86_400
    years = None
    if per_day > 0:
        years = capacity * CARD_WRITE_CYCLES / per_day / 365.25
    return WearEstimate(device, capacity, per_day, years, _emmc_used(life_time))


def _emmc_used(life_time: str | None) -> int | None:
    """eMMC's estimate in tenths (0x01 = 0-10 % used ... 0x0B = past its life)."""
    if not life_time:
        return None
    try:
        steps = max(int(word, 16) for word in life_time.split())
    except ValueError:
        return None
    return min(steps * 10, 110) if steps else None


def block_device_of(path: Path, sysfs: Path = Path("/sys")) -> Path | None:
    """The sysfs folder of the whole disk holding `path`, or None (tmpfs, overlay)."""
    dev = os.stat(path).st_dev
    node = sysfs / "dev" / "block" / f"{os.major(dev)}:{os.minor(dev)}"
    if not node.exists():
        return None
    node = node.resolve()
    # A partition's folder sits inside its disk's and has a `partition` file.
    return node.parent if (node / "partition").exists() else node


def estimate_for(path: Path, sysfs: Path = Path("/sys")) -> WearEstimate | None:
    """Read the counters of the disk under `path`; None if it has none."""
    disk = block_device_of(path, sysfs)
    if disk is None or not (disk / "stat").exists():
        return None
    life = disk / "device" / "life_time"
    return estimate(
        disk.name,
        (disk / "stat").read_text(),
        int((disk / "size").read_text()),
        float(Path("/proc/uptime").read_text().split()[0]),
        life.read_text() if life.exists() else None,
    )
