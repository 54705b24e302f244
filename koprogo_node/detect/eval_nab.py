"""Evaluate the shipped anomaly model and the baselines on the NAB subset.

Defined behaviour for the data's quirks:

- Time: a row whose timestamp is not later than the last kept one (the clock
  jump back in machine_temperature) is dropped, as the ledger would refuse it.
- Gaps: rows are placed on a regular grid at the series' median step; empty
  slots are NaN. Baselines never flag NaN and the model scores no window that
  contains NaN, so nothing is flagged within one context after a gap.
- Label windows are mapped to the grid slots they cover.

Every detector's per-point flags go through the same alert policy: an alert
at the first flag of a run, then silence for one day (at least one point).
"""

import csv
import json
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from koprogo_node.detect import features
from koprogo_node.detect.baselines import rolling_zscore, seasonal_naive
from koprogo_node.detect.datasets import shared_data_root
from koprogo_node.detect.metrics import (
    WindowCounts,
    count_windows,
    nab_normalise,
    nab_raw_score,
    probation_length,
)
from koprogo_node.detect.models import model_entry
from koprogo_node.detect.onnx_runner import ModelRunner

MODEL_NAME = "anomaly_mlp"
DAY_S = 86_400
CALIBRATION_MARGIN = 1.5
SMOOTHING_POINTS = 6
LABELS = "labels/combined_windows.json"
STAMP_FORMAT = "%Y-%m-%d %H:%M:%S"


@dataclass(frozen=True)
class Series:
    """One NAB series on a regular grid, with its label windows as indices."""

    name: str
    values: np.ndarray
    step_s: int
    windows: list[tuple[int, int]]

    @property
    def day_points(self) -> int:
        """Number of grid points in one day."""
        return max(1, DAY_S // self.step_s)


def evaluate(data_root: Path) -> dict:
    """Score every detector on every NAB series under data_root/nab."""
    nab = Path(data_root) / "nab"
    labels = json.loads((nab / LABELS).read_text())
    series = [
        load_series(nab / "data", key, spans)
        for key, spans in sorted(labels.items())
        if (nab / "data" / key).is_file()
    ]
    runner = ModelRunner.from_manifest(MODEL_NAME)
    detectors = {
        MODEL_NAME: lambda s: model_flags(s, runner),
        "rolling_zscore": lambda s: rolling_zscore(s.values, window=s.day_points),
        "seasonal_naive": lambda s: seasonal_naive(s.values, season=s.day_points),
    }
    return {
        "dataset": "nab-subset",
        "series": len(series),
        "per_detector": {
            name: _score_detector(detect, series) for name, detect in detectors.items()
        },
        "baselines": ["rolling_zscore", "seasonal_naive"],
        "held_out": [s.name for s in series if s.name not in _trained_on()],
    }


def load_series(data_dir: Path, key: str, spans: list[list[str]]) -> Series:
    """Read one CSV onto a regular grid and map its label windows."""
    stamps, values = _read_monotonic(data_dir / key)
    step = int(np.median(np.diff(stamps)))
    slots = np.rint((stamps - stamps[0]) / step).astype(np.int64)
    grid = np.full(int(slots[-1]) + 1, np.nan)
    grid[slots[::-1]] = values[::-1]  # on a slot collision the first row wins
    windows = [_to_slots(span, stamps[0], step, grid.size) for span in spans]
    return Series(Path(key).stem, grid, step, windows)


def model_flags(series: Series, runner: ModelRunner) -> np.ndarray:
    """Flag points whose smoothed model score tops the probation maximum."""
    windows, ends = features.anomaly_windows(series.values)
    raw = features.anomaly_scores(series.values, runner.score(windows), ends)
    smoothed = _trailing_mean(raw, SMOOTHING_POINTS)
    probation = smoothed[: probation_length(smoothed.size)]
    finite = probation[np.isfinite(probation)]
    threshold = CALIBRATION_MARGIN * finite.max() if finite.size else np.inf
    with np.errstate(invalid="ignore"):
        return smoothed > threshold


def alerts(flags: np.ndarray, quiet: int) -> np.ndarray:
    """Keep the first flag of each run, then stay silent for `quiet` points."""
    onsets = np.flatnonzero(flags & ~np.concatenate(([False], flags[:-1])))
    out = np.zeros(flags.shape, dtype=bool)
    next_allowed = -1
    for index in onsets:
        if index >= next_allowed:
            out[index] = True
            next_allowed = index + quiet
    return out


def _score_detector(detect, series: list[Series]) -> dict[str, float]:
    """Sum window counts and NAB raw scores over all series."""
    counts = WindowCounts()
    raw = 0.0
    for item in series:
        flagged = alerts(np.asarray(detect(item), dtype=bool), item.day_points)
        flagged[: probation_length(flagged.size)] = False
        counts += count_windows(flagged, item.windows)
        raw += nab_raw_score(flagged, item.windows)
    n_windows = sum(len(s.windows) for s in series)
    return {
        "precision": round(counts.precision, 4),
        "recall": round(counts.recall, 4),
        "f1": round(counts.f1, 4),
        "nab_score": round(nab_normalise(raw, n_windows), 2),
    }


def _read_monotonic(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Return epoch seconds and values, dropping rows that go back in time."""
    stamps, values = [], []
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            stamp = _epoch(row["timestamp"])
            if stamps and stamp <= stamps[-1]:
                continue
            stamps.append(stamp)
            values.append(float(row["value"]))
    return np.asarray(stamps, dtype=np.int64), np.asarray(values)


def _epoch(text: str) -> int:
    """Seconds since 1970 of a naive NAB timestamp (read as UTC)."""
    stamp = datetime.strptime(text[:19], STAMP_FORMAT)
    return int((stamp - datetime(1970, 1, 1)).total_seconds())


def _to_slots(span: list[str], origin: int, step: int, size: int) -> tuple[int, int]:
    """Map a [start, end] label span to the grid slots it covers."""
    start = -(-(_epoch(span[0]) - origin) // step)
    end = (_epoch(span[1]) - origin) // step
    return max(0, int(start)), min(size - 1, int(end))


def _trailing_mean(scores: np.ndarray, width: int) -> np.ndarray:
    """Mean of the last `width` scores; NaN if any of them is NaN."""
    if width <= 1:
        return scores
    out = np.full_like(scores, np.nan)
    out[width - 1 :] = features.sliding_windows(scores, width).mean(axis=1)
    return out


def _trained_on() -> set[str]:
    """Names of NAB series the shipped model was trained on (from the manifest)."""
    return set(model_entry(MODEL_NAME).get("trained_on_nab", []))


def main() -> None:
    """Print the evaluation as JSON, with the wall time on stderr."""
    started = time.perf_counter()
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else shared_data_root()
    print(json.dumps(evaluate(root), indent=2))
    print(f"wall time {time.perf_counter() - started:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
