"""Live copies of incoming readings, for whoever watches (`readings tail`).

A watcher that reads too slowly never slows ingest: its queue is bounded, and
what does not fit is counted as missed and reported to it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable

from ..core.readings import Reading

TAP_QUEUE = 256  # batches a watcher may fall behind before some are missed
# Readings kept for a watcher that starts now: more than the ledger holds back
# before a commit at a few hundred readings a second (about 1.5 MB).
RECENT_READINGS = 10_000


class Tap:
    """One watcher's queue of reading batches, filtered by channel name."""

    def __init__(self, sensors: frozenset[str]) -> None:
        self.sensors = sensors
        self.missed = 0
        self._queue: asyncio.Queue[list[Reading] | None] = asyncio.Queue(TAP_QUEUE)

    def offer(self, readings: list[Reading]) -> None:
        chosen = [r for r in readings if not self.sensors or r.sensor in self.sensors]
        if not chosen:
            return
        try:
            self._queue.put_nowait(chosen)
        except asyncio.QueueFull:
            self.missed += len(chosen)

    def end(self) -> None:
        """Tell the watcher there is nothing more (the daemon stops)."""
        try:
            self._queue.put_nowait(None)
        except asyncio.QueueFull:
            self._queue.get_nowait()
            self._queue.put_nowait(None)

    async def next(self, timeout_s: float) -> list[Reading] | None:
        """The next batch; [] after `timeout_s` of quiet; None once ended."""
        try:
            return await asyncio.wait_for(self._queue.get(), timeout_s)
        except asyncio.TimeoutError:
            return []


class Taps:
    """Every open tap; the ingest sinks offer each batch to all of them."""

    def __init__(self, recent: int = RECENT_READINGS) -> None:
        self._open: set[Tap] = set()
        self._recent: deque[Reading] = deque(maxlen=recent)

    def open(self, sensors: Iterable[str] = ()) -> Tap:
        """A new tap, first given the recent readings (those not yet committed
        among them), so that a watcher who read the ledger misses nothing."""
        tap = Tap(frozenset(sensors))
        tap.offer(list(self._recent))
        self._open.add(tap)
        return tap

    def close(self, tap: Tap) -> None:
        self._open.discard(tap)

    def offer(self, readings: list[Reading]) -> None:
        self._recent.extend(readings)
        for tap in self._open:
            tap.offer(readings)

    def end_all(self) -> None:
        for tap in self._open:
            tap.end()
