"""decode_message: MQTT payloads to readings through the sensors/mqtt profiles."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path

import pytest

from koprogo_node.core.clock import Stamp
from koprogo_node.core.readings import Kind, Reading, Reject
from koprogo_node.drivers.mqtt_mapping import decode_message, mqtt_profile
from koprogo_node.drivers.profiles import list_profiles

PAYLOADS = Path(__file__).parents[2] / ".." / "shared" / "data" / "mqtt-payloads"
STAMP = Stamp(ts=1_700_000_000.0, trusted=True, mono_s=12.0)
PROFILE_BY_FOLDER = {
    "tasmota": "tasmota",
    "zigbee2mqtt": "zigbee2mqtt",
    "esphome": "esphome",
    "ha-discovery": None,
}


def sample_paths() -> list[Path]:
    """Every sample's topic file, or nothing when the samples are absent."""
    return sorted(PAYLOADS.rglob("*.topic")) if PAYLOADS.is_dir() else []


def sample(stem: str) -> tuple[str, bytes]:
    """The topic (annotations dropped) and payload of one sample."""
    if not PAYLOADS.is_dir():
        pytest.skip(f"MQTT payload samples not found at {PAYLOADS}")
    topic_file = next(PAYLOADS.rglob(f"{stem}.topic"))
    payload = next(
        p for p in topic_file.parent.glob(f"{stem}.*") if p.suffix != ".topic"
    )
    topic = topic_file.read_text().strip().split(" (")[0]
    return topic, payload.read_bytes()


def values(out: list[Reading | Reject]) -> dict[str, float]:
    """Readings by sensor name; fails on any reject."""
    assert [o for o in out if isinstance(o, Reject)] == []
    return {o.sensor: o.value for o in out if isinstance(o, Reading)}


def profile_for(topic_file: Path) -> str | None:
    """The profile a subscription would name for this sample."""
    folder = topic_file.parent.name
    if folder == "shelly":
        return "shelly-gen1" if topic_file.stem.startswith("gen1") else "shelly-gen2"
    return PROFILE_BY_FOLDER[folder]


@pytest.mark.parametrize("topic_file", sample_paths(), ids=lambda p: p.stem)
def test_every_sample_decodes_without_error(topic_file: Path) -> None:
    """Each recorded payload maps to readings and rejects, never an exception."""
    topic, payload = sample(topic_file.stem)

    out = decode_message(profile_for(topic_file), topic, payload, stamp=STAMP)

    assert all(isinstance(o, (Reading, Reject)) for o in out)
    assert all(math.isfinite(o.value) for o in out if isinstance(o, Reading))


def test_samples_present_or_skipped() -> None:
    """The payload samples are where the tests expect them."""
    if not PAYLOADS.is_dir():
        pytest.skip(f"MQTT payload samples not found at {PAYLOADS}")

    assert len(sample_paths()) >= 38


def test_tasmota_pow_r2_maps_energy_channels() -> None:
    """Sonoff Pow R2 telemetry gives kWh counter, W, V and A under the device."""
    topic, payload = sample("sonoff_pow_r2__tele_SENSOR")

    out = decode_message("tasmota", topic, payload, stamp=STAMP)

    assert values(out) == {
        "mqtt.pow1.import_total": 6.294,
        "mqtt.pow1.power_import": 2635.0,
        "mqtt.pow1.voltage": 227.0,
        "mqtt.pow1.current": 11.661,
    }
    total = next(o for o in out if o.sensor == "mqtt.pow1.import_total")
    assert (total.kind, total.unit) == (Kind.COUNTER, "kWh")


def test_tasmota_status8_is_unwrapped_from_status_sns() -> None:
    """Status 8 answers (StatusSNS wrapper, old date format) map like telemetry."""
    topic, payload = sample("old_fw_5_12_status_sns_pow")

    out = decode_message("tasmota", topic, payload, stamp=STAMP)

    assert values(out)["mqtt.sonoff.import_total"] == 3.185


