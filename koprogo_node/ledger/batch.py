"""One block in the making: rows for every chained table plus its header."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from ..core.rollups import Bucket
from .chain import CHAINED, ROLLUP_SLOT, block_hash, pack_digests, rows_digest


@dataclass
class Batch:
    """Rows gathered for one block, in the column order of chain.CHAINED."""

    height: int
    prev: bytes
    first_reading: int
    sensors: list[tuple] = field(default_factory=list)
    boots: list[tuple] = field(default_factory=list)
    readings: list[tuple] = field(default_factory=list)
    rollups: list[tuple] = field(default_factory=list)
    events: list[tuple] = field(default_factory=list)
    clock_fixes: list[tuple] = field(default_factory=list)
    prunes: list[tuple] = field(default_factory=list)
    sensor_state: dict[int, tuple] = field(default_factory=dict)
    touched: dict[int, str] = field(default_factory=dict)
    rejects: list[tuple] = field(default_factory=list)
    aggregates: list[tuple] = field(default_factory=list)  # signed, not chained
    hash: bytes = b""
    digests: bytes = b""

    def add_rollup(self, bucket: Bucket) -> None:
        """Queue a closed bucket."""
        self.rollups.append(
            (
                int(bucket.tier),
                bucket.start_s,
                bucket.sensor,
                bucket.n,
                float(bucket.total),
                float(bucket.low),
                float(bucket.high),
                float(bucket.last),
            )
        )

    def add_event(
        self, event_id: int, ts_ms: int, kind: str, sensor: str | None, detail: dict
    ) -> None:
        """Queue an event; `detail` is stored as canonical JSON."""
        text = json.dumps(detail, sort_keys=True, separators=(",", ":"))
        self.events.append((event_id, ts_ms, kind, sensor, text))

    def stamp_range(self) -> tuple[int | None, int | None]:
        """Lowest and highest stored stamp of the block's readings."""
        if not self.readings:
            return None, None
        stamps = [row[2] for row in self.readings]
        return min(stamps), max(stamps)

    def compute_digests(self) -> bytes:
        """Packed per-slot digests of this block's rows."""
        slots = {
            "sensors": self.sensors,
            "boots": self.boots,
            "readings": self.readings,
            "events": self.events,
            "clock_fixes": self.clock_fixes,
            "prunes": self.prunes,
        }
        for tier, slot in ROLLUP_SLOT.items():
            rows = [r for r in self.rollups if r[0] == tier]
            slots[slot] = sorted(rows, key=lambda r: (r[1], r[2]))
        return pack_digests({name: rows_digest(slots[name], name) for name in CHAINED})

    def seal(self, created_ms: int) -> None:
        """Compute the header's digests and hash for commit time `created_ms`."""
        self.digests = self.compute_digests()
        self.hash = block_hash(
            self.height,
            self.prev,
            created_ms,
            self.digests,
            self.first_reading,
            len(self.readings),
            *self.stamp_range(),
        )
