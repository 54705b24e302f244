"""Record a freshly exported model in manifest.json and its model card."""

import hashlib
import json
import re
from pathlib import Path

import numpy as np

MODELS_DIR = Path(__file__).resolve().parent
MANIFEST = MODELS_DIR / "manifest.json"


def save_reference(name: str, layers: list) -> Path:
    """Save the weights as w0, b0, ... for the numpy reference."""
    path = MODELS_DIR / f"{name}.npz"
    arrays = {}
    for index, (weight, bias) in enumerate(layers):
        arrays[f"w{index}"] = np.asarray(weight, dtype=np.float32)
        arrays[f"b{index}"] = np.asarray(bias, dtype=np.float32)
    np.savez(path, **arrays)
    return path


def publish(name: str, entry: dict) -> dict:
    """Add digests and sizes to `entry`, store it in the manifest, patch the card."""
    onnx_path = MODELS_DIR / f"{name}.onnx"
    reference = MODELS_DIR / f"{name}.npz"
    entry = {
        "name": name,
        "file": onnx_path.name,
        "sha256": sha256_of(onnx_path),
        "size": onnx_path.stat().st_size,
        **entry,
        "reference": reference.name,
        "reference_sha256": sha256_of(reference),
    }
    manifest = _read_manifest()
    others = [m for m in manifest["models"] if m["name"] != name]
    manifest["models"] = sorted([*others, entry], key=lambda m: m["name"])
    MANIFEST.write_text(json.dumps(manifest, indent=2) + "\n")
    _patch_card(name, entry["sha256"], entry["size"])
    return entry


def sha256_of(path: Path) -> str:
    """Return the hex SHA-256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read_manifest() -> dict:
    """Load the manifest or start an empty one."""
    if MANIFEST.exists():
        return json.loads(MANIFEST.read_text())
    return {"format": 1, "release_public_key": None, "models": []}


def _patch_card(name: str, digest: str, size: int) -> None:
    """Rewrite the sha256 and size lines of models/<name>.md if it exists."""
    card = MODELS_DIR / f"{name}.md"
    if not card.exists():
        return
    text = re.sub(r"(?m)^- sha256: .*$", f"- sha256: `{digest}`", card.read_text())
    text = re.sub(r"(?m)^- size: .*$", f"- size: {size} bytes", text)
    card.write_text(text)
