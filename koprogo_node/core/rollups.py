"""Rollups at 15 minutes, one hour and one day, built as readings arrive.

A bucket of a sensor closes when that sensor's first reading in a later
bucket arrives (readings of one sensor only move forward in time, the ingest
rules see to that). Closed buckets are emitted once and never change. Hours
are built from quarter hours and days from hours, so the open state can be
rebuilt after a restart from at most a quarter hour of raw readings.

For a counter, `total` is the consumption in the bucket (the sum of deltas)
and `last` the counter value at its end; for a gauge, `total / n` is the mean.
Days are UTC days: a building's local day is a view over hourly rows.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, replace


class Tier(enum.IntEnum):
    """Rollup resolution, valued in seconds."""

    QUARTER = 900
    HOUR = 3600
    DAY = 86400

    @property
    def label(self) -> str:
        return {900: "15m", 3600: "1h", 86400: "1d"}[self.value]


NEXT_TIER = {Tier.QUARTER: Tier.HOUR, Tier.HOUR: Tier.DAY}
QUARTER_S = int(Tier.QUARTER)


@dataclass(frozen=True, slots=True)
class Bucket:
    """Aggregate of one sensor over one interval."""

    tier: Tier
    start_s: int
    sensor: int
    n: int
    total: float
    low: float
    high: float
    last: float


def bucket_start(ts: float, tier: Tier) -> int:
    """Return the start of the bucket of `tier` that holds `ts`."""
    return int(math.floor(ts / tier.value) * tier.value)


class _Open:
    """A bucket still filling; mutable because it changes on every reading."""

    __slots__ = ("start_s", "n", "total", "low", "high", "last")

    def __init__(
        self, start_s: int, n: int, total: float, low: float, high: float, last: float
    ) -> None:
        self.start_s, self.n, self.total = start_s, n, total
        self.low, self.high, self.last = low, high, last

    def absorb(
        self, n: int, total: float, low: float, high: float, last: float
    ) -> None:
        self.n += n
        self.total += total
        if low < self.low:
            self.low = low
        if high > self.high:
            self.high = high
        self.last = last

    def freeze(self, tier: Tier, sensor: int) -> Bucket:
        return Bucket(
            tier,
            self.start_s,
            sensor,
            self.n,
            self.total,
            self.low,
            self.high,
            self.last,
        )


class RollupBuilder:
    """Keeps the open buckets of every sensor and emits the ones that close."""

    def __init__(self) -> None:
        self._open: dict[tuple[Tier, int], _Open] = {}

    def add(self, sensor: int, ts: float, amount: float, value: float) -> list[Bucket]:
        """Add one good reading; return the buckets it closed.

        `amount` is what sums (a counter's delta, a gauge's value); `value`
        is the reading itself, for min, max and last.
        """
        start = int(ts // QUARTER_S) * QUARTER_S
        current = self._open.get((Tier.QUARTER, sensor))
        if current is not None and current.start_s == start:
            current.absorb(1, amount, value, value, value)  # the hot path
            return []
        point = Bucket(Tier.QUARTER, start, sensor, 1, amount, value, value, value)
        return self._absorb(point)

    def restore(self, bucket: Bucket) -> list[Bucket]:
        """Feed a bucket rebuilt from storage into the next tiers up."""
        return self._absorb(bucket)

    def open_buckets(self) -> list[Bucket]:
        """Return the buckets still open, for queries of recent data."""
        return [o.freeze(tier, sensor) for (tier, sensor), o in self._open.items()]

    def _absorb(self, piece: Bucket) -> list[Bucket]:
        key = (piece.tier, piece.sensor)
        current = self._open.get(key)
        if current is not None and current.start_s == piece.start_s:
            current.absorb(piece.n, piece.total, piece.low, piece.high, piece.last)
            return []
        if current is not None and piece.start_s < current.start_s:
            return []  # the ingest rules keep this from happening
        self._open[key] = _Open(
            piece.start_s, piece.n, piece.total, piece.low, piece.high, piece.last
        )
        if current is None:
            return []
        closed = current.freeze(piece.tier, piece.sensor)
        return [closed, *self._promote(closed)]

    def _promote(self, closed: Bucket) -> list[Bucket]:
        upper = NEXT_TIER.get(closed.tier)
        if upper is None:
            return []
        lifted = replace(
            closed, tier=upper, start_s=bucket_start(closed.start_s, upper)
        )
        return self._absorb(lifted)
