"""Feature windows and the numpy reference of each shipped model's scoring.

The ONNX models receive exactly the windows built here; the reference forward
passes below compute the same scores in numpy, so tests and the bench can
check the ONNX files against them.

anomaly-mlp (generic, any univariate series)
    input ``(n, ANOMALY_CONTEXT + 1)``: the last ``ANOMALY_CONTEXT`` points and
    the current one, centred on the context's median and divided by its robust
    scale, clipped to ``±CLIP``. Output: ``|current - forecast|`` in those units.

water-leak (hourly water use)
    input ``(n, 2 * LEAK_HOURS)``: ``log1p`` of 24 hourly litres in time order,
    then the same values sorted ascending (the night minimum is the leak cue).
    Output: probability that a continuous leak runs through the window.
"""

from pathlib import Path

import numpy as np

ANOMALY_CONTEXT = 48
LEAK_HOURS = 24
CLIP = 10.0
MAD_TO_SIGMA = 1.4826
MEAN_AD_TO_SIGMA = 1.2533

Layers = list[tuple[np.ndarray, np.ndarray]]


def sliding_windows(values: np.ndarray, width: int) -> np.ndarray:
    """Return every run of `width` consecutive values as rows (a view)."""
    x = np.asarray(values, dtype=np.float64)
    if x.size < width:
        return np.empty((0, width), dtype=np.float64)
    return np.lib.stride_tricks.sliding_window_view(x, width)


def normalise_windows(raw: np.ndarray) -> np.ndarray:
    """Scale rows by the median and robust spread of all but their last value."""
    context = raw[:, :-1]
    centre = np.median(context, axis=1, keepdims=True)
    deviation = np.abs(context - centre)
    mad = MAD_TO_SIGMA * np.median(deviation, axis=1, keepdims=True)
    mean_ad = MEAN_AD_TO_SIGMA * np.mean(deviation, axis=1, keepdims=True)
    # MAD is 0 on mostly flat contexts; the mean deviation and a relative floor
    # keep the scale positive so one change does not become an infinite score.
    floor = 1e-3 * np.abs(centre) + 1e-9
    scale = np.maximum(np.maximum(mad, mean_ad), floor)
    scaled = (raw - centre) / scale
    return np.clip(scaled, -CLIP, CLIP).astype(np.float32)


def anomaly_windows(
    values: np.ndarray, context: int = ANOMALY_CONTEXT
) -> tuple[np.ndarray, np.ndarray]:
    """Return normalised windows without gaps and the index each one ends at."""
    raw = sliding_windows(values, context + 1)
    complete = np.isfinite(raw).all(axis=1)
    ends = np.flatnonzero(complete) + context
    return normalise_windows(raw[complete]), ends


def anomaly_scores(
    values: np.ndarray, window_scores: np.ndarray, ends: np.ndarray
) -> np.ndarray:
    """Spread window scores back onto the series; points without one get NaN."""
    scores = np.full(np.asarray(values).shape, np.nan)
    scores[ends] = window_scores
    return scores


def leak_features(hourly_litres: np.ndarray) -> np.ndarray:
    """Return water-leak model inputs for rows of 24 hourly volumes in litres."""
    x = np.log1p(np.clip(np.asarray(hourly_litres, dtype=np.float64), 0.0, None))
    if x.ndim != 2 or x.shape[1] != LEAK_HOURS:
        raise ValueError(f"expected rows of {LEAK_HOURS} hourly values, got {x.shape}")
    return np.concatenate([x, np.sort(x, axis=1)], axis=1).astype(np.float32)


def mlp_forward(x: np.ndarray, layers: Layers) -> np.ndarray:
    """Run a dense ReLU network; the last layer stays linear."""
    hidden = np.asarray(x, dtype=np.float32)
    for index, (weight, bias) in enumerate(layers):
        hidden = hidden @ weight + bias
        if index < len(layers) - 1:
            hidden = np.maximum(hidden, 0.0)
    return hidden


def anomaly_score_reference(windows: np.ndarray, layers: Layers) -> np.ndarray:
    """numpy twin of anomaly-mlp: absolute forecast error of the last point."""
    forecast = mlp_forward(windows[:, :-1], layers)[:, 0]
    return np.abs(windows[:, -1] - forecast)


def leak_probability_reference(features: np.ndarray, layers: Layers) -> np.ndarray:
    """numpy twin of water-leak: sigmoid of the network's logit."""
    logit = mlp_forward(features, layers)[:, 0]
    return 1.0 / (1.0 + np.exp(-logit))


def load_layers(path: Path) -> Layers:
    """Load weights saved as w0, b0, w1, b1, ... in an .npz file."""
    with np.load(path) as saved:
        count = len(saved.files) // 2
        return [(saved[f"w{i}"], saved[f"b{i}"]) for i in range(count)]
