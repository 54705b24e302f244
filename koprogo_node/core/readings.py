"""The values that flow from drivers to the ledger."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Kind(enum.StrEnum):
    """How a channel's values relate over time."""

    COUNTER = "counter"  # cumulative (kWh, m3, pulses): consumption is the delta
    GAUGE = "gauge"  # instantaneous (W, L/min, degC)


class Quality(enum.IntEnum):
    """Trust in one stored reading; anything but OK stays out of sums."""

    OK = 0
    ESTIMATED = 1
    CLOCK_UNSYNCED = 2
    OUT_OF_RANGE = 3
    STALE = 4


@dataclass(frozen=True, slots=True)
class Reading:
    """One value of one channel at one instant.

    `ts` is Unix time in seconds. When the stamping clock was not trusted,
    `clock_trusted` is False and `mono_s` holds the monotonic clock at the same
    instant, so the stamp can be corrected once the wall clock is trusted.
    """

    sensor: str
    ts: float
    value: float
    unit: str
    kind: Kind
    quality: Quality = Quality.OK
    clock_trusted: bool = True
    mono_s: float | None = None


@dataclass(frozen=True, slots=True)
class Reject:
    """Input that could not become a reading, kept for counting and display."""

    source: str
    reason: str
    detail: str = ""
    sensor: str | None = None
