"""The simulated building source: readings mode and P1 pseudo-terminals."""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from datetime import datetime

import pytest
import serial
from dsmr_parser import telegram_specifications
from dsmr_parser.parsers import TelegramParser

from koprogo_node.config.model import SimulatedSource
from koprogo_node.core.clock import Clock
from koprogo_node.core.readings import Kind, Reading
from koprogo_node.drivers.simulated import (
    SimulatedBuilding,
    load_profiles,
    sensor_names,
    start_time,
)
from koprogo_node.errors import ConfigError
from koprogo_node.sim import BRUSSELS
from koprogo_node.sim.profile import compute_year_profile, has_profile, year_profile

from ..fakes import FakeSink

WALL_TS = datetime(2025, 3, 12, 15, 40, tzinfo=BRUSSELS).timestamp()


class FakeBatchSink(FakeSink):
    """A sink that also takes a batch of readings as one delivery."""

    def __init__(self, limit: int | None = None) -> None:
        super().__init__(limit)
        self.batches: list[int] = []

    async def put_many(self, readings: list[Reading]) -> None:
        self.batches.append(len(readings))
        for reading in readings:
            await self.put(reading)


def fixed_clock() -> Clock:
    """A trusted clock stopped at WALL_TS."""
    return Clock(
        wall=lambda: WALL_TS, mono=time.monotonic, is_synchronised=lambda: True
    )


async def stop(task: asyncio.Task[None]) -> None:
    """Cancel a source's task and wait until it has cleaned up."""
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def read_telegram(path: str, timeout_s: float = 5.0) -> bytes:
    """Read from a P1 device until one whole telegram (through CRC) arrived."""
    buffer = b""
    deadline = time.monotonic() + timeout_s
    with serial.Serial(path, baudrate=115200, timeout=0.05) as port:
        while time.monotonic() < deadline:
            buffer += port.read(4096)
            start = buffer.find(b"/")
            end = buffer.find(b"!", start)
            if start >= 0 and end >= 0 and len(buffer) >= end + 7:
                return buffer[start : end + 7]
    raise AssertionError(f"no complete telegram on {path}")


def test_start_defaults_to_yesterday_midnight_in_brussels() -> None:
    """With no start, simulated time begins yesterday at 00:00 local time."""
    config = SimulatedSource()

    assert (
        start_time(config, WALL_TS)
        == datetime(2025, 3, 11, tzinfo=BRUSSELS).timestamp()
    )


def test_naive_start_is_brussels_time() -> None:
    """A start without offset is read as Brussels wall time."""
    config = SimulatedSource(start="2025-07-01T06:00")

    assert (
        start_time(config, WALL_TS)
        == datetime(2025, 7, 1, 6, tzinfo=BRUSSELS).timestamp()
    )


def test_bad_start_is_a_config_error() -> None:
    """A start that is not ISO fails when the source is made, naming the key."""
    with pytest.raises(ConfigError, match="start of source 'sim'"):
        SimulatedBuilding(SimulatedSource(start="yesterday"))


def test_sensor_count_is_five_per_lot_plus_two_plus_gauges() -> None:
    """The documented formula: 5 * lots + 2 + extra_gauges sensors."""
    config = SimulatedSource(lots=12, extra_gauges=7, heating="heat", name="b")

    names = sensor_names(config)

    assert len(names) == 5 * 12 + 2 + 7
    assert names[:5] == (
        "b.lot01.import_t1",
        "b.lot01.import_t2",
        "b.lot01.export_t1",
        "b.lot01.export_t2",
        "b.lot01.power_import",
    )
    assert names[60:63] == ("b.water", "b.heat", "b.gauge01")
    assert len(set(names)) == len(names)


async def test_readings_mode_yields_every_sensor_at_each_tick() -> None:
    """Each tick brings one reading per documented sensor, all at one stamp."""
    config = SimulatedSource(
        emit="readings",
        lots=3,
        extra_gauges=4,
        speed=6000,
        step_s=60,
        start="2025-01-14T00:00",
    )
    per_tick = 5 * 3 + 2 + 4
    sink = FakeSink(limit=4 * per_tick)
    task = asyncio.create_task(SimulatedBuilding(config).run(sink, fixed_clock()))

    await asyncio.wait_for(sink.full.wait(), 10)
    await stop(task)

    start = datetime(2025, 1, 14, tzinfo=BRUSSELS).timestamp()
    stamps = Counter(reading.ts for reading in sink.readings)
    assert stamps == {start + 60 * n: per_tick for n in range(4)}
    first_tick = sink.readings[:per_tick]
    assert [r.sensor for r in first_tick] == list(sensor_names(config))
    assert all(r.clock_trusted and r.mono_s is None for r in sink.readings)


async def test_a_tick_is_one_delivery_when_the_sink_takes_batches() -> None:
    """A sink with put_many gets each tick's readings in one call."""
    config = SimulatedSource(emit="readings", lots=2, extra_gauges=3, speed=6000)
    sink = FakeBatchSink(limit=3 * 15)
    task = asyncio.create_task(SimulatedBuilding(config).run(sink, fixed_clock()))

    await asyncio.wait_for(sink.full.wait(), 10)
    await stop(task)

    assert sink.batches == [15, 15, 15]


