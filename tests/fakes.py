"""Test doubles shared by the driver tests."""

import asyncio

from koprogo_node.core.readings import Reading, Reject


class FakeSink:
    """Collects readings; blocks for ever once `limit` readings arrived."""

    def __init__(self, limit: int | None = None, stored: dict | None = None) -> None:
        self.stored = stored or {}
        self.readings: list[Reading] = []
        self.rejects: list[Reject] = []
        self.limit = limit
        self.full = asyncio.Event()

    async def put(self, reading: Reading) -> None:
        self.readings.append(reading)
        if self.limit is not None and len(self.readings) >= self.limit:
            self.full.set()
            await asyncio.Event().wait()

    async def put_many(self, readings: list[Reading]) -> None:
        for reading in readings:
            await self.put(reading)

    def reject(self, reject: Reject) -> None:
        self.rejects.append(reject)

    def last_value(self, sensor: str) -> float | None:
        return self.stored.get(sensor)
