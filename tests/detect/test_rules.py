"""Detection rules on hand-made hourly series."""

import numpy as np

from koprogo_node.detect.calibrate import weekday_hour_profile
from koprogo_node.detect.rules import (
    BaseLoadCreep,
    Burst,
    ContinuousFlow,
    CounterJump,
    ImpossibleValue,
    NightFlow,
    ProfileDeviation,
    SilentMeter,
    SpanBurst,
    StuckMeter,
    SustainedFlow,
)
from koprogo_node.detect.series import HOUR_S, Grid, Series, clean, to_grid

DAY0 = 1_700_006_400.0  # 2023-11-15 00:00 UTC, a whole day


def household(days: int = 3) -> np.ndarray:
    """A dry night (00-06) and some daytime use, every day."""
    day = np.array([0] * 6 + [20, 5, 0, 3, 0, 10, 0, 4, 0, 0, 2, 8, 30, 6, 0, 3, 0, 0])
    return np.tile(day, days).astype(float)


def grid_of(values: np.ndarray) -> Grid:
    """A grid whose first cell covers 00:00-01:00 of DAY0."""
    return Grid(DAY0 + HOUR_S, HOUR_S, np.asarray(values, dtype=float))


def with_leak(values: np.ndarray, start: int, litres: float) -> np.ndarray:
    """Add a constant leak from cell `start` on."""
    leaked = values.copy()
    leaked[start:] += litres
    return leaked


def first_flag(flags: np.ndarray) -> int | None:
    """Index of the first flagged cell."""
    hits = np.flatnonzero(flags)
    return int(hits[0]) if len(hits) else None


def test_night_flow_fires_after_run_of_night_hours():
    """A 2 L/h leak from 20:00 is flagged at the end of the 4th night hour."""
    leaked = with_leak(household(), 20, 2)

    flags = NightFlow(threshold_l_h=0.5).flags(grid_of(leaked))

    assert 24 + 3 == first_flag(flags)


def test_night_flow_quiet_on_normal_household():
    """A household with dry nights raises nothing."""
    assert not NightFlow(threshold_l_h=0.5).flags(grid_of(household())).any()


def test_night_flow_never_fires_across_a_gap():
    """A gap in the night run gives no verdict."""
    leaked = with_leak(household(2), 20, 2)
    leaked[[25, 27]] = np.nan

    assert not NightFlow(threshold_l_h=0.5).flags(grid_of(leaked)).any()


def test_sustained_flow_fires_after_its_window():
    """A leak from 06:00 is flagged 21 hours later, before the night."""
    leaked = with_leak(household(), 6, 5)

    flags = SustainedFlow(threshold_l_h=0.5).flags(grid_of(leaked))

    assert 6 + 20 == first_flag(flags)
    assert 21 == SustainedFlow().delay_h


def test_sustained_flow_skips_a_few_gaps_but_not_many():
    """Gaps are skipped while 60 % of the window is observed, not beyond."""
    leaked = with_leak(household(), 6, 5)
    some = leaked.copy()
    some[10:14] = np.nan
    most = leaked.copy()
    most[8:20] = np.nan
    rule = SustainedFlow(threshold_l_h=0.5)

    assert 26 == first_flag(rule.flags(grid_of(some)))
    assert first_flag(rule.flags(grid_of(most))) > 26


def readings_of(values: np.ndarray, merged: list[tuple[int, int]]) -> Series:
    """Hourly readings of `values`, cells [a, b) of each pair sent as one reading."""
    stamps = DAY0 + HOUR_S * (1 + np.arange(len(values)))
    keep = np.ones(len(values), dtype=bool)
    totals = np.asarray(values, dtype=float).copy()
    for a, b in merged:
        totals[b - 1] = totals[a:b].sum()
        keep[a : b - 1] = False
    return Series.from_values(stamps[keep], totals[keep])


def test_sustained_flow_reads_multi_hour_readings_as_a_lower_bound():
    """A leak is confirmed through 6-hour readings, once each reading arrives."""
    values = with_leak(household(4), 6, 5)
    merged = [(a, a + 6) for a in range(30, 96, 12)]
    grid = to_grid(readings_of(values, merged))
    flags = SustainedFlow(threshold_l_h=0.5).flags(grid)
    dry = SustainedFlow(threshold_l_h=0.5).flags(
        to_grid(readings_of(household(4), merged))
    )

    assert np.isnan(grid.values[30]) and 5.0 <= grid.span_rates_per_hour()[30]
    assert 26 == first_flag(flags)
    assert not flags[30:35].any()  # mid-reading: its volume has not arrived
    assert flags[35]
    assert not dry.any()


def test_sustained_flow_needs_some_one_hour_readings():
    """One long reading alone fills the window but proves nothing."""
    values = with_leak(household(3), 0, 5)
    grid = to_grid(readings_of(values, [(24, 48)]))

    assert not SustainedFlow(threshold_l_h=0.5).flags(grid)[47]


def test_span_burst_flags_a_multi_hour_reading_above_its_past():
    """A 5-hour reading above any 5-hour stretch of the last weeks is a burst."""
    values = household(30)
    values[-5:] = [0, 100, 100, 50, 0]
    burst = readings_of(values, [(len(values) - 5, len(values))])
    normal = readings_of(household(30), [(len(values) - 5, len(values))])
    rule = SpanBurst()

    findings = rule.findings(to_grid(burst), "m1")
    assert 1 == len(findings) and len(values) - 1 == first_flag(
        rule.flags(to_grid(burst))
    )
    assert 250.0 == findings[0].observed and 47.0 == findings[0].expected
    assert 0.0 == rule.delay_h and "several hours" in rule.explain()["explanation"]
    assert not rule.flags(to_grid(normal)).any()


