"""GPIO pulses: debounced in our code, resumed after a restart, never rewound."""

import asyncio
import time

import pytest
from gpiozero.pins.mock import MockFactory

from koprogo_node.config.model import GpioPulseSource
from koprogo_node.core.clock import Clock
from koprogo_node.drivers.gpio_pulse import Debouncer, GpioPulseCounter

from ..fakes import FakeSink


def test_contact_bounce_counts_once():
    """A closing contact's bounces within the window make one pulse."""
    debouncer = Debouncer(debounce_s=0.02)

    counted = [debouncer.edge(t) for t in (1.000, 1.001, 1.003, 1.008, 1.015)]

    assert counted == [True, False, False, False, False]
    assert (debouncer.pulses, debouncer.bounces) == (1, 4)


def test_fast_pulse_train_is_counted_in_full():
    """A 40 Hz S0 train (25 ms apart) with a 20 ms window loses no pulse."""
    debouncer = Debouncer(debounce_s=0.02)

    for i in range(400):
        debouncer.edge(10.0 + i * 0.025)

    assert debouncer.pulses == 400


class Rig:
    """A pulse counter on a mock pin, with a clock the test moves."""

    def __init__(self, stored=None, **config):
        self.factory = MockFactory()
        self.now = 100.0
        config = {"report_s": 0.05, **config}
        cfg = GpioPulseSource(
            pin=17,
            pulses_per_unit=1000.0,
            unit="kWh",
            channel="s0",
            name="meter",
            **config,
        )
        self.counter = GpioPulseCounter(
            cfg, pin_factory=self.factory, monotonic=lambda: self.now
        )
        self.sink = FakeSink(stored=stored)
        self.clock = Clock(time.time, time.monotonic, lambda: True)

    def pulse(self, at_s, bounces=0):
        pin = self.factory.pin(17)
        for k in range(bounces + 1):
            self.now = at_s + k * 0.002
            pin.drive_low()  # pull-up: the contact closes to ground...
            pin.drive_high()  # ...and opens again
        # the active edge of a pull-up input is the fall; gpiozero inverts it


async def run_for(rig, seconds):
    task = asyncio.create_task(rig.counter.run(rig.sink, rig.clock))
    await asyncio.sleep(seconds)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_bouncing_pulses_on_a_mock_pin_count_once_each():
    """Ten pulses with three bounces each add 10 Wh, not 40."""
    rig = Rig(debounce_ms=20)
    task = asyncio.create_task(rig.counter.run(rig.sink, rig.clock))
    await asyncio.sleep(0.01)
    for i in range(10):
        rig.pulse(at_s=200.0 + i, bounces=3)
    await asyncio.sleep(0.12)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert rig.counter.debouncer.pulses == 10
    assert rig.sink.readings[-1].value == pytest.approx(0.010)
    assert rig.sink.readings[-1].sensor == "meter.s0"


async def test_restart_resumes_from_the_stored_count():
    """After a restart the counter continues from the ledger's last value."""
    rig = Rig(stored={"meter.s0": 1234.5})
    task = asyncio.create_task(rig.counter.run(rig.sink, rig.clock))
    await asyncio.sleep(0.01)
    rig.pulse(at_s=300.0)
    await asyncio.sleep(0.12)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    values = [r.value for r in rig.sink.readings]
    assert values[-1] == pytest.approx(1234.501)
    assert min(values) >= 1234.5  # never below what was stored: no rewind


async def test_clean_stop_reports_the_pulses_since_the_last_report():
    """Cancelling between reports still delivers the latest count."""
    rig = Rig(report_s=60.0)
    task = asyncio.create_task(rig.counter.run(rig.sink, rig.clock))
    await asyncio.sleep(0.01)
    for i in range(3):
        rig.pulse(at_s=400.0 + i)
    await asyncio.sleep(0.01)

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert [r.value for r in rig.sink.readings] == [pytest.approx(0.003)]
