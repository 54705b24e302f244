"""Run the firmware under CPython with stand-in MicroPython modules."""

import sys
import types
from pathlib import Path

import pytest

from tests.firmware import (
    standin_ds18x20,
    standin_esp32,
    standin_machine,
    standin_network,
    standin_onewire,
    standin_umqtt,
)

FIRMWARE = Path(__file__).resolve().parents[2] / "firmware"
if str(FIRMWARE) not in sys.path:
    sys.path.insert(0, str(FIRMWARE))


@pytest.fixture(autouse=True)
def standins(monkeypatch: pytest.MonkeyPatch) -> None:
    """machine, network, onewire, ds18x20, esp32 and umqtt.simple as stand-ins."""
    umqtt = types.ModuleType("umqtt")
    umqtt.simple = standin_umqtt
    modules = {
        "machine": standin_machine,
        "network": standin_network,
        "onewire": standin_onewire,
        "ds18x20": standin_ds18x20,
        "esp32": standin_esp32,
        "umqtt": umqtt,
        "umqtt.simple": standin_umqtt,
    }
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    for module in (standin_machine, standin_network, standin_ds18x20, standin_esp32):
        module.reset_state()
