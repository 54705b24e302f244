"""Synthetic leak injection, as water utilities test leak detection.

A leak of L litres per hour is a constant flow added from its start onwards,
to every reading in proportion to the part of its span after the start. Draws
come from a caller's seeded `numpy.random.Generator`, so runs repeat exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from koprogo_node.detect.series import HOUR_S, Series


@dataclass(frozen=True)
class Injection:
    """A constant leak starting at `start_ts`."""

    start_ts: float
    litres_per_hour: float


def inject_leak(series: Series, leak: Injection) -> Series:
    """Return the series with the leak's flow added to every affected reading."""
    span_start = series.ts - series.spans_s
    leaking_s = np.clip(series.ts - np.maximum(span_start, leak.start_ts), 0, None)
    added = leak.litres_per_hour * leaking_s / HOUR_S
    return Series(series.ts, series.values + added, series.spans_s, series.unit)


def draw_starts(
    rng: np.random.Generator,
    series: Series,
    count: int,
    *,
    history_h: float,
    horizon_h: float,
) -> np.ndarray:
    """Draw leak start stamps on whole hours, leaving history before and room after."""
    first = np.ceil((series.ts[0] + history_h * HOUR_S) / HOUR_S)
    last = np.floor((series.ts[-1] - horizon_h * HOUR_S) / HOUR_S)
    if last < first:
        raise ValueError(
            f"series too short for {history_h} h history and {horizon_h} h horizon"
        )
    return rng.integers(int(first), int(last) + 1, size=count) * HOUR_S
