"""Rejected input is counted always, logged on transitions only."""

from structlog.testing import capture_logs

from koprogo_node.ledger.stats import IngestStats


def levels(logs, reason):
    return [e["log_level"] for e in logs if e.get("reason") == reason]


def test_reject_reason_is_warned_once_then_debug():
    """The first reject of a reason is a warning; repeats are debug."""
    stats = IngestStats()

    with capture_logs() as logs:
        for _ in range(3):
            stats.reject("p1", "crc_mismatch", "expected 3AD7, computed 02A3")

    assert levels(logs, "crc_mismatch") == ["warning", "debug", "debug"]
    assert stats.rejects_by_reason() == {"crc_mismatch": 3}


def test_reason_back_after_a_quiet_spell_is_warned_again():
    """A reason silent for more than ten minutes is a new transition."""
    now = {"s": 0.0}
    stats = IngestStats(monotonic=lambda: now["s"])

    with capture_logs() as logs:
        stats.reject("p1", "crc_mismatch", "")
        now["s"] = 601.0
        stats.reject("p1", "crc_mismatch", "")

    assert levels(logs, "crc_mismatch") == ["warning", "warning"]


def test_expected_reasons_are_info_and_resends_debug():
    """Junk at port opening is INFO; a re-sent stored reading is DEBUG."""
    stats = IngestStats()

    with capture_logs() as logs:
        stats.reject("p1", "junk", "12 bytes outside a telegram")
        stats.reject("p1.peak", "already_stored", "")

    assert levels(logs, "junk") == ["info"]
    assert levels(logs, "already_stored") == ["debug"]


def test_unsaved_rejects_are_handed_over_once():
    """Counts go to the ledger as increments, each only once."""
    stats = IngestStats()
    stats.reject("csv", "not_a_number", "line 3")
    stats.reject("csv", "not_a_number", "line 4")

    first = stats.unsaved_rejects()
    second = stats.unsaved_rejects()

    assert [(s, r, n) for s, r, n, _, _ in first] == [("csv", "not_a_number", 2)]
    assert second == []