def test_tasmota_arrays_become_numbered_channels() -> None:
    """Two-channel arrays give _1/_2 channels; the scalar voltage stays single."""
    topic, payload = sample("sonoff_dual_r3_two_channel_arrays")

    got = values(decode_message("tasmota", topic, payload, stamp=STAMP))

    assert got["mqtt.tasmota.power_import_1"] == 52.0
    assert got["mqtt.tasmota.power_import_2"] == 5.0
    assert got["mqtt.tasmota.import_total_2"] == 0.254
    assert got["mqtt.tasmota.voltage"] == 235.0


def test_tasmota_per_phase_object_becomes_phase_channels() -> None:
    """A Total given as {"Phase1": ..} gives one counter per phase."""
    topic, payload = sample("ha_tests_energy_total_per_phase_dict")

    got = values(decode_message("tasmota", topic, payload, stamp=STAMP))

    assert got == {
        "mqtt._topic_.import_total_phase1": 0.017,
        "mqtt._topic_.import_total_phase2": 0.017,
    }


def test_tasmota_custom_full_topic_names_the_device() -> None:
    """A FullTopic with the prefix after the device still finds the device."""
    topic, payload = sample("teleinfo_linky_1")

    got = values(decode_message(None, topic, payload, stamp=STAMP))

    assert got["mqtt.denky_D6C0C0.import_total"] == 9098.245
    assert "mqtt.denky_D6C0C0.today" not in got


def test_plausible_device_time_is_used() -> None:
    """A Tasmota Time close to a trusted stamp becomes the reading's time."""
    topic, payload = sample("sonoff_dual_r3_two_channel_arrays")
    device_ts = datetime(2026, 9, 18, 11, 19, 21).timestamp()
    stamp = Stamp(ts=device_ts + 30, trusted=True, mono_s=1.0)

    out = decode_message("tasmota", topic, payload, stamp=stamp)

    assert {o.ts for o in out} == {device_ts}
    assert {o.mono_s for o in out} == {None}


def test_device_time_before_counter_start_is_ignored() -> None:
    """A Time earlier than TotalStartTime (clock unset) yields to the stamp."""
    topic, payload = sample("sonoff_pow_r2__tele_SENSOR")
    stamp = Stamp(
        ts=datetime(2018, 2, 15, 17, 37, 40).timestamp(), trusted=True, mono_s=3.0
    )

    out = decode_message("tasmota", topic, payload, stamp=stamp)

    assert {o.ts for o in out} == {stamp.ts}


def test_untrusted_stamp_wins_over_device_time() -> None:
    """With an untrusted clock the readings carry the stamp and its monotonic time."""
    topic, payload = sample("sonoff_dual_r3_two_channel_arrays")
    stamp = Stamp(ts=5.0, trusted=False, mono_s=7.0)

    out = decode_message("tasmota", topic, payload, stamp=stamp)

    assert {(o.ts, o.clock_trusted, o.mono_s) for o in out} == {(5.0, False, 7.0)}


def test_no_time_at_all_is_rejected() -> None:
    """Without a device time or a stamp, values are rejected as no_timestamp."""
    topic, payload = sample("salus_SP600_new_fw_energy_power")

    out = decode_message("zigbee2mqtt", topic, payload)

    assert {(o.reason, o.sensor) for o in out} == {
        ("no_timestamp", "mqtt.SP600_NEW.import_total"),
        ("no_timestamp", "mqtt.SP600_NEW.power_import"),
    }


def test_shelly_gen1_watt_minutes_become_kwh() -> None:
    """Gen1 relay energy (watt-minutes, plain text) becomes a kWh counter."""
    topic, payload = sample("gen1_plug_s_relay_0_energy_watt_minutes")

    got = values(decode_message("shelly-gen1", topic, payload, stamp=STAMP))

    assert got["mqtt.shellyplug-s-AABBCC.import_total_0"] == pytest.approx(2632 / 60000)


