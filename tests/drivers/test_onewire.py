"""DS18B20 probes read from sysfs files, with the kernel's CRC verdict."""

import pytest

from koprogo_node.config.model import OneWireSource
from koprogo_node.core.clock import Stamp
from koprogo_node.core.readings import Reading, Reject
from koprogo_node.drivers.onewire import OneWireThermometers, parse_w1_slave
from koprogo_node.errors import SensorUnavailable

GOOD = "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=23125\n"
BAD_CRC = "72 01 4b 46 7f ff 0e 10 57 : crc=58 NO\n72 01 4b 46 7f ff 0e 10 57 t=23125\n"
POWER_ON = (
    "50 05 4b 46 7f ff 0c 10 1c : crc=1c YES\n50 05 4b 46 7f ff 0c 10 1c t=85000\n"
)
NEGATIVE = (
    "5e ff 4b 46 7f ff 02 10 1b : crc=1b YES\n5e ff 4b 46 7f ff 02 10 1b t=-10125\n"
)
STAMP = Stamp(ts=1.8e9, trusted=True, mono_s=5.0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (GOOD, 23125),
        (NEGATIVE, -10125),
        (BAD_CRC, "crc_mismatch"),
        (POWER_ON, "power_on_value"),
        (GOOD.splitlines()[0], "truncated"),
    ],
)
def test_w1_slave_contents(text, expected):
    """Each kind of w1_slave content gives milli-degrees or its reason."""
    assert parse_w1_slave(text) == expected


def test_bus_reads_every_probe_and_rejects_bad_ones(tmp_path):
    """Good probes become readings in degC; a failed CRC is a reject."""
    for probe, text in (("28-0316a2795aff", GOOD), ("28-0417b1a8c3ff", BAD_CRC)):
        (tmp_path / probe).mkdir()
        (tmp_path / probe / "w1_slave").write_text(text)
    (tmp_path / "w1_bus_master1").mkdir()  # not a probe: ignored
    bus = OneWireThermometers(OneWireSource(devices_dir=str(tmp_path)))

    out = bus.read_all(STAMP)

    readings = [o for o in out if isinstance(o, Reading)]
    rejects = [o for o in out if isinstance(o, Reject)]
    assert [(r.sensor, r.value, r.unit) for r in readings] == [
        ("onewire.28-0316a2795aff", 23.125, "degC")
    ]
    assert [(r.sensor, r.reason) for r in rejects] == [
        ("onewire.28-0417b1a8c3ff", "crc_mismatch")
    ]


def test_missing_bus_is_unavailable(tmp_path):
    """No 1-Wire folder (module not loaded) raises SensorUnavailable."""
    bus = OneWireThermometers(OneWireSource(devices_dir=str(tmp_path / "none")))

    with pytest.raises(SensorUnavailable, match="no 1-Wire bus"):
        bus.read_all(STAMP)
