"""The checks every reading passes before it is stored.

Order: value is a number, stamp is plausible, channel keeps its kind and
unit, stamp moves forward, then counter arithmetic. A reading that fails is
returned as a reason and never stored; one whose counter went backwards is
stored with its anomaly noted, since its value is real.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

from .counters import counter_step
from .readings import Kind, Quality, Reading

EARLIEST_TS = (
    946_684_800.0  # 2000-01-01: older stamps come from a clock that lost power
)
FUTURE_SLACK_S = 86_400.0
# Meter registers have at most a few decimals; rounding the difference drops
# binary noise such as 0.0049999999999954525 for 0.005.
DELTA_DIGITS = 9
ALREADY_STORED = "already_stored"  # counted, but not a fault: logged at DEBUG


# Verdicts are named tuples: one is made per reading on the hot path, and a
# tuple is several times cheaper to build than a frozen dataclass.
class Accepted(NamedTuple):
    """A reading that passed, with what the ledger stores beside it."""

    reading: Reading
    delta: float | None  # consumption since the previous value, counters only
    quality: Quality
    anomaly: str | None = None


class Refused(NamedTuple):
    """A reading that failed a check."""

    reading: Reading
    reason: str
    detail: str


@dataclass(slots=True)
class ChannelState:
    """What the rules remember of one channel."""

    kind: Kind
    unit: str
    last_ts: float | None = None
    baseline: float | None = None
    last_value: float | None = None


class IngestRules:
    """Applies the checks; holds the last stamp and counter baseline per channel."""

    def __init__(self) -> None:
        self.channels: dict[str, ChannelState] = {}

    def restore(self, sensor: str, state: ChannelState) -> None:
        """Seed a channel's state from storage after a restart."""
        self.channels[sensor] = state

    def check(self, reading: Reading, now: float) -> Accepted | Refused:
        """Return what to do with `reading`, updating the channel's state."""
        problem = _value_problem(reading, now)
        if problem:
            return Refused(reading, *problem)
        state = self.channels.get(reading.sensor)
        if state is None:
            state = self.channels[reading.sensor] = ChannelState(
                reading.kind, reading.unit
            )
        if reading.kind is not state.kind or reading.unit != state.unit:
            return Refused(reading, *_channel_problem(reading, state))
        if reading.clock_trusted:
            # An untrusted stamp may lie anywhere (a clock restored to last
            # shutdown); it is stored flagged and does not move the channel.
            last_ts = state.last_ts
            if last_ts is not None and reading.ts <= last_ts:
                return Refused(reading, *_order_problem(reading, state))
            state.last_ts = reading.ts
            state.last_value = reading.value
        return _accept(reading, state)


def _value_problem(reading: Reading, now: float) -> tuple[str, str] | None:
    value, ts = reading.value, reading.ts
    if value.__class__ is not float and not isinstance(value, (int, float)):
        return "not_a_number", f"value {value!r}"
    if not math.isfinite(value):
        return "not_a_number", f"value {value!r}"
    # `not <=` also catches NaN, which compares false with everything.
    if not EARLIEST_TS <= ts <= now + FUTURE_SLACK_S:
        if ts > now + FUTURE_SLACK_S and reading.clock_trusted:
            return "future_timestamp", f"stamp {ts!r} is more than a day ahead"
        if not EARLIEST_TS <= ts:
            return "bad_timestamp", f"stamp {ts!r} is not a time after 2000"
    return None


def _channel_problem(reading: Reading, state: ChannelState) -> tuple[str, str]:
    return (
        "channel_changed",
        f"{reading.kind}/{reading.unit} for a {state.kind}/{state.unit} channel",
    )


def _order_problem(reading: Reading, state: ChannelState) -> tuple[str, str]:
    if reading.ts == state.last_ts and reading.value == state.last_value:
        # A device re-sending what it sent before (a meter's monthly peak
        # after a restart): nothing is lost by not storing it twice.
        return ALREADY_STORED, f"stamp {reading.ts!r} and value stored already"
    if reading.ts == state.last_ts:
        return "duplicate_timestamp", f"stamp {reading.ts!r} seen already"
    return "out_of_order", f"stamp {reading.ts!r} before {state.last_ts!r}"


_OK, _UNSYNCED, _COUNTER = Quality.OK, Quality.CLOCK_UNSYNCED, Kind.COUNTER


def _accept(reading: Reading, state: ChannelState) -> Accepted:
    quality = reading.quality
    if not reading.clock_trusted and quality is _OK:
        quality = _UNSYNCED
    if reading.kind is not _COUNTER:
        return Accepted(reading, None, quality)
    if reading.value < 0:
        return Accepted(reading, None, Quality.OUT_OF_RANGE, "negative_counter")
    baseline = state.baseline
    if baseline is None:
        state.baseline = reading.value
        return Accepted(reading, 0.0, quality)
    if reading.value >= baseline:  # the usual case, without building a Step
        state.baseline = reading.value
        return Accepted(reading, round(reading.value - baseline, DELTA_DIGITS), quality)
    step = counter_step(baseline, reading.value)
    state.baseline = step.baseline
    return Accepted(reading, round(step.delta, DELTA_DIGITS), quality, step.anomaly)
