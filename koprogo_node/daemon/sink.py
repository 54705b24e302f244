"""The ingest queue as seen by one source."""

from __future__ import annotations

import asyncio
import time
from typing import Callable

import structlog

from ..core.readings import Reading, Reject
from ..ledger.stats import IngestStats
from .supervisor import SourceHealth
from .taps import Taps

log = structlog.get_logger(__name__)


class IngestSink:
    """Delivers one source's readings to the writer's bounded queue."""

    def __init__(
        self,
        queue: asyncio.Queue[list[Reading] | None],
        stats: IngestStats,
        health: SourceHealth,
        latest: dict[str, Reading],
        last_stored: Callable[[str], float | None] = lambda sensor: None,
        taps: Taps | None = None,
    ) -> None:
        self._queue = queue
        self._stats = stats
        self._health = health
        self._latest = latest
        self._last_stored = last_stored
        self._taps = taps

    async def put(self, reading: Reading) -> None:
        """Queue a reading; waits while the writer is behind (back-pressure)."""
        await self.put_many([reading])

    async def put_many(self, readings: list[Reading]) -> None:
        """Queue readings taken together as one item of the queue."""
        if not readings:
            return
        if self._health.failing_since is not None:
            self._note_back()
        latest = self._latest
        for reading in readings:
            latest[reading.sensor] = reading
        if self._taps is not None:
            self._taps.offer(readings)
        try:
            self._queue.put_nowait(readings)
        except asyncio.QueueFull:
            await self._queue.put(readings)

    def _note_back(self) -> None:
        health = self._health
        log.info(
            "source_back",
            source=health.name,
            offline_s=round(time.time() - health.failing_since, 1),
        )
        health.failing_since = None
        health.last_error = ""
        health.state = "running"

    def last_value(self, sensor: str) -> float | None:
        """The channel's last value accepted by the ledger (None if unknown)."""
        return self._last_stored(sensor)

    def reject(self, reject: Reject) -> None:
        """Count input the source could not turn into a reading."""
        self._stats.reject(reject.sensor or reject.source, reject.reason, reject.detail)
