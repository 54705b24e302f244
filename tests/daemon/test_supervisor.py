"""A failing source is restarted with back-off and logged on transitions only."""

import asyncio

import structlog

from koprogo_node.core.clock import Clock
from koprogo_node.core.readings import Kind, Reading
from koprogo_node.daemon.supervisor import Backoff, SourceHealth, supervise
from koprogo_node.errors import SensorUnavailable

from ..fakes import FakeSink


class FlakySource:
    """Fails `failures` times with the same error, then delivers and ends."""

    name = "flaky"

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.runs = 0

    async def run(self, sink, clock) -> None:
        self.runs += 1
        if self.runs <= self.failures:
            raise SensorUnavailable("cannot open /dev/ttyUSB9")
        await sink.put(Reading("flaky.x", 1.8e9, 1.0, "W", Kind.GAUGE))


def test_backoff_doubles_to_its_cap_and_resets():
    """Delays double from the initial one up to the cap, and restart after reset."""
    backoff = Backoff(initial_s=1.0, max_s=8.0)

    delays = [backoff.next_delay_s() for _ in range(6)]
    backoff.reset()

    for delay, base in zip(delays, [1, 2, 4, 8, 8, 8]):
        assert 0.8 * base <= delay <= 1.2 * base
    assert backoff.next_delay_s() <= 1.2


async def test_failing_source_is_retried_and_warned_once():
    """Three failures in a row: restarted each time, one warning logged."""
    source = FlakySource(failures=3)
    health = SourceHealth("flaky")
    sink = FakeSink()
    clock = Clock(lambda: 1.8e9, lambda: 0.0, lambda: True)

    with structlog.testing.capture_logs() as logs:
        await asyncio.wait_for(
            supervise(source, sink, clock, health, Backoff(0.01, 0.05)), 5
        )

    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert source.runs == 4
    assert health.restarts == 3
    assert health.state == "finished"
    assert [e["event"] for e in warnings] == ["source_failed"]
    assert len(sink.readings) == 1
