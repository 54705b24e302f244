"""sensors profiles and decode: device knowledge and captured input, at hand."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from koprogo_node.cli.main import cli as main_cli
from koprogo_node.drivers.p1_dialects import detect_spec

from ..daemon.conftest import cli

DATA = Path(__file__).parents[1] / "data" / "dsmr_parser-telegrams"
SHARED = Path(__file__).parents[2] / ".." / "shared" / "data"


def test_profiles_list_every_dsmr_dialect():
    """The DSMR profiles in sensors/dsmr/ are listed with their family."""
    result = cli("sensors", "profiles", "--json")

    names = {p["name"] for p in json.loads(result.stdout) if p["family"] == "dsmr"}
    assert {"belgium-fluvius", "netherlands-dsmr5", "luxembourg-smarty"} <= names


@pytest.mark.parametrize(
    ("name", "spec"),
    [
        ("be_fluvius_emucs171_gas_water.txt", "belgium"),
        ("nl_dsmr50_iskra_mt382.txt", "v5"),
        ("nl_dsmr42_kaifa.txt", "v4"),
        ("nl_dsmr22_iskra_mt382.txt", "v3"),
        ("at_sagemcom_t210dr_plain.txt", "austria"),
        ("hu_eon_sagemcom_v5.txt", "eon_hungary"),
        ("ie_iskra_ie5t.txt", "iskra_ie"),
        ("de_easymeter_q3d_a1004_com1_gateway.txt", "easymeter"),
    ],
)
def test_dialect_is_detected_from_profiles(name, spec):
    """Each recording's dialect is found from the profiles' markers."""
    assert detect_spec((DATA / name).read_bytes()) == spec


def test_decode_p1_prints_the_readings_the_node_would_store():
    """decode p1 --json gives the Belgian meter's values and stamps."""
    result = cli(
        "sensors",
        "decode",
        "p1",
        str(DATA / "be_fluvius_emucs171_gas_water.txt"),
        "--json",
    )

    out = json.loads(result.stdout)
    values = {r["sensor"]: r["value"] for r in out["readings"]}
    assert out["spec"] == "belgium"
    assert values["p1.import_t2"] == 15.758
    assert values["p1.water"] == 872.234
    assert values["p1.gas"] == 112.384


def test_decode_p1_names_the_crc_rejection():
    """A telegram with a wrong CRC is shown rejected for that reason."""
    bad = DATA / "edge-cases" / "be_fluvius_emucs171__line_removed_crc_invalid.txt"

    out = json.loads(cli("sensors", "decode", "p1", str(bad), "--json").stdout)

    assert out["readings"] == []
    assert [r["reason"] for r in out["rejects"]] == ["crc_mismatch"]


def test_every_shared_telegram_decodes_without_a_traceback():
    """All telegram files, corrupted ones included, decode to readings or rejects."""
    files = sorted(DATA.rglob("*.txt"))
    if (SHARED / "dsmr-reader-telegrams").is_dir():
        files += sorted((SHARED / "dsmr-reader-telegrams").glob("*.txt"))

    runner = CliRunner()
    for path in files:
        result = runner.invoke(
            main_cli, ["sensors", "decode", "p1", str(path), "--json"]
        )

        assert result.exit_code == 0, (path, result.output, result.exception)
        out = json.loads(result.output)
        assert out["readings"] or out["rejects"], path


def test_decode_mqtt_picks_the_profile_from_the_topic(tmp_path):
    """decode mqtt without --profile maps a Tasmota payload by its topic."""
    payload = tmp_path / "sensor.json"
    payload.write_text(
        '{"Time":"2026-01-02T10:00:00","ENERGY":{"Total":6.294,"Power":2635,'
        '"Voltage":227,"Current":11.661}}'
    )

    result = CliRunner().invoke(
        main_cli,
        [
            "sensors",
            "decode",
            "mqtt",
            "--topic",
            "tele/plug1/SENSOR",
            str(payload),
            "--json",
        ],
    )

    values = {r["sensor"]: r["value"] for r in json.loads(result.output)["readings"]}
    assert values == {
        "mqtt.plug1.import_total": 6.294,
        "mqtt.plug1.power_import": 2635,
        "mqtt.plug1.voltage": 227,
        "mqtt.plug1.current": 11.661,
    }


def test_every_shared_mqtt_payload_decodes_without_a_traceback():
    """Each shared payload on its recorded topic gives readings, rejects or nothing."""
    folder = SHARED / "mqtt-payloads"
    if not folder.is_dir():
        pytest.skip("../shared/data/mqtt-payloads is absent")
    runner = CliRunner()
    for payload in sorted(folder.rglob("*.json")):
        topic_file = payload.with_suffix(".topic")
        if not topic_file.exists():
            continue
        topic = topic_file.read_text().strip()

        result = runner.invoke(
            main_cli,
            ["sensors", "decode", "mqtt", "--topic", topic, str(payload), "--json"],
        )

        assert result.exit_code == 0, (payload, result.output, result.exception)
        assert "readings" in json.loads(result.output)


def test_scan_of_an_unreachable_bus_is_unavailable():
    """scan-modbus on a port nobody listens on exits 3 with one sentence."""
    from ..daemon.conftest import free_port

    result = cli(
        "sensors",
        "scan-modbus",
        "127.0.0.1",
        "--tcp-port",
        str(free_port()),
        "--last",
        "2",
    )

    assert result.returncode == 3
    assert "cannot open Modbus bus" in result.stderr
    assert "Traceback" not in result.stderr
