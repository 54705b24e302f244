"""The water evaluation on the real household set meets the measured figures."""

import json
import time

import pytest

from koprogo_node.detect.eval_water import BASELINES, MODEL, OURS, SIZES_L_H, evaluate
from koprogo_node.detect.water_data import dataset_dir, shared_data_root

ROOT = shared_data_root()
pytestmark = pytest.mark.skipif(
    not (dataset_dir(ROOT) / "data_set" / "consumes.csv").is_file(),
    reason=f"shared water data set not found under {ROOT} (set KOPROGO_SHARED_DATA)",
)


@pytest.fixture(scope="module")
def report():
    """One reduced evaluation run, timed."""
    began = time.monotonic()
    result = evaluate(ROOT, seed=7, injections_per_size=100)
    return result, time.monotonic() - began


def test_report_shape_is_json_ready(report):
    """The report keeps the agreed keys and serialises to JSON."""
    result, _ = report

    json.dumps(result)
    assert 9 == result["meters"]
    assert list(SIZES_L_H) == result["leak_injection"]["sizes_l_per_h"]
    assert {OURS, MODEL, *BASELINES} == set(result["leak_injection"]["per_detector"])
    assert list(BASELINES) == result["baselines"]
    assert 100 == result["leak_injection"]["per_detector"][OURS]["5"]["injections"]


def test_runs_well_under_a_minute(report):
    """A reduced run takes seconds."""
    assert report[1] < 30


def test_leaks_of_5_l_h_and_more_found_within_a_day(report):
    """5 L/h or more are found within 24 h in 95 % (full run: 0.959-0.979)."""
    per_size = report[0]["leak_injection"]["per_detector"][OURS]

    for size in ("5", "10", "50"):
        assert per_size[size]["detected_share"] >= 0.95
        assert per_size[size]["within_24h_share"] >= 0.93
        assert per_size[size]["well_observed"]["within_24h_share"] >= 0.95


def test_beats_the_never_zero_baseline(report):
    """Ours finds leaks sooner and finds 1 L/h leaks the baseline misses."""
    per_detector = report[0]["leak_injection"]["per_detector"]
    ours, baseline = per_detector[OURS], per_detector["never_zero_24h"]

    for size in map(str, SIZES_L_H):
        assert ours[size]["median_delay_h"] < baseline[size]["median_delay_h"] - 5
        assert ours[size]["within_24h_share"] > baseline[size]["within_24h_share"] + 0.3
    assert ours["1"]["detected_share"] >= 0.9


def test_false_alarms_under_one_per_meter_month(report):
    """Unmodified traces raise 0.65 unexplained alarms per meter-month (target 1)."""
    assert report[0]["false_alarms_per_meter_month"][OURS] <= 0.7


def test_label_figures(report):
    """Every leak label is found, the multi-hour AHCW readings included."""
    result, _ = report

    assert 1.0 == result["labels"][OURS]["leak_recall"]
    assert result["labels"][OURS]["leak_precision"] >= 0.14
    assert 1.0 == result["label_recall_by_category"][OURS]["AHCW"]
    assert 1.0 == result["label_recall_by_category"][OURS]["ACNZ"]
    assert 1.0 == result["label_recall_by_category"][OURS]["AHCWD"]


def test_loader_reads_bom_labels_and_negative_rows():
    """The CSV's BOM is handled; 24 labelled rows and 5 negative rows are read."""
    from koprogo_node.detect.water_data import load_households, load_scenarios

    homes = load_households(dataset_dir(ROOT))
    scenarios = load_scenarios(dataset_dir(ROOT))

    assert 69193 == sum(len(h.series) for h in homes.values())
    assert 24 == sum(int(h.anomalous.sum()) for h in homes.values())
    assert 5 == sum(int((h.series.values < 0).sum()) for h in homes.values())
    assert {"ACN", "ACNZ", "ACS", "AHCW", "AHCWD"} <= set(scenarios)


def test_shared_data_root_follows_the_environment(monkeypatch, tmp_path):
    """KOPROGO_SHARED_DATA overrides the default folder."""
    monkeypatch.setenv("KOPROGO_SHARED_DATA", str(tmp_path))

    assert tmp_path == shared_data_root()
