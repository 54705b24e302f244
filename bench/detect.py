"""Benchmark anomaly scoring: onnxruntime against the numpy reference.

Both paths score the same feature windows, one window per call (as the daemon
does for a new reading) and in one batch. Prints figures, then one JSON line.
Run: ``python bench/detect.py [--windows N]``.
"""

import argparse
import json
import time

import numpy as np

from koprogo_node.detect import features
from koprogo_node.detect.models import models_dir
from koprogo_node.detect.onnx_runner import ModelRunner

MODEL = "anomaly_mlp"
TARGET_MS_PER_WINDOW = 1.0


def make_windows(count: int) -> np.ndarray:
    """Feature windows from a seeded random walk with a daily cycle."""
    rng = np.random.default_rng(7)
    steps = np.arange(count + features.ANOMALY_CONTEXT)
    series = np.sin(2 * np.pi * steps / 288) * 5 + np.cumsum(
        rng.normal(size=steps.size)
    )
    windows, _ = features.anomaly_windows(series)
    return windows[:count]


def per_window_ms(score, windows: np.ndarray) -> float:
    """Mean milliseconds to score windows one call each."""
    started = time.perf_counter()
    for index in range(len(windows)):
        score(windows[index : index + 1])
    return 1000 * (time.perf_counter() - started) / len(windows)


def batch_rate(score, windows: np.ndarray, repeats: int = 5) -> float:
    """Windows per second when scoring the whole set in one call (best of runs)."""
    best = min(_timed(score, windows) for _ in range(repeats))
    return len(windows) / best


def _timed(score, windows: np.ndarray) -> float:
    """Seconds for one call."""
    started = time.perf_counter()
    score(windows)
    return time.perf_counter() - started


def main() -> None:
    """Run both scorers on the same windows and report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--windows", type=int, default=5000)
    count = parser.parse_args().windows
    windows = make_windows(count)
    runner = ModelRunner.from_manifest(MODEL)
    layers = features.load_layers(models_dir() / f"{MODEL}.npz")

    def numpy_score(batch: np.ndarray) -> np.ndarray:
        return features.anomaly_score_reference(batch, layers)

    raw = features.sliding_windows(np.arange(5000.0) % 97, features.ANOMALY_CONTEXT + 1)
    gap = float(np.max(np.abs(runner.score(windows) - numpy_score(windows))))
    figures = {
        "bench": "detect",
        "model": MODEL,
        "windows": len(windows),
        "intra_op_threads": runner.threads[0],
        "features_ms_per_window": round(
            per_window_ms(features.normalise_windows, raw), 4
        ),
        "onnx_ms_per_window": round(per_window_ms(runner.score, windows), 4),
        "numpy_ms_per_window": round(per_window_ms(numpy_score, windows), 4),
        "onnx_batch_windows_per_s": round(batch_rate(runner.score, windows)),
        "numpy_batch_windows_per_s": round(batch_rate(numpy_score, windows)),
        "max_abs_difference": gap,
        "target_ms_per_window": TARGET_MS_PER_WINDOW,
    }
    for key, value in figures.items():
        print(f"{key:>28}: {value}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
