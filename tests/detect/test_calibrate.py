"""Per-meter thresholds from the meter's own history."""

import numpy as np

from koprogo_node.detect.calibrate import (
    MIN_WATER_HISTORY_DAYS,
    WaterSettings,
    calibrate_water,
    profile_armed,
    water_rules,
    weekday_hour_profile,
)
from koprogo_node.detect.rules import NightFlow
from koprogo_node.detect.series import HOUR_S, Grid

DAY0 = 1_700_006_400.0


def days_of(day: list[float], days: int) -> Grid:
    """A grid repeating one day."""
    return Grid(DAY0 + HOUR_S, HOUR_S, np.tile(np.array(day, dtype=float), days))


DRY_NIGHTS = [0] * 6 + [20, 5, 0, 3, 0, 10, 0, 4, 0, 0, 2, 8, 30, 6, 0, 3, 0, 0]


def test_not_armed_before_minimum_history():
    """Thirteen days are not enough; fourteen are."""
    short = calibrate_water(days_of(DRY_NIGHTS, MIN_WATER_HISTORY_DAYS - 1))
    enough = calibrate_water(days_of(DRY_NIGHTS, MIN_WATER_HISTORY_DAYS))

    assert not short.armed and water_rules(short) == []
    assert enough.armed and 4 == len(water_rules(enough))


def test_dry_nights_give_the_floor_threshold():
    """A household whose nights are dry gets the 0.5 L/h floor."""
    cal = calibrate_water(days_of(DRY_NIGHTS, 21))

    assert 0.5 == cal.night_threshold_l_h
    assert 0.5 == cal.sustained_threshold_l_h


def test_habitual_night_use_raises_the_threshold():
    """A meter whose nights always show 3 L/h learns a threshold of 3 L/h."""
    nights = [3] * 6 + DRY_NIGHTS[6:]
    cal = calibrate_water(days_of(nights, 21))

    assert 3.0 == cal.night_threshold_l_h
    rule = next(r for r in water_rules(cal) if isinstance(r, NightFlow))
    assert not rule.flags(days_of(nights, 2)).any()


def test_burst_limit_follows_the_peaks():
    """The burst limit is the usual peak times the burst factor, with a floor."""
    small = calibrate_water(days_of(DRY_NIGHTS, 21), WaterSettings(burst_factor=2.0))
    big = [v * 10 for v in DRY_NIGHTS]

    assert 60.0 == small.burst_limit_l_h
    assert 480.0 == calibrate_water(days_of(big, 21)).burst_limit_l_h


def test_profile_needs_three_weeks():
    """The weekday-hour profile arms after three samples per slot."""
    day = list(range(24))

    assert not profile_armed(weekday_hour_profile(days_of(day, 14)))
    profile = weekday_hour_profile(days_of(day, 21))
    assert profile_armed(profile)
    assert 13.0 == profile.median[2, 13]
    assert 0.0 == profile.mad[2, 13]
