"""Per-meter thresholds learnt from the meter's own recent history.

A rule arms only once its meter has enough history: `MIN_WATER_HISTORY_DAYS`
of observed hours for the water rules, `MIN_PROFILE_WEEKS` samples in every
weekday-hour for the profile rule. Before that the node shows readings but
raises no flow alert, because a threshold learnt from a few days would either
miss leaks or cry wolf.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from koprogo_node.detect.rules import (
    NIGHT_HOURS,
    Burst,
    NightFlow,
    SpanBurst,
    SustainedFlow,
    WeekHourProfile,
    night_run_minimum,
)
from koprogo_node.detect.series import HOUR_S, Grid

MIN_WATER_HISTORY_DAYS = 14
MIN_PROFILE_WEEKS = 3


@dataclass(frozen=True, kw_only=True)
class WaterSettings:
    """How water thresholds are learnt; defaults were tuned on household data."""

    night_hours: tuple[int, ...] = NIGHT_HOURS
    night_run_h: int = 4
    sustained_window_h: int = 21
    sustained_coverage: float = 0.6
    sustained_min_hourly: int = 6
    quantile: float = 0.99
    floor_l_h: float = 0.5
    burst_quantile: float = 0.999
    burst_factor: float = 1.6
    burst_floor_l_h: float = 60.0
    span_burst_days: int = 35
    span_burst_factor: float = 1.0
    min_history_days: int = MIN_WATER_HISTORY_DAYS


@dataclass(frozen=True)
class WaterCalibration:
    """Thresholds for one water meter, and whether they may be used yet."""

    armed: bool
    history_h: float
    night_threshold_l_h: float
    sustained_threshold_l_h: float
    burst_limit_l_h: float
    normal_max_l: float


def quantile_or(values: np.ndarray, q: float, default: float) -> float:
    """Quantile of the finite values, or `default` when there are none."""
    finite = values[np.isfinite(values)]
    return float(np.quantile(finite, q)) if len(finite) else default


def calibrate_water(
    history: Grid, settings: WaterSettings = WaterSettings()
) -> WaterCalibration:
    """Learn night, sustained-flow and burst thresholds from past cells."""
    rates = history.rates_per_hour()
    observed_h = float(np.sum(np.isfinite(rates))) * history.step_s / HOUR_S
    night = night_run_minimum(history, settings.night_hours, settings.night_run_h)
    sustained = sustained_minimum(history, settings)
    peak = quantile_or(rates, settings.burst_quantile, np.inf)
    return WaterCalibration(
        armed=observed_h >= 24 * settings.min_history_days,
        history_h=observed_h,
        night_threshold_l_h=max(
            settings.floor_l_h, quantile_or(night, settings.quantile, 0.0)
        ),
        sustained_threshold_l_h=max(
            settings.floor_l_h, quantile_or(sustained, settings.quantile, 0.0)
        ),
        burst_limit_l_h=max(settings.burst_floor_l_h, settings.burst_factor * peak),
        normal_max_l=quantile_or(history.values, settings.burst_quantile, np.inf),
    )


def sustained_rule(threshold_l_h: float, settings: WaterSettings) -> SustainedFlow:
    """The sustained-flow rule with these settings and threshold."""
    return SustainedFlow(
        threshold_l_h=threshold_l_h,
        window_h=settings.sustained_window_h,
        coverage=settings.sustained_coverage,
        min_hourly=settings.sustained_min_hourly,
    )


def sustained_minimum(grid: Grid, settings: WaterSettings) -> np.ndarray:
    """Lowest reading average over the sustained window (see `SustainedFlow`)."""
    return sustained_rule(0.0, settings).statistic(grid)


def water_rules(
    calibration: WaterCalibration, settings: WaterSettings = WaterSettings()
) -> list[NightFlow | SustainedFlow | Burst | SpanBurst]:
    """The leak rules with this meter's thresholds; empty until armed."""
    if not calibration.armed:
        return []
    return [
        NightFlow(
            threshold_l_h=calibration.night_threshold_l_h,
            night_hours=settings.night_hours,
            run_h=settings.night_run_h,
        ),
        sustained_rule(calibration.sustained_threshold_l_h, settings),
        Burst(threshold_l_h=calibration.burst_limit_l_h),
        span_burst_rule(settings),
    ]


def span_burst_rule(settings: WaterSettings) -> SpanBurst:
    """The multi-hour reading burst rule; it compares with the grid's own past."""
    return SpanBurst(
        history_days=settings.span_burst_days, factor=settings.span_burst_factor
    )


def weekday_hour_profile(history: Grid) -> WeekHourProfile:
    """Median and MAD of hourly consumption per weekday and hour of day."""
    rates = history.rates_per_hour()
    slot = history.weekday() * 24 + history.hour_of_day()
    median = np.full(168, np.nan)
    mad = np.full(168, np.nan)
    counts = np.zeros(168, dtype=np.int64)
    for s in range(168):
        values = rates[(slot == s) & np.isfinite(rates)]
        counts[s] = len(values)
        if len(values):
            median[s] = np.median(values)
            mad[s] = np.median(np.abs(values - median[s]))
    return WeekHourProfile(
        median.reshape(7, 24), mad.reshape(7, 24), counts.reshape(7, 24)
    )


def profile_armed(profile: WeekHourProfile) -> bool:
    """True once every weekday-hour has `MIN_PROFILE_WEEKS` samples."""
    return bool(np.min(profile.counts) >= MIN_PROFILE_WEEKS)


LEAK_PROBABILITY = 0.9  # the water-leak model's lowest alarm level


def day_windows(values: np.ndarray, hours: int) -> np.ndarray:
    """Every complete window of `hours` consecutive hourly values, hour by hour."""
    if len(values) < hours:
        return np.empty((0, hours))
    windows = np.lib.stride_tricks.sliding_window_view(values, hours)
    return windows[np.isfinite(windows).all(axis=1)]


def model_threshold(history_scores: np.ndarray) -> float | None:
    """This meter's alarm level for the model, or None if it cannot tell.

    The model was trained on households, whose nights are often at zero. A
    building's main meter rarely is: on such a meter the model scores most
    of the leak-free history as a leak, and is switched off for it.
    """
    if len(history_scores) < 24:
        return None
    usual = float(np.quantile(history_scores, 0.99))
    if usual >= LEAK_PROBABILITY:
        return None
    return max(LEAK_PROBABILITY, min(0.99, usual + 0.05))
