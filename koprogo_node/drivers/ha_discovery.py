"""Home Assistant MQTT discovery for the node's own readings (pure, no I/O).

Each channel becomes a Home Assistant sensor: a retained config message on
`<prefix>/sensor/<node>/<object>/config`, and its value, retained too, on
`koprogo/<node>/<object>/state`. A building's existing Home Assistant then
lists the node's meters without any setup.
"""

from __future__ import annotations

import json
import re

from ..core.readings import Kind, Reading

UNITS = {"m3": "m³", "degC": "°C"}
DEVICE_CLASSES = {
    "kWh": "energy",
    "Wh": "energy",
    "W": "power",
    "kW": "power",
    "V": "voltage",
    "A": "current",
    "degC": "temperature",
    "Hz": "frequency",
    "L": "water",
}


def object_id(sensor: str) -> str:
    """A Home Assistant object id for a channel name."""
    return re.sub(r"[^A-Za-z0-9_]", "_", sensor)


def state_topic(node_id: str, sensor: str) -> str:
    """Where the channel's value is published."""
    return f"koprogo/{node_id}/{object_id(sensor)}/state"


def config_message(prefix: str, node_id: str, reading: Reading) -> tuple[str, str]:
    """The retained discovery (topic, payload) for the reading's channel."""
    oid = object_id(reading.sensor)
    config = {
        "name": reading.sensor,
        "unique_id": f"koprogo_{object_id(node_id)}_{oid}",
        "object_id": f"koprogo_{oid}",
        "state_topic": state_topic(node_id, reading.sensor),
        "unit_of_measurement": UNITS.get(reading.unit, reading.unit),
        "state_class": (
            "total_increasing" if reading.kind is Kind.COUNTER else "measurement"
        ),
        "device": {
            "identifiers": [f"koprogo_{object_id(node_id)}"],
            "name": f"KoproGo node {node_id}",
            "manufacturer": "KoproGo",
        },
    }
    device_class = _device_class(reading)
    if device_class:
        config["device_class"] = device_class
    topic = f"{prefix}/sensor/{object_id(node_id)}/{oid}/config"
    return topic, json.dumps(config, sort_keys=True)


def _device_class(reading: Reading) -> str | None:
    if reading.unit == "m3":
        return "gas" if "gas" in reading.sensor else "water"
    return DEVICE_CLASSES.get(reading.unit)
