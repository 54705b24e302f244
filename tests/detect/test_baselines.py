"""Tests for the rolling z-score and seasonal-naive baselines."""

import numpy as np
import pytest

from koprogo_node.detect.baselines import robust_scale, rolling_zscore, seasonal_naive


@pytest.fixture
def daily_series() -> np.ndarray:
    """Two weeks of hourly values with a daily cycle and a little noise."""
    rng = np.random.default_rng(1)
    hours = np.arange(24 * 14)
    return 10 + 3 * np.sin(2 * np.pi * hours / 24) + rng.normal(0, 0.2, hours.size)


def test_rolling_zscore_flags_injected_spike(daily_series):
    """A +20 spike is flagged, and it is the only flag."""
    daily_series[200] += 20

    flags = rolling_zscore(daily_series, window=48, threshold=4.0)

    assert np.flatnonzero(flags).tolist() == [200]


def test_seasonal_naive_flags_injected_spike(daily_series):
    """The spike is flagged, and again one season later when it is the lag."""
    daily_series[200] += 20

    flags = seasonal_naive(daily_series, season=24, threshold=5.0)

    assert np.flatnonzero(flags).tolist() == [200, 224]


@pytest.mark.parametrize("detector", [rolling_zscore, seasonal_naive])
def test_nan_is_never_flagged(daily_series, detector):
    """Gaps stay unflagged, and the series around them is still scored."""
    daily_series[100:130] = np.nan
    daily_series[250] += 20

    flags = detector(daily_series, 24, 4.0)

    assert not flags[np.isnan(daily_series)].any()
    assert flags[250]


def test_rolling_zscore_needs_half_a_window_of_history():
    """No flag before half a window of valid history exists."""
    values = np.zeros(20)
    values[3] = 100.0

    assert not rolling_zscore(values, window=10).any()


def test_flat_series_is_never_flagged():
    """A constant series has zero residuals and no flags."""
    values = np.full(500, 45.0)

    assert not rolling_zscore(values).any()
    assert not seasonal_naive(values).any()


def test_robust_scale_falls_back_on_mostly_constant_values():
    """MAD of mostly equal values is 0; the mean deviation is used instead."""
    values = np.array([0.0] * 9 + [10.0])

    assert robust_scale(values) == pytest.approx(1.0)


def test_all_nan_series_gives_no_flags():
    """An empty or all-NaN series returns all False without warnings."""
    values = np.full(400, np.nan)

    assert not seasonal_naive(values).any()
    assert not rolling_zscore(values).any()
