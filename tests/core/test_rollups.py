"""Rollups close once, hours build from quarters, days from hours."""

from koprogo_node.core.rollups import RollupBuilder, Tier

DAY0 = 1_780_012_800  # a UTC midnight


def test_quarter_closes_when_next_quarter_starts():
    """A quarter is emitted with its sum, min, max and last once it is over."""
    builder = RollupBuilder()
    closed = []
    for minute in range(0, 16):
        closed += builder.add(1, DAY0 + minute * 60, 1.0, float(minute))

    assert len(closed) == 1
    quarter = closed[0]
    assert (quarter.tier, quarter.start_s, quarter.n) == (Tier.QUARTER, DAY0, 15)
    assert (quarter.total, quarter.low, quarter.high, quarter.last) == (15.0, 0, 14, 14)


def test_day_total_equals_sum_of_readings():
    """Across two days, the closed day holds exactly the first day's sum."""
    builder = RollupBuilder()
    closed = []
    for step in range(0, 2 * 96 + 1):
        closed += builder.add(7, DAY0 + step * 900, 2.0, 0.0)

    days = [b for b in closed if b.tier == Tier.DAY]
    hours = [b for b in closed if b.tier == Tier.HOUR]
    assert [d.total for d in days] == [192.0]
    assert len(hours) == 47  # hour 47 closes only when hour 48's first quarter does
