"""From a `[[sources]]` table to a running driver."""

from __future__ import annotations

import importlib

from ..config.model import SourceConfig
from .base import Source

# Source type -> (module, class). Modules are imported only when configured:
# some drivers pull in large libraries (dsmr_parser, pymodbus, paho, gpiozero).
DRIVERS: dict[str, tuple[str, str]] = {
    "p1": ("p1_reader", "P1Reader"),
    "csv": ("csv_replay", "CsvReplay"),
    "simulated": ("simulated", "SimulatedBuilding"),
    "modbus": ("modbus", "ModbusPoller"),
    "mqtt": ("mqtt", "MqttSubscriber"),
    "gpio_pulse": ("gpio_pulse", "GpioPulseCounter"),
    "onewire": ("onewire", "OneWireThermometers"),
}


def build_source(config: SourceConfig) -> Source:
    """Instantiate the driver for one configured source."""
    module_name, class_name = DRIVERS[config.TYPE]
    module = importlib.import_module(f".{module_name}", __package__)
    return getattr(module, class_name)(config)
