"""A ledger writer on a fresh temporary directory, fed by plain lists."""

import asyncio
import time

import pytest

from koprogo_node.config.model import LedgerConfig
from koprogo_node.core.clock import Clock
from koprogo_node.core.readings import Kind, Reading
from koprogo_node.ledger.stats import IngestStats
from koprogo_node.ledger.writer import LedgerWriter

T0 = 1_780_012_800.0  # a UTC midnight


class FakeClock(Clock):
    """A clock whose trust a test switches on."""

    def __init__(self, trusted=True, wall=None):
        self.trust_now = trusted
        self.wall_s = wall or time.time()
        super().__init__(lambda: self.wall_s, time.monotonic, lambda: self.trust_now)


async def write(data_dir, readings, clock=None, boot="boot-a", batch_rows=100):
    """Commit `readings` through a real writer and return it (closed)."""
    writer = LedgerWriter(
        data_dir,
        LedgerConfig(batch_rows=batch_rows, batch_ms=50),
        clock or FakeClock(),
        boot,
        IngestStats(),
    )
    await writer.open()
    queue = asyncio.Queue()
    task = asyncio.create_task(writer.run(queue))
    for reading in readings:
        await queue.put([reading])
    await queue.put(None)
    await task
    await writer.close()
    return writer


def meter_series(n, start=T0, sensors=4, step_s=60.0):
    """Counters climbing 0.25 per step and a gauge, on `sensors` channels."""
    out = []
    for i in range(n):
        for s in range(sensors):
            kind = Kind.COUNTER if s % 2 == 0 else Kind.GAUGE
            unit = "kWh" if kind is Kind.COUNTER else "kW"
            out.append(
                Reading(f"b.lot{s}.x", start + i * step_s, 100 + i * 0.25, unit, kind)
            )
    return out


@pytest.fixture
def data_dir(tmp_path):
    path = tmp_path / "data"
    path.mkdir()
    return path
