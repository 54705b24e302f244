"""Live copies of incoming readings: filtered, bounded, never blocking ingest."""

import asyncio

from koprogo_node.core.readings import Kind, Reading
from koprogo_node.daemon.taps import TAP_QUEUE, Taps


def reading(sensor: str, value: float) -> Reading:
    return Reading(sensor, 1_790_000_000.0 + value, value, "m3", Kind.COUNTER)


async def test_a_tap_gets_only_the_channels_it_asked_for():
    taps = Taps()
    water = taps.open(["water"])
    everything = taps.open()

    taps.offer([reading("water", 1), reading("gas", 2)])

    assert ["water"] == [r.sensor for r in await water.next(1)]
    assert ["water", "gas"] == [r.sensor for r in await everything.next(1)]


async def test_a_slow_watcher_misses_readings_and_is_told_how_many():
    taps = Taps()
    slow = taps.open()

    for n in range(TAP_QUEUE + 5):
        taps.offer([reading("water", n), reading("water", n + 0.5)])

    assert 10 == slow.missed
    assert 0 == (await slow.next(1))[0].value


async def test_quiet_gives_an_empty_batch_and_the_end_gives_none():
    taps = Taps()
    tap = taps.open()

    quiet = await tap.next(0.05)
    taps.end_all()

    assert [] == quiet
    assert await asyncio.wait_for(tap.next(5), 1) is None


async def test_a_closed_tap_receives_nothing_more():
    taps = Taps()
    tap = taps.open()
    taps.close(tap)

    taps.offer([reading("water", 1)])

    assert [] == await tap.next(0.05)


async def test_a_new_tap_first_gets_the_recent_readings_it_asks_for():
    """What arrived before the watcher came (perhaps not committed yet)."""
    taps = Taps(recent=3)
    taps.offer([reading("water", n) for n in range(5)] + [reading("gas", 9)])

    water = taps.open(["water"])

    assert [3, 4] == [r.value for r in await water.next(1)]
