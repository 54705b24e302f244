"""Tests that feature windows and the numpy references match the ONNX models."""

import numpy as np
import pytest

from koprogo_node.detect import features
from koprogo_node.detect.models import models_dir
from koprogo_node.detect.onnx_runner import ModelRunner


def test_windows_skip_gaps_and_report_their_end():
    """A window touching a NaN is dropped; ends index the current point."""
    values = np.arange(100.0)
    values[60] = np.nan

    windows, ends = features.anomaly_windows(values, context=10)

    assert windows.shape == (100 - 10 - 11, 11)
    assert ends[0] == 10
    assert not np.any((ends >= 60) & (ends <= 70))


def test_normalised_windows_are_scale_and_offset_free():
    """Shifting and scaling a series leaves its feature windows unchanged."""
    values = np.random.default_rng(2).normal(size=200)

    plain, _ = features.anomaly_windows(values)
    moved, _ = features.anomaly_windows(1000 + 50 * values)

    np.testing.assert_allclose(plain, moved, atol=1e-4)


def test_flat_context_gives_bounded_values():
    """A step after a flat context is clipped, not infinite."""
    values = np.r_[np.zeros(60), 5.0]

    windows, _ = features.anomaly_windows(values)

    assert np.all(np.abs(windows) <= features.CLIP)


def test_leak_features_shape_and_sorted_half():
    """24 log volumes then the same sorted ascending."""
    litres = np.arange(24.0)[::-1][None, :]

    out = features.leak_features(litres)

    assert out.shape == (1, 48)
    np.testing.assert_allclose(out[0, 24:], np.log1p(np.arange(24.0)), rtol=1e-6)


def test_leak_features_reject_wrong_width():
    """Rows must hold exactly 24 hourly values."""
    with pytest.raises(ValueError, match="24 hourly"):
        features.leak_features(np.zeros((2, 23)))


def test_anomaly_reference_equals_onnx_on_random_windows():
    """numpy and onnxruntime agree within 1e-4 on 2,000 random windows."""
    rng = np.random.default_rng(3)
    series = np.cumsum(rng.normal(size=2100)) + rng.normal(size=2100)
    windows, _ = features.anomaly_windows(series)
    layers = features.load_layers(models_dir() / "anomaly_mlp.npz")

    expected = features.anomaly_score_reference(windows, layers)
    actual = ModelRunner.from_manifest("anomaly_mlp").score(windows)

    np.testing.assert_allclose(actual, expected, atol=1e-4, rtol=1e-4)


def test_leak_reference_equals_onnx_on_random_windows():
    """numpy and onnxruntime agree within 1e-5 on 1,000 random days."""
    litres = np.random.default_rng(4).exponential(20.0, size=(1000, 24))
    inputs = features.leak_features(litres)
    layers = features.load_layers(models_dir() / "water_leak.npz")

    expected = features.leak_probability_reference(inputs, layers)
    actual = ModelRunner.from_manifest("water_leak").score(inputs)

    np.testing.assert_allclose(actual, expected, atol=1e-5)


def test_leak_model_sees_a_constant_night_flow():
    """A quiet day scores low; the same day plus 5 L/h scores high."""
    quiet = np.zeros((1, 24))
    quiet[0, [7, 8, 19, 20]] = [60.0, 12.0, 8.0, 45.0]
    leaking = quiet + 5.0
    runner = ModelRunner.from_manifest("water_leak")

    low, high = runner.score(features.leak_features(np.r_[quiet, leaking]))

    assert low < 0.2
    assert high > 0.8
