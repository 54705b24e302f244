"""What every source offers the daemon, and what the daemon offers a source."""

from __future__ import annotations

from typing import Protocol

from ..core.clock import Clock
from ..core.readings import Reading, Reject


class Sink(Protocol):
    """Where a source delivers its output (the daemon's ingest queue)."""

    async def put(self, reading: Reading) -> None:
        """Queue one reading; waits when the queue is full (back-pressure)."""

    async def put_many(self, readings: list[Reading]) -> None:
        """Queue readings taken together (one telegram, one poll) as one item."""

    def reject(self, reject: Reject) -> None:
        """Count input that could not become a reading."""

    def last_value(self, sensor: str) -> float | None:
        """The channel's last stored value, for counters kept by the driver
        (GPIO pulses), so that a restart resumes instead of rewinding."""


class Source(Protocol):
    """A running producer of readings.

    `run` delivers readings until the input ends (a file) or forever (a
    device). It raises `SensorUnavailable` when the device cannot be read; the
    supervisor then restarts it with back-off. Cancellation must propagate.
    """

    name: str

    async def run(self, sink: Sink, clock: Clock) -> None:
        """Produce readings into `sink`, stamping with `clock` when needed."""
