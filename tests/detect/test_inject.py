"""Leak injection is exact, seeded and repeatable."""

import numpy as np
import pytest

from koprogo_node.detect.inject import Injection, draw_starts, inject_leak
from koprogo_node.detect.series import HOUR_S, Series

T0 = 1_700_006_400.0


def trace(hours: int = 200) -> Series:
    """An hourly series of zeros."""
    return Series.from_values(T0 + HOUR_S * np.arange(1, hours + 1), np.zeros(hours))


def test_leak_adds_its_rate_from_the_start():
    """Readings ending after the start gain the leak, earlier ones do not."""
    leaked = inject_leak(trace(5), Injection(T0 + 2 * HOUR_S, 5.0))

    assert [0, 0, 5, 5, 5] == leaked.values.tolist()


def test_leak_fills_a_multi_hour_reading_by_its_span():
    """A reading covering three leaking hours gains three hours of leak."""
    series = Series.from_values(T0 + HOUR_S * np.array([1, 4, 5]), [0, 0, 0])

    leaked = inject_leak(series, Injection(T0 + 0.5 * HOUR_S, 2.0))

    assert [1, 6, 2] == leaked.values.tolist()


def test_starts_are_seeded_and_repeatable():
    """The same seed draws the same whole-hour starts; another seed differs."""
    one = draw_starts(np.random.default_rng(7), trace(), 20, history_h=48, horizon_h=24)
    two = draw_starts(np.random.default_rng(7), trace(), 20, history_h=48, horizon_h=24)
    other = draw_starts(
        np.random.default_rng(8), trace(), 20, history_h=48, horizon_h=24
    )

    assert one.tolist() == two.tolist()
    assert one.tolist() != other.tolist()
    assert np.all(one % HOUR_S == 0)
    assert one.min() >= T0 + 48 * HOUR_S
    assert one.max() <= T0 + (200 - 24) * HOUR_S


def test_too_short_series_is_refused():
    """A trace shorter than history plus horizon cannot host a leak."""
    with pytest.raises(ValueError, match="too short"):
        draw_starts(np.random.default_rng(1), trace(10), 1, history_h=8, horizon_h=8)
