"""DS18B20 probes: values by ROM, and an error word instead of a made-up value."""

from koprogo_node.core.clock import Stamp
from koprogo_node.core.readings import Reading, Reject
from koprogo_node.drivers.mqtt_mapping import decode_message
from tests.firmware import standin_ds18x20, standin_onewire

ROM_A = bytes.fromhex("28ff4c1a00160384")
ROM_B = bytes.fromhex("28aa01b2c3d4e5f6")
STAMP = Stamp(ts=1_700_000_000.0, trusted=True, mono_s=1.0)


def probes(known=()):
    from kpsat.probes import Probes

    bus = standin_onewire.OneWire(13)
    return Probes(standin_ds18x20.DS18X20(bus), known)


def test_each_probe_reads_by_rom_id() -> None:
    """Two probes give two values keyed by their ROM in hex."""
    standin_ds18x20.PROBES.update({ROM_A: 21.5, ROM_B: 55.25})
    bus = probes()

    assert bus.start() is True
    values = bus.read()

    assert values == {"28aa01b2c3d4e5f6": 55.25, "28ff4c1a00160384": 21.5}
    assert standin_ds18x20.BUS["conversions"] == 1


def test_crc_error_and_missing_probe_are_errors() -> None:
    """A CRC failure and a probe gone from the bus are reported, not valued."""
    standin_ds18x20.PROBES.update({ROM_A: 21.5, ROM_B: 55.25})
    bus = probes()
    bus.start()
    bus.read()
    standin_ds18x20.PROBES[ROM_A] = Exception("CRC error")
    del standin_ds18x20.PROBES[ROM_B]

    bus.start()
    values = bus.read()

    assert values == {"28ff4c1a00160384": "crc_error", "28aa01b2c3d4e5f6": "missing"}


def test_none_and_power_on_value_are_errors() -> None:
    """A None read and the 85 degC power-on value are not temperatures."""
    standin_ds18x20.PROBES.update({ROM_A: None, ROM_B: 85.0})
    bus = probes()

    bus.start()

    assert sorted(bus.read().values()) == ["no_value", "power_on_value"]


def test_bus_fault_marks_known_probes() -> None:
    """A shorted bus reports every probe seen before as bus_error."""
    bus = probes(known=["28ff4c1a00160384"])
    standin_ds18x20.BUS["fault"] = True

    assert bus.start() is False
    assert bus.read() == {"28ff4c1a00160384": "bus_error"}


def test_node_rejects_the_error_and_keeps_the_good_probe() -> None:
    """Through the node's profile the failed probe is a reject, the other a reading."""
    from kpsat import messages

    from tests.firmware.support import example_config

    entry = messages.record(
        example_config(),
        3,
        1_700_000_000,
        0,
        None,
        {"28ff4c1a00160384": 21.5, "28aa01b2c3d4e5f6": "crc_error"},
        None,
    )
    topic = messages.state_topic("cellar-1")

    out = decode_message(
        None, topic, messages.state_payload(entry, 0).encode(), stamp=STAMP
    )

    bad = [o for o in out if isinstance(o, Reject)]
    good = {o.sensor: o.value for o in out if isinstance(o, Reading)}
    assert [(r.sensor, r.reason) for r in bad] == [
        ("mqtt.cellar-1.temperature_28aa01b2c3d4e5f6", "not_a_number")
    ]
    assert good["mqtt.cellar-1.temperature_28ff4c1a00160384"] == 21.5
    assert "mqtt.cellar-1.temperature_28aa01b2c3d4e5f6" not in good
