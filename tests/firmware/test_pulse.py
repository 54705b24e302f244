"""PulseCounter: contact bounce counts once, real pulses each count."""

from kpsat.compat import TICKS_PERIOD
from kpsat.pulse import PulseCounter


def press(counter: PulseCounter, start_ms: int, bounces: int, gap_ms: int) -> int:
    """A closing contact: `bounces` open/close flickers `gap_ms` apart."""
    t = start_ms
    counter.edge(True, t)
    for _ in range(bounces):
        t += gap_ms
        counter.edge(False, t)
        t += gap_ms
        counter.edge(True, t)
    return t


def release(counter: PulseCounter, start_ms: int, bounces: int, gap_ms: int) -> int:
    """An opening contact, bouncing the same way."""
    t = start_ms
    counter.edge(False, t)
    for _ in range(bounces):
        t += gap_ms
        counter.edge(True, t)
        t += gap_ms
        counter.edge(False, t)
    return t


def test_bounces_within_window_count_once() -> None:
    """A press with five bounces 1 ms apart, then a bouncy release, is one pulse."""
    counter = PulseCounter(debounce_ms=20)

    t = press(counter, 1000, bounces=5, gap_ms=1)
    release(counter, t + 80, bounces=4, gap_ms=2)

    assert counter.count == 1


def test_separate_pulses_each_count() -> None:
    """Ten bouncy pulses 100 ms apart give ten."""
    counter = PulseCounter(debounce_ms=20)

    t = 0
    for _ in range(10):
        t = press(counter, t + 100, bounces=3, gap_ms=1)
        t = release(counter, t + 40, bounces=3, gap_ms=1)

    assert counter.count == 10


def test_count_resumes_from_restored_total() -> None:
    """A counter built with a saved total adds to it."""
    counter = PulseCounter(debounce_ms=20, count=41)

    counter.edge(True, 5)

    assert counter.count == 42


def test_wake_pulse_counts_and_absorbs_its_bounces() -> None:
    """The pulse that woke the board counts once, its trailing bounces not again."""
    counter = PulseCounter(debounce_ms=20)

    counter.woke(500)
    release(counter, 505, bounces=3, gap_ms=2)

    assert counter.count == 1


def test_pulse_after_tick_wraparound_counts() -> None:
    """An edge half a tick period after the last one still counts once settled."""
    counter = PulseCounter(debounce_ms=20)
    counter.edge(True, 10)
    counter.edge(False, 60)

    counter.settle(100)
    counter.edge(True, (60 + TICKS_PERIOD // 2 + 5) % TICKS_PERIOD)

    assert counter.count == 2
