"""Cleaning and gridding of consumption series."""

import numpy as np

from koprogo_node.detect.series import HOUR_S, Series, clean, to_grid

T0 = 1_700_000_000 // 3600 * 3600.0  # a whole hour


def hours(*offsets: float) -> list[float]:
    """Stamps at whole-hour offsets from T0."""
    return [T0 + h * HOUR_S for h in offsets]


def test_duplicate_stamp_keeps_first_and_is_counted():
    """A repeated stamp keeps the first value and counts one duplicate."""
    series = Series.from_values(hours(1, 2, 2, 3), [1, 2, 9, 3])

    cleaned, report = clean(series)

    assert [1, 2, 3] == cleaned.values.tolist()
    assert 1 == report.duplicates
    assert 0 == report.clock_back


def test_clock_back_overlap_is_dropped_and_counted():
    """After a clock jump back, rows until time passes the old stamp are dropped."""
    series = Series.from_values(hours(1, 2, 3, 1.5, 2.5, 4), [1, 2, 3, 7, 8, 4])

    cleaned, report = clean(series)

    assert hours(1, 2, 3, 4) == cleaned.ts.tolist()
    assert 2 == report.clock_back
    assert [HOUR_S] * 4 == cleaned.spans_s.tolist()


def test_negative_and_nan_rows_become_gaps():
    """Negative and non-finite rows are excluded, counted and leave a gap."""
    series = Series.from_values(hours(1, 2, 3, 4), [1, -90, np.nan, 2])

    cleaned, report = clean(series)
    grid = to_grid(cleaned)

    assert (1, 1) == (report.negatives, report.non_finite)
    assert 2 == report.dropped
    assert [1, 2] == grid.values[[0, 3]].tolist()
    assert np.isnan(grid.values[1:3]).all()


def test_gap_is_not_interpolated():
    """A missing hour stays NaN on the grid."""
    grid = to_grid(clean(Series.from_values(hours(1, 2, 4), [1, 2, 3]))[0])

    assert 4 == len(grid.values)
    assert np.isnan(grid.values[2])


def test_zero_reading_over_several_hours_proves_zero_flow():
    """A counter that did not move over five hours means five zero hours."""
    series = Series.from_values(hours(1, 6, 7), [1, 0, 2])

    grid = to_grid(series)

    assert [1, 0, 0, 0, 0, 0, 2] == grid.values.tolist()


def test_positive_reading_over_several_hours_is_a_gap():
    """A positive multi-hour reading does not say when it flowed."""
    grid = to_grid(Series.from_values(hours(1, 6, 7), [1, 11, 2]))

    assert np.isnan(grid.values[1:6]).all()
    assert [1, 2] == grid.values[[0, 6]].tolist()


def test_quarter_hour_readings_sum_into_hours():
    """Four 15-minute readings fill one hourly cell; three leave it a gap."""
    stamps = T0 + np.arange(1, 8) * 900.0
    grid = to_grid(Series.from_values(stamps, [1] * 7, step_s=900.0))

    assert 4 == grid.values[0]
    assert np.isnan(grid.values[1])


def test_hour_of_day_and_weekday_come_from_the_cell_start():
    """The cell ending at 01:00 on Thursday 1 Jan 1970 starts at hour 0."""
    grid = to_grid(Series.from_values([3600.0, 7200.0], [0, 0]))

    assert [0, 1] == grid.hour_of_day().tolist()
    assert [3, 3] == grid.weekday().tolist()


def test_multi_hour_reading_keeps_its_average_and_end():
    """A positive 3-hour reading: cells are gaps with its average and last cell."""
    stamps = 1_700_006_400.0 + HOUR_S * np.array([1, 4, 5])
    grid = to_grid(Series.from_values(stamps, [2.0, 30.0, 1.0]))

    assert np.isnan(grid.values[1:4]).all()
    np.testing.assert_allclose([2.0, 10.0, 10.0, 10.0, 1.0], grid.span_rates_per_hour())
    assert [0, 3, 3, 3, 4] == grid.span_ends().tolist()
    assert [2, 2, 2] == grid.slice(1, 4).span_ends().tolist()
    assert [2, 2] == grid.slice(1, 3).span_ends().tolist()  # not arrived yet
