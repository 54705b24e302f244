"""Train and export anomaly_mlp: a generic one-step forecaster on synthetic series.

Run from the project root: ``python models/train_anomaly_mlp.py``. Seeded and
reproducible on one machine; it trains on synthetic series only, so every NAB
series stays held out for evaluation.
"""

import numpy as np
from mlp_onnx import export_residual_mlp
from publish import MODELS_DIR, publish, save_reference
from sklearn.neural_network import MLPRegressor

from koprogo_node.detect.features import ANOMALY_CONTEXT, anomaly_windows

NAME = "anomaly_mlp"
SEED = 20240611
SERIES = 600
LENGTH = 1500
WINDOWS_PER_SERIES = 300
HIDDEN = (32, 16)


def periodic_shape(
    rng: np.random.Generator, t: np.ndarray, period: float
) -> np.ndarray:
    """One of sine, square, sawtooth or pulse train with the given period."""
    phase = (t / period + rng.random()) % 1.0
    kind = rng.integers(4)
    if kind == 0:
        return np.sin(2 * np.pi * phase)
    if kind == 1:
        return np.where(phase < rng.uniform(0.2, 0.8), 1.0, -1.0)
    if kind == 2:
        return 2 * phase - 1
    return (phase < rng.uniform(0.02, 0.2)).astype(float)


def noise(rng: np.random.Generator, length: int) -> np.ndarray:
    """AR(1) noise with a random memory, sometimes heavy-tailed."""
    shocks = rng.standard_normal(length)
    if rng.random() < 0.3:
        shocks = rng.standard_t(3, length) / 1.7
    phi = rng.uniform(0.0, 0.95)
    out = np.empty(length)
    level = 0.0
    for index, shock in enumerate(shocks):
        level = phi * level + shock
        out[index] = level
    return out * np.sqrt(1 - phi**2)


def synthetic_series(rng: np.random.Generator, length: int) -> np.ndarray:
    """A normal-behaviour series: seasonal shapes, trend, walk, noise, rounding."""
    t = np.arange(length, dtype=float)
    series = np.zeros(length)
    for _ in range(rng.integers(0, 3)):
        period = np.exp(rng.uniform(np.log(8), np.log(400)))
        series += np.exp(rng.uniform(-1, 2)) * periodic_shape(rng, t, period)
    if rng.random() < 0.4:
        series += np.cumsum(rng.standard_normal(length)) * np.exp(rng.uniform(-3, -1))
    series += rng.normal(0, 0.01) * t
    series += np.exp(rng.uniform(-4, 1)) * noise(rng, length)
    if rng.random() < 0.2:
        series = np.round(series * rng.uniform(0.5, 5)) / 5
    return series * np.exp(rng.uniform(-3, 5)) + rng.normal(0, 100)


def training_set(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Sample normalised windows; the target is the window's last value."""
    inputs, targets = [], []
    for _ in range(SERIES):
        windows, _ = anomaly_windows(synthetic_series(rng, LENGTH))
        chosen = windows[rng.choice(len(windows), WINDOWS_PER_SERIES, replace=False)]
        inputs.append(chosen[:, :-1])
        targets.append(chosen[:, -1])
    return np.concatenate(inputs), np.concatenate(targets)


def train() -> list:
    """Fit the forecaster and return its layers as (weight, bias) pairs."""
    rng = np.random.default_rng(SEED)
    inputs, targets = training_set(rng)
    model = MLPRegressor(
        hidden_layer_sizes=HIDDEN,
        alpha=1e-4,
        batch_size=512,
        learning_rate_init=1e-3,
        max_iter=40,
        early_stopping=True,
        random_state=SEED,
    )
    model.fit(inputs, targets)
    score = model.best_validation_score_
    print(f"trained on {len(inputs)} windows, validation R2 {score:.3f}")
    return list(zip(model.coefs_, model.intercepts_, strict=True))


def main() -> None:
    """Train, export ONNX plus numpy reference weights, update the manifest."""
    layers = train()
    export_residual_mlp(layers, ANOMALY_CONTEXT, str(MODELS_DIR / f"{NAME}.onnx"))
    save_reference(NAME, layers)
    entry = publish(
        NAME,
        {
            "kind": "anomaly-score",
            "input": "window",
            "input_shape": [None, ANOMALY_CONTEXT + 1],
            "output": "score",
            "features": "koprogo_node.detect.features.anomaly_windows",
        },
    )
    print(entry)


if __name__ == "__main__":
    main()
