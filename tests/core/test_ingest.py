"""The checks every reading passes before it is stored."""

import math

from koprogo_node.core.ingest import Accepted, IngestRules, Refused
from koprogo_node.core.readings import Kind, Quality, Reading

NOW = 1_780_000_000.0


def counter(ts, value, **kw):
    return Reading("p1.import_t1", ts, value, "kWh", Kind.COUNTER, **kw)


def test_nan_value_is_refused_and_neighbours_kept():
    """A NaN is refused with its reason; the readings around it pass."""
    rules = IngestRules()

    verdicts = [
        rules.check(r, NOW)
        for r in (
            counter(NOW - 20, 1.0),
            counter(NOW - 10, math.nan),
            counter(NOW, 2.0),
        )
    ]

    assert [type(v) for v in verdicts] == [Accepted, Refused, Accepted]
    assert verdicts[1].reason == "not_a_number"
    assert verdicts[2].delta == 1.0


def test_duplicate_and_out_of_order_stamps_are_refused():
    """A repeated stamp and an older stamp are each refused with their reason."""
    rules = IngestRules()
    rules.check(counter(NOW, 1.0), NOW)

    duplicate = rules.check(counter(NOW, 1.5), NOW)
    older = rules.check(counter(NOW - 5, 0.5), NOW)

    assert (duplicate.reason, older.reason) == ("duplicate_timestamp", "out_of_order")


def test_resent_identical_reading_is_counted_as_already_stored():
    """The same stamp and value again (a device re-sending) is not a fault."""
    rules = IngestRules()
    rules.check(counter(NOW, 5.0), NOW)

    verdict = rules.check(counter(NOW, 5.0), NOW)

    assert verdict.reason == "already_stored"


def test_counter_going_backwards_is_stored_with_zero_consumption():
    """A counter stepping back is kept, flagged, and never adds negative use."""
    rules = IngestRules()
    rules.check(counter(NOW - 10, 100.0), NOW)

    verdict = rules.check(counter(NOW, 99.5), NOW)

    assert isinstance(verdict, Accepted)
    assert (verdict.delta, verdict.anomaly) == (0.0, "counter_backwards")


def test_untrusted_stamp_is_flagged_and_ignores_order():
    """An untrusted stamp in the past is kept as clock-unsynced, not refused."""
    rules = IngestRules()
    rules.check(counter(NOW, 100.0), NOW)

    verdict = rules.check(counter(NOW - 3600, 101.0, clock_trusted=False), NOW)

    assert isinstance(verdict, Accepted)
    assert verdict.quality == Quality.CLOCK_UNSYNCED
    assert verdict.delta == 1.0


def test_unit_change_on_a_channel_is_refused():
    """A channel that suddenly reports another unit is refused, not mixed."""
    rules = IngestRules()
    rules.check(counter(NOW - 10, 1.0), NOW)

    verdict = rules.check(Reading("p1.import_t1", NOW, 1.0, "Wh", Kind.COUNTER), NOW)

    assert verdict.reason == "channel_changed"


def test_far_future_stamp_is_refused():
    """A trusted stamp more than a day ahead is refused."""
    verdict = IngestRules().check(counter(NOW + 2 * 86400, 1.0), NOW)

    assert verdict.reason == "future_timestamp"
