"""What a technician meets when things are wrong: one clear line, the right
exit code, no traceback, and output that stays machine-readable."""

import json
import os
import subprocess
import threading
from pathlib import Path

import pytest

from ..daemon.conftest import CLI, cli, start_node, wait_for_event, write_config
from .test_capture_listen_rotate import ptys, send_as_meter  # noqa: F401
from .test_doctor import mount_tmpfs

TELEGRAMS = Path(__file__).parents[1] / "data" / "dsmr_parser-telegrams"


def no_traceback(done: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr


@pytest.fixture(scope="module")
def ledger(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    config, data, log = root / "node.toml", root / "data", root / "n.log"
    write_config(config, speed=60.0)
    proc = start_node(config, data, log)
    wait_for_event(log, "block_committed", height=3)
    proc.terminate()
    proc.wait(timeout=20)
    return config, data


def test_a_file_that_is_not_p1_is_the_files_fault_not_the_configs():
    done = cli("sensors", "decode", "p1", "/etc/passwd")

    no_traceback(done)
    assert 2 == done.returncode
    assert "invalid configuration" not in done.stderr
    assert "/etc/passwd: no DSMR profile recognises this input" in done.stderr


def test_a_key_file_that_is_a_directory_or_garbage(tmp_path):
    (tmp_path / "a" / "node_key").mkdir(parents=True)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "node_key").write_bytes(b"garbage")

    folder = cli("keys", "show", "--data-dir", str(tmp_path / "a"))
    garbage = cli("keys", "show", "--data-dir", str(tmp_path / "b"))

    for done in (folder, garbage):
        no_traceback(done)
        assert 3 == done.returncode
    assert "cannot read" in folder.stderr and "Is a directory" in folder.stderr
    assert "not a node key" in garbage.stderr and "move it aside" in garbage.stderr


def test_export_to_a_full_device_and_into_a_closed_pipe(ledger):
    config, data = ledger
    where = ["--config", str(config), "--data-dir", str(data)]
    with open("/dev/full", "w") as full:
        into_full = subprocess.run(
            [*CLI, "ledger", "export", *where],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
        )
    piped = subprocess.run(
        f"{' '.join(CLI)} ledger export {' '.join(where)} | head -2",
        shell=True,
        capture_output=True,
        text=True,
    )

    no_traceback(into_full)
    assert 3 == into_full.returncode
    assert "No space left on device" in into_full.stderr
    no_traceback(piped)
    assert 2 == len(piped.stdout.splitlines())


def test_config_show_masks_credentials_inside_urls(tmp_path):
    config = tmp_path / "node.toml"
    config.write_text(
        "[webhooks]\n"
        'urls = ["https://hookuser:hookpass@hooks.example.com/x?token=abc123"]\n'
        'secret = "hook-signing-secret"\n'
        "[federation]\n"
        'bootstrap = ["wss://fed:fedpass@203.0.113.7:4610"]\n'
    )

    shown = cli("--config", str(config), "config", "show").stdout

    assert "hookpass" not in shown and "abc123" not in shown
    assert "hook-signing-secret" not in shown
    assert "fedpass" not in shown
    assert "https://hookuser:********@hooks.example.com/x?********" in shown
    assert "wss://fed:********@203.0.113.7:4610" in shown


@pytest.mark.parametrize("value", ["nan", "inf", "-1"])
def test_seconds_must_be_a_finite_number(value):
    done = cli("sensors", "capture-p1", "/dev/null", "--seconds", value)

    assert 2 == done.returncode
    assert "--seconds" in done.stderr


def test_a_drivers_log_never_mixes_into_json_output(tmp_path, ptys):  # noqa: F811
    """`sensors test p1 --json` with the daemon stopped: stdout is JSON alone."""
    config = tmp_path / "p1.toml"
    config.write_text(f'[[sources]]\ntype = "p1"\nname = "p1"\npath = "{ptys.node}"\n')
    telegrams = (TELEGRAMS / "be_fluvius_emucs171_gas_water.txt").read_bytes()
    stop = threading.Event()

    def meter():  # a meter sends a telegram every second, whoever listens
        while not stop.wait(0.5):
            send_as_meter(ptys.meter, telegrams)

    feeder = threading.Thread(target=meter)
    feeder.start()
    done = cli(
        "--config",
        str(config),
        "--data-dir",
        str(tmp_path / "none"),
        "sensors",
        "test",
        "p1",
        "--seconds",
        "3",
        "--json",
    )
    stop.set()
    feeder.join()

    result = json.loads(done.stdout)
    assert "device" == result["via"]
    assert result["readings"], done.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting needs root")
def test_a_read_only_data_directory(ledger, tmp_path):
    """A worn card turns read-only: the daemon says so, and doctor fails it."""
    config, data = ledger
    empty = mount_tmpfs(tmp_path / "ro", "4m,ro")
    try:
        started = cli("run", "--config", str(config), "--data-dir", str(empty))
        checked = cli(
            "doctor", "--json", "--config", str(config), "--data-dir", str(empty)
        )
    finally:
        subprocess.run(["umount", "-l", str(empty)], check=False)

    no_traceback(started)
    assert 3 == started.returncode
    assert "Read-only file system" in started.stderr
    disk = {c["check"]: c for c in json.loads(checked.stdout)["checks"]}["disk space"]
    assert "FAIL" == disk["level"] and "read-only" in disk["detail"]


@pytest.mark.parametrize(
    ("topic", "problem"),
    [("bad/#/topic", "'#' must be a whole level"), ("a/b+/c", "'+' must be")],
)
def test_an_invalid_mqtt_filter_is_a_usage_error(topic, problem):
    done = cli("sensors", "listen-mqtt", "--topic", topic, "--seconds", "1")

    no_traceback(done)
    assert 2 == done.returncode
    assert problem in done.stderr


def test_an_invalid_subscription_filter_is_refused_by_config_validate(tmp_path):
    config = tmp_path / "node.toml"
    config.write_text(
        '[[sources]]\ntype = "mqtt"\nname = "m"\n'
        '[[sources.subscriptions]]\nprofile = "tasmota"\ntopic = "tele/#/SENSOR"\n'
    )

    done = cli("config", "validate", str(config))

    assert 2 == done.returncode
    assert "'#' must be a whole level" in done.stderr
