"""Tests for the NAB evaluation: loading quirks and the real-subset result."""

import json
from pathlib import Path

import numpy as np
import pytest

from koprogo_node.detect import eval_nab

DATA_ROOT = eval_nab.shared_data_root()
NAB = DATA_ROOT / "nab"
needs_nab = pytest.mark.skipif(
    not (NAB / "labels" / "combined_windows.json").is_file(),
    reason=f"NAB subset not found under {NAB} (set KOPROGO_SHARED_DATA)",
)


def write_csv(path: Path, rows: list[tuple[str, float]]) -> None:
    """Write a NAB-style timestamp,value CSV."""
    lines = ["timestamp,value"] + [f"{stamp},{value}" for stamp, value in rows]
    path.write_text("\n".join(lines) + "\n")


def test_clock_jump_back_rows_are_dropped(tmp_path):
    """Rows stamped at or before the last kept row are dropped."""
    write_csv(
        tmp_path / "s.csv",
        [
            ("2014-01-07 02:00:00", 1.0),
            ("2014-01-07 02:05:00", 2.0),
            ("2014-01-07 02:00:00", 99.0),
            ("2014-01-07 02:05:00", 99.0),
            ("2014-01-07 02:10:00", 3.0),
        ],
    )

    series = eval_nab.load_series(tmp_path, "s.csv", [])

    assert series.values.tolist() == [1.0, 2.0, 3.0]


def test_gaps_become_nan_and_windows_map_to_slots(tmp_path):
    """A missing hour is NaN; a label span maps to the slots it covers."""
    write_csv(
        tmp_path / "s.csv",
        [("2013-09-09 20:00:00", 1.0), ("2013-09-09 21:00:00", 2.0),
         ("2013-09-09 23:00:00", 4.0), ("2013-09-10 00:00:00", 5.0)],
    )  # fmt: skip
    span = ["2013-09-09 20:30:00.000000", "2013-09-09 23:00:00.000000"]

    series = eval_nab.load_series(tmp_path, "s.csv", [span])

    assert series.step_s == 3600
    assert np.isnan(series.values[2])
    assert series.windows == [(1, 3)]
    assert series.day_points == 24


def test_alerts_keep_run_onsets_and_respect_quiet_time():
    """Onsets of runs become alerts unless within the quiet time of the last."""
    flags = np.zeros(30, dtype=bool)
    flags[[2, 3, 4, 6, 20, 21]] = True

    assert np.flatnonzero(eval_nab.alerts(flags, quiet=5)).tolist() == [2, 20]


@needs_nab
def test_model_beats_both_baselines_on_real_subset():
    """On the real NAB subset the model's F1 exceeds both baselines' F1."""
    result = eval_nab.evaluate(DATA_ROOT)

    json.dumps(result)
    per = result["per_detector"]
    assert result["series"] == 18
    assert result["baselines"] == ["rolling_zscore", "seasonal_naive"]
    assert len(result["held_out"]) == 18
    assert per["anomaly_mlp"]["f1"] > per["rolling_zscore"]["f1"]
    assert per["anomaly_mlp"]["f1"] > per["seasonal_naive"]["f1"]
    assert set(per["anomaly_mlp"]) == {"precision", "recall", "f1", "nab_score"}
