"""State payloads as the node's koprogo-satellite profile reads them."""

import pytest

from koprogo_node.core.clock import Stamp
from koprogo_node.core.readings import Kind, Reading, Reject
from koprogo_node.drivers.mqtt_mapping import decode_message, mqtt_profile
from tests.firmware.support import example_config

STAMP = Stamp(ts=1_700_000_100.0, trusted=True, mono_s=1.0)


def test_profile_parses() -> None:
    """sensors/mqtt/koprogo-satellite.toml is a valid, auto-detected profile."""
    profile = mqtt_profile("koprogo-satellite")

    assert profile.auto_detect
    assert profile.match("koprogo-sat/cellar-1/state") is not None
    assert profile.match("koprogo/node-1/water/state") is None


@pytest.mark.parametrize(
    ("kind", "ppu", "channel", "unit", "value"),
    [
        ("water", 1000, "water", "m3", 16_777.217),
        ("gas", 100, "gas", "m3", 167_772.17),
        ("electricity", 800, "import_total", "kWh", 20_971.52125),
    ],
)
def test_meter_total_maps_to_the_node_channel(
    kind: str, ppu: int, channel: str, unit: str, value: float
) -> None:
    """Each meter kind lands on the node's channel, unit and counter kind, exactly."""
    from kpsat import messages

    meter = {"kind": kind, "pin": 4, "pulses_per_unit": ppu}
    config = example_config(meter=meter, leak=None, onewire=None)
    entry = messages.record(config, 1, 1_700_000_000, 16_777_217, None, None, -70)
    payload = messages.state_payload(entry, 4).encode()

    out = decode_message(None, messages.state_topic("cellar-1"), payload, stamp=STAMP)

    assert not [o for o in out if isinstance(o, Reject)]
    got = {o.sensor.rsplit(".", 1)[1]: o for o in out if isinstance(o, Reading)}
    assert set(got) == {channel, "pulses", "dropped", "rssi"}
    assert (got[channel].value, got[channel].unit) == (value, unit)
    assert got[channel].kind is Kind.COUNTER
    assert got["dropped"].value == 4
    assert {o.ts for o in got.values()} == {1_700_000_000}


def test_meter_total_is_exact_beyond_single_precision() -> None:
    """Totals are built from integers, so 2**24 + 1 litres stay exact."""
    from kpsat.messages import meter_total

    assert meter_total(16_777_217, 1000) == "16777.217"
    assert meter_total(5, 1) == "5.0"
    assert meter_total(1, 3) == "0.333333"


def test_reading_without_clock_is_stamped_by_the_node() -> None:
    """No `ts` when the satellite's clock was never set: the node's stamp is used."""
    from kpsat import messages

    config = example_config(leak=None, onewire=None)
    entry = messages.record(config, 1, None, 10, None, None, None)

    out = decode_message(
        "koprogo-satellite",
        messages.state_topic("cellar-1"),
        messages.state_payload(entry, 0).encode(),
        stamp=STAMP,
    )

    assert "ts" not in entry
    assert {o.ts for o in out} == {STAMP.ts}
