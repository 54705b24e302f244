"""Consumption from cumulative counters; never negative.

A counter that goes backwards is one of three things:

- a wrap-around: the register has a known limit (`wrap_at`), the previous
  value was in its top tenth and the new one in its bottom tenth; the
  consumption is what was left to the limit plus the new value;
- a reset (meter replaced, register cleared): the new value is below half of
  the previous one; the meter restarted near zero, so the consumption since
  is the new value itself and it becomes the new baseline;
- a small step back (a glitch or a rounding change): consumption 0, and the
  baseline stays at the previous, higher value so the next increase is not
  counted twice.
"""

from __future__ import annotations

from dataclasses import dataclass

WRAP_BAND = 0.1
RESET_RATIO = 0.5


@dataclass(frozen=True, slots=True)
class Step:
    """What one new counter value means against the baseline."""

    delta: float
    baseline: float
    anomaly: str | None = None  # "counter_wrap", "counter_reset", "counter_backwards"


def counter_step(baseline: float, value: float, wrap_at: float | None = None) -> Step:
    """Return the consumption between `baseline` and `value`."""
    if value >= baseline:
        return Step(delta=value - baseline, baseline=value)
    if (
        wrap_at
        and baseline >= (1 - WRAP_BAND) * wrap_at
        and value <= WRAP_BAND * wrap_at
    ):
        return Step(
            delta=wrap_at - baseline + value, baseline=value, anomaly="counter_wrap"
        )
    if value < RESET_RATIO * baseline:
        return Step(delta=value, baseline=value, anomaly="counter_reset")
    return Step(delta=0.0, baseline=baseline, anomaly="counter_backwards")
