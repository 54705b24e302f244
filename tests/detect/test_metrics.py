"""Tests for window metrics and the NAB score on hand-made cases."""

import numpy as np
import pytest

from koprogo_node.detect.metrics import (
    WindowCounts,
    count_runs,
    count_windows,
    nab_normalise,
    nab_perfect_score,
    nab_raw_score,
    nab_score,
    precision_recall_f1,
    probation_length,
    scaled_sigmoid,
)

WINDOWS = [(20, 29), (60, 69)]


def flags_at(*indices: int, length: int = 100) -> np.ndarray:
    """Boolean flags set at the given indices."""
    flags = np.zeros(length, dtype=bool)
    flags[list(indices)] = True
    return flags


def test_window_with_flag_is_tp_and_outside_runs_are_fp_events():
    """Two flags in one window count once; a 3-point run outside is one FP."""
    flags = flags_at(21, 25, 40, 41, 42, 80)

    counts = count_windows(flags, WINDOWS)

    assert counts == WindowCounts(tp=1, fp=2, fn=1)


def test_precision_recall_f1_values():
    """Precision 1/3, recall 1/2, F1 0.4 for one TP, two FPs, one FN."""
    result = precision_recall_f1(flags_at(21, 40, 80), WINDOWS)

    assert result["precision"] == pytest.approx(1 / 3)
    assert result["recall"] == pytest.approx(0.5)
    assert result["f1"] == pytest.approx(0.4)


def test_no_flags_gives_zero_everything():
    """The null detector has precision, recall and F1 of 0."""
    assert precision_recall_f1(flags_at(), WINDOWS) == {
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
    }


def test_counts_add_up_across_series():
    """Counts from two series sum field by field."""
    assert WindowCounts(1, 2, 3) + WindowCounts(4, 5, 6) == WindowCounts(5, 7, 9)


def test_count_runs():
    """Runs of consecutive True values are counted once each."""
    assert count_runs(np.array([1, 1, 0, 1, 0, 0, 1, 1, 1], dtype=bool)) == 3


def test_scaled_sigmoid_landmarks():
    """About 0.987 at a window start, 0 at its end, -1 far beyond it."""
    assert scaled_sigmoid(-1.0) == pytest.approx(0.98661, abs=1e-5)
    assert scaled_sigmoid(0.0) == 0.0
    assert scaled_sigmoid(3.5) == -1.0


def test_null_detector_scores_zero():
    """No flags at all normalises to exactly 0."""
    assert nab_score(flags_at(), WINDOWS, probation=0) == 0.0


def test_ideal_raw_score_normalises_to_100():
    """NAB's ideal detector (A_TP per window) normalises to 100."""
    assert nab_normalise(nab_perfect_score(len(WINDOWS)), len(WINDOWS)) == 100.0


def test_flag_at_each_window_start_scores_almost_100():
    """Flagging the first point of every window scores 100 * (1 + 0.98661) / 2."""
    score = nab_score(flags_at(20, 60), WINDOWS, probation=0)

    assert score == pytest.approx(100 * (1 + 0.986614) / 2, abs=1e-3)


def test_only_first_detection_in_window_counts():
    """A later flag in the same window adds nothing."""
    early = nab_raw_score(flags_at(20), WINDOWS, probation=0)
    both = nab_raw_score(flags_at(20, 29), WINDOWS, probation=0)

    assert both == early


def test_later_detection_earns_less():
    """A detection at the window end earns about 0 instead of about 1."""
    late = nab_raw_score(flags_at(29), [(20, 29)], probation=0)

    assert late == pytest.approx(scaled_sigmoid(-0.1))


def test_false_positive_before_any_window_costs_full_weight():
    """A flag before the first window costs A_FP = -0.11, plus the missed windows."""
    raw = nab_raw_score(flags_at(5), WINDOWS, probation=0)

    assert raw == pytest.approx(-0.11 - 2.0)


def test_false_positive_just_after_window_costs_little():
    """A flag right after a window costs much less than 0.11."""
    raw = nab_raw_score(flags_at(20, 30), [(20, 29)], probation=0)

    assert -0.11 < raw - nab_raw_score(flags_at(20), [(20, 29)], probation=0) < 0


def test_flags_in_probation_are_ignored():
    """A flag inside the probationary period is neither TP nor FP."""
    assert nab_raw_score(flags_at(5), [(3, 8)], probation=10) == -1.0


def test_probation_is_15_percent_capped_at_750():
    """NAB's probationary period: 15 % of the length, at most 750 points."""
    assert probation_length(1000) == 150
    assert probation_length(22_000) == 750


def test_normalise_without_windows_refuses():
    """Normalising needs at least one window."""
    with pytest.raises(ValueError, match="at least one"):
        nab_normalise(0.0, 0)
