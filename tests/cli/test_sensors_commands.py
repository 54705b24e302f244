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
