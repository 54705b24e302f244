"""status, readings tail and ledger export against a stopped node's directory."""

import json
import os
import subprocess

import pytest

from ..daemon.conftest import CLI, cli, start_node, wait_for_event, write_config


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """A ledger written by a real daemon that ran for a few seconds."""
    root = tmp_path_factory.mktemp("node")
    config, data, log_path = root / "node.toml", root / "data", root / "node.log"
    write_config(config, speed=60.0)
    proc = start_node(config, data, log_path)
    wait_for_event(log_path, "block_committed", height=8)
    proc.terminate()
    proc.wait(timeout=20)
    return data


def test_status_json_reports_stopped_daemon_and_sensors(data_dir):
    """status --json says the daemon is down and lists every sensor."""
    result = cli("status", "--data-dir", str(data_dir), "--json")

    report = json.loads(result.stdout)
    assert result.returncode == 0
    assert report["daemon"]["running"] is False
    assert len(report["sensors"]) == 52  # 10 lots x 5 channels, water, gas
    assert report["ledger"]["height"] >= 1


def test_status_text_says_where_figures_come_from(data_dir):
    """The human status names the source of its figures and aligns columns."""
    result = cli("status", "--data-dir", str(data_dir))

    assert "not running: figures read from the data directory" in result.stdout
    assert "sim.lot01.import_t1" in result.stdout


def test_tail_without_follow_prints_last_lines(data_dir):
    """readings tail -n 5 --no-follow --json prints five JSON readings."""
    result = cli(
        "readings",
        "tail",
        "--data-dir",
        str(data_dir),
        "-n",
        "5",
        "--no-follow",
        "--json",
        "--sensor",
        "sim.water",
    )

    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 5
    assert {line["sensor"] for line in lines} == {"sim.water"}
    assert [line["id"] for line in lines] == sorted(line["id"] for line in lines)


def test_tail_finds_the_last_readings_of_a_rare_sensor(data_dir):
    """-n N gives the newest N readings of the sensor, however far back they are."""
    exported = cli(
        "ledger",
        "export",
        "--data-dir",
        str(data_dir),
        "--format",
        "jsonl",
        "--sensor",
        "sim.lot01.import_t1",
    )
    expected = [json.loads(line)["id"] for line in exported.stdout.splitlines()][-3:]

    result = cli(
        "readings",
        "tail",
        "--data-dir",
        str(data_dir),
        "-n",
        "3",
        "--no-follow",
        "--json",
        "--sensor",
        "sim.lot01.import_t1",
    )

    assert [json.loads(line)["id"] for line in result.stdout.splitlines()] == expected


def test_export_filters_by_sensor_and_time(data_dir):
    """export --sensor --from --to returns only that channel in that window."""
    export = ("ledger", "export", "--data-dir", str(data_dir), "--format", "jsonl")
    everything = cli(*export, "--sensor", "sim.gas")
    rows = [json.loads(line) for line in everything.stdout.splitlines()]
    middle = rows[len(rows) // 2]["ts"].replace("Z", "+00:00")

    later = cli(*export, "--sensor", "sim.gas", "--from", middle)

    later_rows = [json.loads(line) for line in later.stdout.splitlines()]
    assert {r["sensor"] for r in rows} == {"sim.gas"}
    assert 0 < len(later_rows) < len(rows)
    assert min(r["ts"] for r in later_rows) >= rows[len(rows) // 2]["ts"]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["ledger", "export", "--sensor", "nope"], 2, "unknown sensor 'nope'"),
        (["ledger", "export", "--from", "yesterday"], 2, "expected ISO 8601"),
        (["ledger", "export", "--format", "xml"], 2, "Invalid value"),
        (
            ["ledger", "export", "--from", "2026-02-01", "--to", "2026-01-01"],
            2,
            "must be before --to",
        ),
        (
            ["readings", "tail", "--sensor", "nope", "--no-follow"],
            2,
            "unknown sensor 'nope'",
        ),
        (["readings", "tail", "-n", "-5", "--no-follow"], 2, "Invalid value"),
    ],
)
def test_bad_arguments_get_clear_errors(data_dir, args, code, message):
    """Bad options exit 2 with a sentence and no traceback."""
    result = cli(*args, "--data-dir", str(data_dir))

    assert result.returncode == code
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_data_dir_is_unavailable(tmp_path):
    """Read commands on an empty directory exit 3 and say there is no ledger."""
    for args in (["status"], ["readings", "tail", "--no-follow"], ["ledger", "export"]):
        result = cli(*args, "--data-dir", str(tmp_path))

        assert result.returncode == 3
        assert "no ledger at" in result.stderr
        assert "Traceback" not in result.stderr

    verify = cli("ledger", "verify", "--data-dir", str(tmp_path))
    assert verify.returncode == 3
    assert "no ledger" in verify.stderr


def test_data_dir_and_config_come_from_the_environment(data_dir, tmp_path):
    """KOPROGO_DATA_DIR and KOPROGO_CONFIG stand in for the options."""
    config = tmp_path / "node.toml"
    config.write_text('[node]\nbuilding_id = "from-env"\n')
    env = {
        **os.environ,
        "KOPROGO_DATA_DIR": str(data_dir),
        "KOPROGO_CONFIG": str(config),
    }

    result = subprocess.run(
        [*CLI, "config", "show", "--json"], env=env, capture_output=True, text=True
    )
    status = subprocess.run(
        [*CLI, "status", "--json"], env=env, capture_output=True, text=True
    )

    assert json.loads(result.stdout)["node"]["building_id"] == "from-env"
    assert json.loads(status.stdout)["ledger"]["height"] >= 1