def test_shelly_gen2_switch_energy_wh_becomes_kwh() -> None:
    """Gen2 aenergy.total (Wh) becomes kWh; the switch id suffixes the channel."""
    topic, payload = sample("gen2_plus_plug_s_status_switch0")

    got = values(decode_message("shelly-gen2", topic, payload, stamp=STAMP))

    assert got == {
        "mqtt.shellyplusplugs-aabbccddeeff.import_total_0": pytest.approx(7.258589),
        "mqtt.shellyplusplugs-aabbccddeeff.power_import_0": 2.7,
        "mqtt.shellyplusplugs-aabbccddeeff.voltage_0": 227.9,
        "mqtt.shellyplusplugs-aabbccddeeff.current_0": 0.121,
    }


def test_shelly_pro_3em_null_neutral_current_is_skipped() -> None:
    """Pro 3EM phases map to l1-l3 and its null n_current gives no reject."""
    topic, payload = sample("gen2_pro_3em_status_em0")

    got = values(decode_message("shelly-gen2", topic, payload, stamp=STAMP))

    assert got["mqtt.shellypro3em-aabbccddeeff.power_0"] == 558.965
    assert got["mqtt.shellypro3em-aabbccddeeff.power_0_l3"] == 12.7
    assert got["mqtt.shellypro3em-aabbccddeeff.current_0_l1"] == 2.392


def test_shelly_get_status_maps_every_em1_component() -> None:
    """A Pro EM GetStatus answer yields both em1 channels, import and export."""
    topic, payload = sample("gen2_pro_em50_getstatus_evcc_12385")

    got = values(decode_message("shelly-gen2", topic, payload, stamp=STAMP))

    assert got["mqtt.shellyproem50-aabbccddeeff.power_1"] == 5080.3
    assert got["mqtt.shellyproem50-aabbccddeeff.import_total_1"] == pytest.approx(
        6.6449
    )
    assert got["mqtt.shellyproem50-aabbccddeeff.export_total_1"] == pytest.approx(
        2.59526
    )


def test_old_salus_firmware_profile_divides_by_ten() -> None:
    """The old-firmware profile turns 496 W / 6.65 kWh into 49.6 W / 0.665 kWh."""
    topic, payload = sample("salus_SP600_old_fw_energy_power")
    name = "zigbee2mqtt-salus-sp600-old-fw"

    got = values(decode_message(name, topic, payload, stamp=STAMP))

    assert got["mqtt.SP600_OLD.power_import"] == pytest.approx(49.6)
    assert got["mqtt.SP600_OLD.import_total"] == pytest.approx(0.665)


def test_zigbee_names_are_sanitised() -> None:
    """Spaces and commas in a friendly name become underscores."""
    topic, payload = sample("aqara_weather_WSDCGQ11LM_state")

    got = values(decode_message("zigbee2mqtt", topic, payload, stamp=STAMP))

    device = "mqtt.Living_Room_temperature__humidity_and_pressure_sensor"
    assert got[f"{device}.temperature"] == 20.74
    assert f"{device}.voltage" not in got  # battery millivolts, not mains


def test_zigbee_water_leak_true_is_one() -> None:
    """A water-leak sensor's true becomes gauge 1 and false 0."""
    wet = decode_message(
        "zigbee2mqtt", "zigbee2mqtt/cellar", b'{"water_leak":true}', stamp=STAMP
    )
    dry = decode_message(
        "zigbee2mqtt", "zigbee2mqtt/cellar", b'{"water_leak":false}', stamp=STAMP
    )

    assert values(wet) == {"mqtt.cellar.water_leak": 1.0}
    assert values(dry) == {"mqtt.cellar.water_leak": 0.0}


def test_zigbee_bridge_topics_are_not_covered() -> None:
    """Bridge messages are not device states and yield nothing."""
    topic, payload = sample("aqara_water_leak_SJCGQ11LM_bridge_device_definition")

    assert decode_message("zigbee2mqtt", topic, payload, stamp=STAMP) == []


