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


def merge(a: Bucket, b: Bucket) -> Bucket:
    """Combine two aggregates of the same sensor, `b` being the later one."""
    return replace(
        a,
        n=a.n + b.n,
        total=a.total + b.total,
        low=min(a.low, b.low),
        high=max(a.high, b.high),
        last=b.last,
    )


class RollupBuilder:
    """Keeps the open buckets of every sensor and emits the ones that close."""

    def __init__(self) -> None:
        self._open: dict[tuple[Tier, int], Bucket] = {}

    def add(self, sensor: int, ts: float, amount: float, value: float) -> list[Bucket]:
        """Add one good reading; return the buckets it closed.

        `amount` is what sums (a counter's delta, a gauge's value); `value`
        is the reading itself, for min, max and last.
        """
        start = bucket_start(ts, Tier.QUARTER)
        point = Bucket(Tier.QUARTER, start, sensor, 1, amount, value, value, value)
        return self._absorb(point)

    def restore(self, bucket: Bucket) -> list[Bucket]:
        """Feed a bucket rebuilt from storage into the next tiers up."""
        return self._absorb(bucket)

    def open_buckets(self) -> list[Bucket]:
        """Return the buckets still open, for queries of recent data."""
        return list(self._open.values())

    def _absorb(self, piece: Bucket) -> list[Bucket]:
        key = (piece.tier, piece.sensor)
        current = self._open.get(key)
        if current is None or current.start_s == piece.start_s:
            self._open[key] = piece if current is None else merge(current, piece)
            return []
        if piece.start_s < current.start_s:
            return []  # the ingest rules keep this from happening
        self._open[key] = piece
        return [current, *self._promote(current)]

    def _promote(self, closed: Bucket) -> list[Bucket]:
        upper = NEXT_TIER.get(closed.tier)
        if upper is None:
            return []
        lifted = replace(closed, tier=upper, start_s=bucket_start(closed.start_s, upper))
        return self._absorb(lifted)
