"""History windows per tier, their slots, and how rollups fill them."""

from datetime import date, datetime, timezone

import pytest

from koprogo_node.web.history import points, slots, window


def _ts(*parts) -> int:
    return int(datetime(*parts, tzinfo=timezone.utc).timestamp())


@pytest.mark.parametrize(
    ("tier", "at", "first", "end"),
    [
        ("day", date(2026, 12, 4), date(2026, 12, 4), date(2026, 12, 5)),
        ("week", date(2026, 12, 4), date(2026, 11, 30), date(2026, 12, 7)),
        ("week", date(2026, 11, 30), date(2026, 11, 30), date(2026, 12, 7)),
        ("month", date(2026, 12, 31), date(2026, 12, 1), date(2027, 1, 1)),
        ("month", date(2028, 2, 10), date(2028, 2, 1), date(2028, 3, 1)),
        ("year", date(2026, 7, 14), date(2026, 1, 1), date(2027, 1, 1)),
    ],
)
def test_window_of_each_tier(tier, at, first, end):
    view = window(tier, at)

    assert (first, end) == (view.first, view.end)
    assert view.previous() < view.first and view.following() == view.end


def test_unknown_tier_is_refused():
    with pytest.raises(ValueError, match="tier must be one of"):
        window("decade", date(2026, 1, 1))


@pytest.mark.parametrize(
    ("tier", "count"), [("day", 96), ("week", 168), ("month", 29), ("year", 12)]
)
def test_every_slot_is_shown_even_without_data(tier, count):
    view = window(tier, date(2028, 2, 3))

    assert count == len(slots(view))
    assert all(value is None for _, value in points(view, []))


def test_counter_rollups_land_in_their_slots():
    view = window("day", date(2026, 12, 4))
    rows = [
        {"ts_ms": _ts(2026, 12, 4, 0, 15) * 1000, "consumption": 0.5},
        {"ts_ms": _ts(2026, 12, 4, 23, 45) * 1000, "consumption": 1.25},
    ]

    shown = dict(points(view, rows))

    assert 0.5 == shown[_ts(2026, 12, 4, 0, 15)]
    assert 1.25 == shown[_ts(2026, 12, 4, 23, 45)]
    assert shown[_ts(2026, 12, 4, 12, 0)] is None


def test_a_year_sums_counters_and_averages_gauges_per_month():
    view = window("year", date(2026, 3, 3))
    days = [_ts(2026, 3, 1), _ts(2026, 3, 2), _ts(2026, 4, 1)]
    counter = [{"ts_ms": d * 1000, "consumption": 2.0} for d in days]
    gauge = [{"ts_ms": d * 1000, "mean": m} for d, m in zip(days, (10.0, 20.0, 5.0))]

    summed, averaged = dict(points(view, counter)), dict(points(view, gauge))

    assert (4.0, 2.0) == (summed[_ts(2026, 3, 1)], summed[_ts(2026, 4, 1)])
    assert (15.0, 5.0) == (averaged[_ts(2026, 3, 1)], averaged[_ts(2026, 4, 1)])
    assert summed[_ts(2026, 1, 1)] is None
