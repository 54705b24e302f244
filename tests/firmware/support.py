"""Helpers shared by the firmware tests."""

import json
from pathlib import Path

FIRMWARE = Path(__file__).resolve().parents[2] / "firmware"
EXAMPLE = FIRMWARE / "config.example.json"


def filled_example() -> dict:
    """config.example.json with every placeholder given a value."""
    raw = json.loads(EXAMPLE.read_text())
    raw["device_id"] = "cellar-1"
    raw["wifi"].update(ssid="building-iot", password="wifi-secret")
    raw["broker"].update(host="127.0.0.1", user="sat", password="sat-secret")
    return raw


def example_config(**changes) -> dict:
    """The checked example config with top-level keys replaced by `changes`."""
    from kpsat.settings import check

    raw = filled_example()
    raw.update(changes)
    return check(raw)
