"""Find the shipped ONNX models and describe them from their manifest."""

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from koprogo_node.errors import ConfigError

MODELS_ENV = "KOPROGO_MODELS"
MANIFEST_NAME = "manifest.json"
MAX_MODEL_BYTES = 256 * 1024


INSTALLED = Path("/usr/share/koprogo-node/models")


def models_dir() -> Path:
    """$KOPROGO_MODELS, else the checkout's models/ folder, else the installed one."""
    override = os.environ.get(MODELS_ENV)
    if override:
        return Path(override)
    checkout = Path(__file__).resolve().parents[2] / "models"
    return checkout if checkout.is_dir() else INSTALLED


def load_manifest(directory: Path | None = None) -> dict[str, Any]:
    """Read manifest.json, raising ConfigError when missing or malformed."""
    path = (directory or models_dir()) / MANIFEST_NAME
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"model manifest not found: {path}") from exc
    except (OSError, ValueError) as exc:
        raise ConfigError(f"model manifest {path} is unreadable: {exc}") from exc
    if not isinstance(manifest.get("models"), list):
        raise ConfigError(f"model manifest {path} has no 'models' list")
    return manifest


def model_entry(name: str, directory: Path | None = None) -> dict[str, Any]:
    """Return the manifest entry of one model, or raise ConfigError."""
    models = load_manifest(directory)["models"]
    for entry in models:
        if entry.get("name") == name:
            return entry
    known = ", ".join(sorted(str(m.get("name")) for m in models))
    raise ConfigError(f"unknown model {name!r}; the manifest lists: {known}")


def list_models(directory: Path | None = None) -> list[dict[str, Any]]:
    """Describe each manifest model: name, file, sha256, size, ok, problem."""
    directory = directory or models_dir()
    return [_describe(entry, directory) for entry in load_manifest(directory)["models"]]


def file_sha256(path: Path) -> str:
    """Return the hex SHA-256 digest of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _describe(entry: dict[str, Any], directory: Path) -> dict[str, Any]:
    """Check one entry against its file without loading the model."""
    path = directory / str(entry.get("file", ""))
    row = {
        "name": entry.get("name"),
        "file": str(path),
        "sha256": entry.get("sha256"),
        "file_sha256": file_sha256(path) if path.is_file() else None,
        "size": path.stat().st_size if path.is_file() else None,
        "ok": False,
        "problem": None,
    }
    row["problem"] = _problem(entry, path)
    row["ok"] = row["problem"] is None
    return row


def _problem(entry: dict[str, Any], path: Path) -> str | None:
    """Return why a model cannot be used, or None when it looks fine."""
    if not path.is_file():
        return f"file missing: {path}"
    if path.stat().st_size > MAX_MODEL_BYTES:
        return f"file larger than {MAX_MODEL_BYTES} bytes"
    actual = file_sha256(path)
    if actual != entry.get("sha256"):
        return f"sha256 mismatch: expected {entry.get('sha256')}, actual {actual}"
    return None