def test_span_burst_needs_enough_past_stretches():
    """With a day of history no verdict is given."""
    values = household(1)
    values[-5:] = [0, 100, 100, 50, 0]

    assert not SpanBurst().flags(to_grid(readings_of(values, [(19, 24)]))).any()


def test_continuous_flow_baseline_needs_24_hours():
    """The smart-meter rule flags only after 24 hours of flow."""
    leaked = with_leak(household(), 6, 5)

    flags = ContinuousFlow().flags(grid_of(leaked))

    assert 6 + 23 == first_flag(flags)


def test_burst_needs_its_duration():
    """A single high hour is not a 2-hour burst; two are."""
    values = household(1)
    values[10] = 600
    rule = Burst(threshold_l_h=500, min_duration_h=2)

    assert not rule.flags(grid_of(values)).any()
    values[11] = 700
    assert 11 == first_flag(rule.flags(grid_of(values)))


def test_findings_carry_evidence_and_estimate():
    """Each night of a leak is one finding with its start, end and L/h."""
    leaked = with_leak(household(), 20, 3)

    found = NightFlow(threshold_l_h=0.5).findings(grid_of(leaked), "water-1")
    finding = found[0]

    assert 2 == len(found)
    assert "night_flow" == finding.kind
    assert DAY0 + 24 * HOUR_S == finding.start_ts
    assert DAY0 + 28 * HOUR_S == finding.detected_ts
    assert DAY0 + 30 * HOUR_S == finding.end_ts
    assert 3 == finding.litres_per_hour
    assert 0.5 == finding.expected
    assert "medium" == finding.severity
    assert finding.explanation.endswith(".")


def test_negative_rows_never_make_a_leak():
    """Negative readings are an impossible value, and no flow rule fires."""
    values = household()
    values[[2, 26, 50]] = -30
    series = Series.from_values(DAY0 + HOUR_S * np.arange(1, 73), values)
    cleaned, _ = clean(series)
    grid = to_grid(cleaned)

    rules = [NightFlow(), SustainedFlow(), ContinuousFlow()]

    assert not any(r.flags(grid).any() for r in rules)
    assert 3 == len(ImpossibleValue().findings(series, "w"))


def test_duplicates_and_clock_back_never_make_a_leak():
    """Repeated and backward stamps leave a series on which nothing fires."""
    stamps = DAY0 + HOUR_S * np.arange(1, 73)
    messy = np.concatenate([stamps[:30], stamps[25:30], stamps[30:]])
    values = np.concatenate([household()[:30], [9] * 5, household()[30:]])
    grid = to_grid(clean(Series.from_values(messy, values))[0])

    rules = [NightFlow(), SustainedFlow(), ContinuousFlow()]

    assert not any(r.flags(grid).any() for r in rules)


def test_impossible_value_above_meter_capacity():
    """A reading above the meter's maximum flow is flagged."""
    series = Series.from_values(DAY0 + HOUR_S * np.arange(1, 4), [10, 4000, 10])

    assert [False, True, False] == ImpossibleValue().flags(series).tolist()


def test_stuck_meter_after_window_of_zeros():
    """72 observed zero hours (from 22:00) make a stuck meter; a gap restarts it."""
    values = np.concatenate([household(1), np.zeros(80)])

    assert 22 + 71 == first_flag(StuckMeter().flags(grid_of(values)))
    values[24 + 40] = np.nan
    assert not StuckMeter().flags(grid_of(values)).any()


def test_silent_meter_reports_past_and_ongoing_silences():
    """A 10 h hole is closed; a trailing silence stays ongoing."""
    series = Series.from_values(DAY0 + HOUR_S * np.array([1, 2, 12, 13]), [1] * 4)

    found = SilentMeter(max_silence_h=6).findings(
        series, "w", now_ts=DAY0 + 30 * HOUR_S
    )

    assert [10.0, 17.0] == [f.observed for f in found]
    assert found[0].end_ts == DAY0 + 12 * HOUR_S
    assert found[1].end_ts is None


def test_counter_jump_flags_one_huge_step():
    """A step five times the normal maximum is a jump."""
    values = household(1)
    values[5] = 200

    assert 5 == first_flag(CounterJump(normal_max=30).flags(grid_of(values)))


def office_week(weeks: int) -> np.ndarray:
    """Hourly kWh: 1 at night, 5 in working hours, every day."""
    day = np.where((np.arange(24) >= 8) & (np.arange(24) < 18), 5.0, 1.0)
    rng = np.random.default_rng(3)
    return np.tile(day, 7 * weeks) + rng.normal(0, 0.05, 24 * 7 * weeks)


def test_profile_deviation_fires_on_three_high_hours():
    """Three hours far above the weekday-hour profile are flagged, one is not."""
    history = grid_of(office_week(4))
    rule = ProfileDeviation(profile=weekday_hour_profile(history))
    week = office_week(1)
    week[2] += 3
    week[30:33] += 3
    flags = rule.flags(grid_of(week))

    assert [32] == np.flatnonzero(flags).tolist()
    (finding,) = rule.findings(grid_of(week), "elec")
    assert 70 < finding.kwh_per_day < 74


def test_base_load_creep_fires_when_nights_rise():
    """A night load raised from 1 to 1.5 kWh/h is flagged after a week."""
    values = office_week(6)
    values[24 * 35 :] += 0.5
    rule = BaseLoadCreep()

    (finding,) = rule.findings(grid_of(values), "elec")

    assert DAY0 + (35 + 3) * 86400 <= finding.detected_ts <= DAY0 + 40 * 86400
    assert 11 < finding.kwh_per_day < 13
    assert not rule.findings(grid_of(office_week(6)), "elec")
