"""Train and export water_leak: leak probability over 24 hourly water volumes.

Run from the project root: ``python models/train_water_leak.py``. Trains on
SYNTHETIC household traces from the seeded generator below (no third-party
data); a second seed gives the held-out test set reported in the model card.
"""

import numpy as np
from mlp_onnx import export_sigmoid_mlp
from publish import MODELS_DIR, publish, save_reference
from sklearn.neural_network import MLPClassifier

from koprogo_node.detect.features import (
    LEAK_HOURS,
    leak_features,
    leak_probability_reference,
)

NAME = "water_leak"
TRAIN_SEED = 20240612
TEST_SEED = 20240613
TRAIN_DAYS = 40_000
TEST_DAYS = 10_000
HIDDEN = (16, 8)
LEAK_MIN_LPH, LEAK_MAX_LPH = 1.0, 50.0
# Hourly activity weights: quiet nights, morning and evening peaks.
DAY_PROFILE = np.array(
    [0.05, 0.03, 0.02, 0.02, 0.03, 0.1, 0.6, 1.0, 0.8, 0.5, 0.4, 0.45,
     0.5, 0.4, 0.35, 0.35, 0.4, 0.6, 0.8, 0.9, 0.8, 0.6, 0.35, 0.15]
)  # fmt: skip
# Typical draw-offs in litres: toilet flush, tap, shower, washing machine.
USES_L = np.array([6.0, 2.0, 50.0, 45.0])
USE_SHARES = np.array([0.45, 0.4, 0.1, 0.05])


def household_days(rng: np.random.Generator, days: int) -> np.ndarray:
    """Hourly litres for random 24-hour windows of random households."""
    people = rng.integers(1, 6, size=(days, 1))
    activity = rng.uniform(0.5, 2.0, size=(days, 1)) * people
    shift = rng.integers(0, 24, size=days)
    profile = DAY_PROFILE[(np.arange(LEAK_HOURS) + shift[:, None]) % 24]
    counts = rng.poisson(profile * activity * 1.5)
    litres = np.zeros(counts.shape)
    for kind, volume in enumerate(USES_L):
        share = rng.binomial(counts, USE_SHARES[kind] / USE_SHARES[kind:].sum())
        counts = counts - share
        litres += share * volume * rng.lognormal(0.0, 0.3, size=counts.shape)
    return litres


def inject_leaks(rng: np.random.Generator, litres: np.ndarray) -> np.ndarray:
    """Add a constant 1-50 L/h leak to half the days; return the labels."""
    leaking = rng.random(len(litres)) < 0.5
    rate = np.exp(rng.uniform(np.log(LEAK_MIN_LPH), np.log(LEAK_MAX_LPH), len(litres)))
    # Meter noise: a leak shows as rate +- 20 % per hour, never negative.
    jitter = rng.uniform(0.8, 1.2, size=litres.shape)
    litres += np.where(leaking[:, None], rate[:, None] * jitter, 0.0)
    return leaking, np.where(leaking, rate, 0.0)


def pulse_meter(rng: np.random.Generator, litres: np.ndarray) -> np.ndarray:
    """Whole litres per hour, as a 1 L/pulse meter with a random start reports."""
    start = rng.random((len(litres), 1))
    cumulative = np.floor(start + np.cumsum(litres, axis=1))
    return np.diff(np.concatenate([np.floor(start), cumulative], axis=1), axis=1)


def dataset(seed: int, days: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features, labels and leak rates (L/h, 0 = none) of one synthetic set."""
    rng = np.random.default_rng(seed)
    litres = household_days(rng, days)
    labels, rates = inject_leaks(rng, litres)
    return leak_features(pulse_meter(rng, litres)), labels, rates


def train() -> list:
    """Fit the classifier and return its layers as (weight, bias) pairs."""
    inputs, labels, _ = dataset(TRAIN_SEED, TRAIN_DAYS)
    model = MLPClassifier(
        hidden_layer_sizes=HIDDEN,
        alpha=1e-4,
        batch_size=256,
        max_iter=60,
        early_stopping=True,
        random_state=TRAIN_SEED,
    )
    model.fit(inputs, labels)
    return list(zip(model.coefs_, model.intercepts_, strict=True))


def report(layers: list) -> dict:
    """Precision and recall at 0.5 on the held-out synthetic seed."""
    inputs, labels, rates = dataset(TEST_SEED, TEST_DAYS)
    predicted = leak_probability_reference(inputs, layers) >= 0.5
    tp = int(np.sum(predicted & labels))
    figures = {
        "precision": round(tp / max(int(predicted.sum()), 1), 4),
        "recall": round(tp / max(int(labels.sum()), 1), 4),
        "false_positive_rate": round(float(np.mean(predicted[~labels])), 4),
    }
    for low, high in ((1, 3), (3, 10), (10, 50)):
        band = labels & (rates >= low) & (rates < high)
        figures[f"recall_{low}_{high}_lph"] = round(float(np.mean(predicted[band])), 4)
    print(figures)
    return figures


def main() -> None:
    """Train, export ONNX plus numpy reference weights, update the manifest."""
    layers = train()
    figures = report(layers)
    doc = "probability of a continuous water leak over 24 hourly volumes"
    export_sigmoid_mlp(layers, str(MODELS_DIR / f"{NAME}.onnx"), "features", doc)
    save_reference(NAME, layers)
    entry = publish(
        NAME,
        {
            "kind": "leak-probability",
            "input": "features",
            "input_shape": [None, 2 * LEAK_HOURS],
            "output": "probability",
            "features": "koprogo_node.detect.features.leak_features",
            "synthetic_test": figures,
        },
    )
    print(entry)


if __name__ == "__main__":
    main()
