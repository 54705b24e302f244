"""Tests for the shipped model files, their manifest and list_models()."""

import json
import shutil
from pathlib import Path

import pytest

from koprogo_node.detect.models import (
    MAX_MODEL_BYTES,
    file_sha256,
    list_models,
    load_manifest,
    model_entry,
    models_dir,
)
from koprogo_node.errors import ConfigError

SHIPPED = ["anomaly_mlp", "water_leak"]


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_is_small_and_matches_manifest(name):
    """Each .onnx is at most 256 KB and its digest and size match the manifest."""
    entry = model_entry(name)
    path = models_dir() / entry["file"]

    assert path.stat().st_size <= MAX_MODEL_BYTES
    assert entry["size"] == path.stat().st_size
    assert entry["sha256"] == file_sha256(path)
    assert entry["reference_sha256"] == file_sha256(models_dir() / entry["reference"])


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_has_a_card_with_its_digest(name):
    """models/<name>.md quotes the manifest's sha256."""
    card = (models_dir() / f"{name}.md").read_text()

    assert model_entry(name)["sha256"] in card


def test_list_models_reports_every_shipped_model_ok():
    """The shipped folder lists both models, all ok."""
    rows = list_models()

    assert [r["name"] for r in rows] == SHIPPED
    assert all(r["ok"] and r["problem"] is None for r in rows)
    assert {"name", "file", "sha256", "size", "ok", "problem"} <= set(rows[0])


def test_list_models_reports_tampered_and_missing_files(tmp_path, monkeypatch):
    """A changed file and a missing file each show a problem, found via the env."""
    for item in ["manifest.json", "anomaly_mlp.onnx"]:
        shutil.copy(models_dir() / item, tmp_path / item)
    (tmp_path / "anomaly_mlp.onnx").write_bytes(b"tampered")
    monkeypatch.setenv("KOPROGO_MODELS", str(tmp_path))

    rows = {r["name"]: r for r in list_models()}

    assert "sha256 mismatch" in rows["anomaly_mlp"]["problem"]
    assert rows["water_leak"]["problem"].startswith("file missing")
    assert not any(r["ok"] for r in rows.values())


def test_missing_manifest_is_a_config_error(tmp_path: Path):
    """An empty folder raises ConfigError naming the manifest path."""
    with pytest.raises(ConfigError, match="manifest.json"):
        load_manifest(tmp_path)


def test_unknown_model_lists_known_names():
    """Asking for an unknown model names the ones that exist."""
    with pytest.raises(ConfigError, match="anomaly_mlp, water_leak"):
        model_entry("nope")


def test_manifest_declares_input_shapes():
    """Each entry gives its input name and [None, width] shape."""
    manifest = json.loads((models_dir() / "manifest.json").read_text())

    shapes = {m["name"]: m["input_shape"] for m in manifest["models"]}

    assert shapes == {"anomaly_mlp": [None, 49], "water_leak": [None, 48]}