async def test_readings_have_units_and_kinds() -> None:
    """Registers are counters in kWh, m3 or GJ; power and gauges are gauges."""
    config = SimulatedSource(
        emit="readings", lots=1, extra_gauges=1, speed=6000, heating="heat"
    )
    sink = FakeSink(limit=8)
    task = asyncio.create_task(SimulatedBuilding(config).run(sink, fixed_clock()))

    await asyncio.wait_for(sink.full.wait(), 10)
    await stop(task)

    kinds = {r.sensor: (r.unit, r.kind) for r in sink.readings}
    assert kinds == {
        "sim.lot01.import_t1": ("kWh", Kind.COUNTER),
        "sim.lot01.import_t2": ("kWh", Kind.COUNTER),
        "sim.lot01.export_t1": ("kWh", Kind.COUNTER),
        "sim.lot01.export_t2": ("kWh", Kind.COUNTER),
        "sim.lot01.power_import": ("kW", Kind.GAUGE),
        "sim.water": ("m3", Kind.COUNTER),
        "sim.heat": ("GJ", Kind.COUNTER),
        "sim.gauge01": ("degC", Kind.GAUGE),
    }


async def test_ticks_follow_speed_on_the_loop_clock() -> None:
    """At speed 600 and 60 s steps a tick comes every 0.1 s."""
    config = SimulatedSource(emit="readings", lots=1, speed=600, step_s=60)
    source = SimulatedBuilding(config)
    task = asyncio.create_task(source.run(FakeSink(), fixed_clock()))
    while source.ticks == 0:  # the load profile is still being computed
        await asyncio.sleep(0.01)

    await asyncio.sleep(1.0)
    await stop(task)

    assert 10 <= source.ticks <= 12


async def test_profiles_computed_in_a_child_match_the_local_ones() -> None:
    """A year's load profile from the child process equals one made here."""
    year = 2031
    assert not has_profile(year)

    await load_profiles((year,))

    assert has_profile(year)
    assert year_profile(year) == compute_year_profile(year)


async def test_p1_mode_serves_a_valid_telegram_on_every_device_path() -> None:
    """Each lot and the common parts get a pty carrying CRC-valid telegrams."""
    config = SimulatedSource(emit="p1", lots=2, speed=1200, step_s=60)
    source = SimulatedBuilding(config)
    sink = FakeSink()
    task = asyncio.create_task(source.run(sink, fixed_clock()))
    paths = await asyncio.wait_for(source.wait_device_paths(), 10)
    parser = TelegramParser(
        telegram_specifications.BELGIUM_FLUVIUS, apply_checksum_validation=True
    )

    raw = {
        key: await asyncio.to_thread(read_telegram, path) for key, path in paths.items()
    }
    await stop(task)

    assert sorted(paths) == ["common", "lot01", "lot02"]
    assert all(path.startswith("/dev/") for path in paths.values())
    telegrams = {
        key: parser.parse(data.decode("latin-1"), throw_ex=True)
        for key, data in raw.items()
    }
    assert telegrams["lot01"].ELECTRICITY_USED_TARIFF_1.unit == "kWh"
    water = telegrams["common"].get_mbus_device_by_channel(2)
    assert water.MBUS_DEVICE_TYPE.value == 7
    assert sink.readings == []


def hung_up(fd: int) -> bool:
    """Whether a terminal's other end is gone: reads end instead of waiting."""
    for _ in range(1000):
        try:
            if not os.read(fd, 65536):
                return True
        except BlockingIOError:
            return False
    return False


async def test_p1_terminals_close_when_cancelled() -> None:
    """Cancelling the source closes its ptys: an attached reader sees hang-up."""
    source = SimulatedBuilding(SimulatedSource(emit="p1", lots=1, speed=600))
    task = asyncio.create_task(source.run(FakeSink(), fixed_clock()))
    paths = await asyncio.wait_for(source.wait_device_paths(), 10)
    flags = os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK
    readers = [os.open(path, flags) for path in paths.values()]

    try:
        await stop(task)

        assert source.device_paths == {}
        assert all(hung_up(fd) for fd in readers)
    finally:
        for fd in readers:
            os.close(fd)


async def test_unread_terminal_drops_telegrams_instead_of_blocking() -> None:
    """With no reader, full ptys drop telegrams while ticks keep coming."""
    config = SimulatedSource(emit="p1", lots=2, speed=60_000, step_s=60)
    source = SimulatedBuilding(config)
    task = asyncio.create_task(source.run(FakeSink(), fixed_clock()))
    await asyncio.wait_for(source.wait_device_paths(), 10)

    await asyncio.sleep(0.5)
    ticks = source.ticks
    dropped = source.dropped
    await stop(task)

    assert ticks > 100
    assert all(count > 0 for count in dropped.values())
    assert sorted(dropped) == ["common", "lot01", "lot02"]