def test_esphome_known_name_gets_unit_and_channel() -> None:
    """An ESPHome 'power' sensor becomes power_import in W."""
    out = decode_message("esphome", "node1/sensor/power/state", b"231.5", stamp=STAMP)

    assert [(o.sensor, o.value, o.unit) for o in out] == [
        ("mqtt.node1.power_import", 231.5, "W")
    ]


def test_esphome_unknown_name_keeps_object_id_without_unit() -> None:
    """A sensor not in the names table keeps its object id and no unit."""
    out = decode_message("esphome", "node1/sensor/flow_rate/state", b"-3", stamp=STAMP)

    assert [(o.sensor, o.value, o.unit) for o in out] == [
        ("mqtt.node1.flow_rate", -3.0, "")
    ]


def test_nan_is_rejected_as_not_a_number() -> None:
    """ESPHome's 'nan' for an unavailable sensor is a not_a_number reject."""
    out = decode_message("esphome", "node1/sensor/power/state", b"nan", stamp=STAMP)

    assert [(o.reason, o.sensor) for o in out] == [
        ("not_a_number", "mqtt.node1.power_import")
    ]


def test_bad_json_is_rejected() -> None:
    """A truncated JSON payload on a covered topic is a bad_json reject."""
    out = decode_message("tasmota", "tele/plug/SENSOR", b'{"ENERGY":', stamp=STAMP)

    assert [o.reason for o in out] == ["bad_json"]


def test_string_value_is_rejected_as_not_a_number() -> None:
    """A mapped value that is text is a not_a_number reject naming the sensor."""
    payload = b'{"ENERGY":{"Power":"n/a","Voltage":230}}'

    out = decode_message("tasmota", "tele/plug/SENSOR", payload, stamp=STAMP)

    assert [(type(o).__name__, o.sensor) for o in out] == [
        ("Reject", "mqtt.plug.power_import"),
        ("Reading", "mqtt.plug.voltage"),
    ]


def test_covered_topic_without_values_is_no_match() -> None:
    """A covered topic whose payload holds none of the mapped values is no_match."""
    topic, payload = sample("ha_tests_energy_bad_list_only_apparent")

    out = decode_message("tasmota", topic, payload, stamp=STAMP)

    assert [o.reason for o in out] == ["no_match"]


def test_uncovered_topic_yields_nothing() -> None:
    """A topic outside the profile's patterns is not an error."""
    assert decode_message("tasmota", "tele/plug/STATE", b"{}", stamp=STAMP) == []
    assert decode_message(None, "some/other/topic", b"1", stamp=STAMP) == []


def test_generic_profile_scales_and_uses_payload_time() -> None:
    """The generic example maps Wh to kWh and takes its unix time."""
    payload = b'{"ts": 1699999990, "energy": {"total_wh": 12345}, "water_l": 4567}'

    out = decode_message("generic-json", "meters/flat2/state", payload, stamp=STAMP)

    assert values(out) == {
        "mqtt.flat2.import_total": pytest.approx(12.345),
        "mqtt.flat2.water": pytest.approx(4.567),
    }
    assert {o.ts for o in out} == {1699999990.0}


def test_device_override_and_prefix_name_the_sensor() -> None:
    """A subscription's device name and the source prefix replace the defaults."""
    out = decode_message(
        "zigbee2mqtt",
        "zigbee2mqtt/0x00158d",
        b'{"power":5}',
        prefix="plugs",
        stamp=STAMP,
        device="boiler room",
    )

    assert values(out) == {"plugs.boiler_room.power_import": 5.0}


def test_every_profile_parses() -> None:
    """Each file in sensors/mqtt is a valid mqtt profile."""
    names = [p.name for p in list_profiles("mqtt")]

    assert {
        "tasmota",
        "shelly-gen1",
        "shelly-gen2",
        "zigbee2mqtt",
        "esphome",
        "generic-json",
    } <= set(names)
    assert all(mqtt_profile(name).topics for name in names)
