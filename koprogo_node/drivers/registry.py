"""From a `[[sources]]` table to a running driver."""

from __future__ import annotations

from ..config.model import (
    CsvSource,
    GpioPulseSource,
    ModbusSource,
    MqttSource,
    OneWireSource,
    P1Source,
    SimulatedSource,
    SourceConfig,
)
from .base import Source


def build_source(config: SourceConfig) -> Source:
    """Instantiate the driver for one configured source."""
    if isinstance(config, P1Source):
        from .p1_reader import P1Reader

        return P1Reader(config)
    if isinstance(config, CsvSource):
        from .csv_replay import CsvReplay

        return CsvReplay(config)
    if isinstance(config, SimulatedSource):
        from .simulated import SimulatedBuilding

        return SimulatedBuilding(config)
    if isinstance(config, ModbusSource):
        from .modbus import ModbusPoller

        return ModbusPoller(config)
    if isinstance(config, MqttSource):
        from .mqtt import MqttSubscriber

        return MqttSubscriber(config)
    if isinstance(config, GpioPulseSource):
        from .gpio_pulse import GpioPulseCounter

        return GpioPulseCounter(config)
    if isinstance(config, OneWireSource):
        from .onewire import OneWireThermometers

        return OneWireThermometers(config)
    raise TypeError(f"no driver for {type(config).__name__}")
