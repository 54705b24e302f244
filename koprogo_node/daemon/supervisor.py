"""Run each source as a task; restart a failed one with back-off.

A source's failure is logged when it starts failing and when it recovers,
not on every retry (repeats go to DEBUG).
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field

import structlog

from ..core.clock import Clock
from ..drivers.base import Sink, Source
from ..errors import SensorError

log = structlog.get_logger(__name__)


@dataclass
class Backoff:
    """Exponential back-off with jitter, reset after a success."""

    initial_s: float = 1.0
    max_s: float = 60.0
    _next_s: float = field(default=0.0, init=False)

    def next_delay_s(self) -> float:
        """Delay before the next attempt."""
        self._next_s = min(self.max_s, max(self.initial_s, self._next_s * 2))
        return self._next_s * random.uniform(0.8, 1.2)

    def reset(self) -> None:
        """Forget past failures."""
        self._next_s = 0.0


@dataclass
class SourceHealth:
    """Liveness of one source, for status and the API."""

    name: str
    state: str = "starting"  # running, failing, finished
    restarts: int = 0
    last_error: str = ""
    failing_since: float | None = None


# A source that ran this long before failing counts as having recovered.
HEALTHY_RUN_S = 30.0


async def supervise(
    source: Source,
    sink: Sink,
    clock: Clock,
    health: SourceHealth,
    backoff: Backoff | None = None,
) -> None:
    """Keep `source` running until it finishes or the task is cancelled."""
    backoff = backoff or Backoff()
    while True:
        health.state = "running"
        started = time.monotonic()
        try:
            await source.run(sink, clock)
        except SensorError as exc:
            _note_failure(health, str(exc), started, backoff)
        except Exception as exc:  # a bug in a driver must not stop the node
            log.error(
                "source_crashed",
                source=health.name,
                error=repr(exc),
                exc_info=health.state != "failing",
            )
            _note_failure(health, repr(exc), started, backoff)
        else:
            health.state = "finished"
            log.info("source_finished", source=health.name)
            return
        health.restarts += 1
        await asyncio.sleep(backoff.next_delay_s())


def _note_failure(
    health: SourceHealth, error: str, started: float, backoff: Backoff
) -> None:
    if time.monotonic() - started > HEALTHY_RUN_S:
        backoff.reset()
    first = health.failing_since is None or health.last_error != error
    health.last_error = error
    if health.failing_since is None:
        health.failing_since = time.time()
    health.state = "failing"
    emit = log.warning if first else log.debug
    emit("source_failed", source=health.name, error=error, restarts=health.restarts)
