"""Consumption from counters: never negative, resets and wraps explained."""

import pytest

from koprogo_node.core.counters import counter_step


@pytest.mark.parametrize(
    ("baseline", "value", "wrap_at", "delta", "new_baseline", "anomaly"),
    [
        (100.0, 101.5, None, 1.5, 101.5, None),
        (100.0, 100.0, None, 0.0, 100.0, None),
        (99_990.0, 5.0, 100_000.0, 15.0, 5.0, "counter_wrap"),
        (1234.0, 2.0, None, 2.0, 2.0, "counter_reset"),
        (1234.0, 1233.9, None, 0.0, 1234.0, "counter_backwards"),
    ],
)
def test_counter_step_cases(baseline, value, wrap_at, delta, new_baseline, anomaly):
    """Each way a counter can move gives the documented consumption."""

    step = counter_step(baseline, value, wrap_at)

    assert step.delta == pytest.approx(delta)
    assert step.baseline == new_baseline
    assert step.anomaly == anomaly


def test_small_step_back_does_not_count_twice():
    """After a glitch backwards, the climb back to the baseline is not consumption."""
    first = counter_step(500.0, 499.0)

    second = counter_step(first.baseline, 501.0)

    assert (first.delta, second.delta) == (0.0, 1.0)
