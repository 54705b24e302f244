"""`koprogo-node doctor` against real daemons and real, provoked faults."""

import json
import shutil
import sqlite3
import subprocess

import pytest

from ..daemon.conftest import cli, start_node, wait_for_event, write_config
from ..mqtt_broker import broker_fixture  # noqa: F401  (pytest fixture)

EXIT = {"OK": 0, "SKIP": 0, "WARN": 4, "FAIL": 1}


def doctor(config, data, *extra):
    """Run doctor --json; return the exit code and the checks by name."""
    done = cli(
        "doctor", "--json", "--config", str(config), "--data-dir", str(data), *extra
    )
    report = json.loads(done.stdout)
    return done.returncode, report, {c["check"]: c for c in report["checks"]}


@pytest.fixture(scope="module")
def stopped(tmp_path_factory):
    """A ledger written by a real daemon, now stopped.

    Its simulated meters start an hour ago and run a minute per second, so
    their last readings are about 55 minutes old.
    """
    root = tmp_path_factory.mktemp("doctor")
    config, data, log = root / "node.toml", root / "data", root / "node.log"
    write_config(config, speed=60.0, start_offset_s=-3600)
    proc = start_node(config, data, log)
    wait_for_event(log, "block_committed", height=4)
    proc.terminate()
    proc.wait(timeout=20)
    return config, data


def test_exit_code_is_the_worst_finding_and_every_check_has_a_fix(stopped):
    config, data = stopped

    code, report, checks = doctor(config, data)

    assert EXIT[report["worst"]] == code == report["exit_code"]
    assert {"config", "daemon", "clock", "disk space", "ledger", "sensors sim"} <= set(
        checks
    )
    assert all(c["fix"] for c in report["checks"] if c["level"] in ("WARN", "FAIL"))
    assert "WARN" == checks["daemon"]["level"]  # stopped: meters are not read
    assert "OK" == checks["ledger"]["level"]
    assert "OK" == checks["model water_leak"]["level"]


def test_a_running_daemon_answers_and_its_sources_are_live(tmp_path):
    config, data, log = tmp_path / "node.toml", tmp_path / "data", tmp_path / "n.log"
    write_config(config, speed=60.0)
    proc = start_node(config, data, log)
    try:
        wait_for_event(log, "block_committed", height=2)
        _, _, checks = doctor(config, data)
    finally:
        proc.terminate()
        proc.wait(timeout=20)

    assert "OK" == checks["daemon"]["level"]
    assert "OK" == checks["sensors sim"]["level"]
    assert "52 channels live" == checks["sensors sim"]["detail"]


def test_a_stale_sensor_is_a_warning(stopped):
    """The meters' last readings are about 55 minutes old."""
    config, data = stopped

    code, _, fresh = doctor(config, data, "--stale-after", "7200")
    code, _, checks = doctor(config, data, "--stale-after", "600")

    assert "WARN" == checks["sensors sim"]["level"]
    assert "52 of 52 stale" in checks["sensors sim"]["detail"]
    assert "sensors test sim" in checks["sensors sim"]["fix"]
    assert "OK" == fresh["sensors sim"]["level"]
    assert code != 0


def test_a_corrupted_ledger_copy_fails(stopped, tmp_path):
    config, data = stopped
    copy = copy_ledger(data, tmp_path)
    with sqlite3.connect(copy / "ledger.db") as db:
        db.execute("UPDATE readings SET value = value + 1 WHERE id = 5")

    code, _, checks = doctor(config, copy)

    assert 1 == code
    assert "FAIL" == checks["ledger"]["level"]
    assert "ledger restore" in checks["ledger"]["fix"]


def test_a_bad_configuration_is_reported_and_the_rest_still_checked(stopped, tmp_path):
    _, data = stopped
    bad = tmp_path / "bad.toml"
    bad.write_text("[ledger]\nbatch_ms = -5\n")

    code, _, checks = doctor(bad, data)

    assert 1 == code
    assert "FAIL" == checks["config"]["level"]
    assert "batch_ms" in checks["config"]["detail"]
    assert "OK" == checks["ledger"]["level"]


def mount_tmpfs(where, size: str):
    """A real small filesystem, so 'full' is full for real; skip if we may not."""
    where.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    return where


@pytest.fixture
def mounts(tmp_path):
    made = []

    def mount(size: str):
        made.append(mount_tmpfs(tmp_path / f"fs{len(made)}", size))
        return made[-1]

    yield mount
    for where in made:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(path, leave_bytes: int) -> None:
    """Take the filesystem's free space down to about `leave_bytes`."""
    chunk = b"\0" * (1 << 20)
    with open(path / "filler", "wb") as out:
        try:
            while shutil.disk_usage(path).free > leave_bytes + len(chunk):
                out.write(chunk)
                out.flush()
            out.write(chunk[: max(0, shutil.disk_usage(path).free - leave_bytes)])
        except OSError:  # ENOSPC: full, which is what was asked
            pass


def copy_ledger(data, into):
    copy = into / "data"
    shutil.copytree(data, copy, ignore=shutil.ignore_patterns("*.sock", "writer.lock"))
    return copy


def test_a_full_disk_fails_and_doctor_itself_still_works(stopped, mounts):
    config, data = stopped
    small = mounts("16m")
    copy = copy_ledger(data, small)
    fill(small, leave_bytes=0)

    code, _, checks = doctor(config, copy)

    assert 1 == code
    assert "FAIL" == checks["disk space"]["level"]
    assert "cannot grow" in checks["disk space"]["detail"]
    assert "OK" == checks["ledger"]["level"]


def test_a_nearly_full_disk_warns(stopped, mounts):
    """400 MB with 150 MB left: above the failure line, under the 200 MB one."""
    config, data = stopped
    disk = mounts("400m")
    copy = copy_ledger(data, disk)
    fill(disk, leave_bytes=150 << 20)

    _, _, checks = doctor(config, copy)

    assert "WARN" == checks["disk space"]["level"]
    assert "free space" in checks["disk space"]["fix"]


def test_mqtt_broker_up_then_down(stopped, broker, tmp_path):
    _, data = stopped
    config = tmp_path / "mqtt.toml"
    config.write_text(
        f'[[sources]]\ntype = "mqtt"\nname = "mqtt"\nport = {broker.port}\n'
    )

    _, _, up = doctor(config, data)
    broker.stop()
    code, _, down = doctor(config, data)

    assert "OK" == up["mqtt broker mqtt"]["level"]
    assert "FAIL" == down["mqtt broker mqtt"]["level"]
    assert "cannot reach" in down["mqtt broker mqtt"]["detail"]
    assert 1 == code


def test_unreachable_bootstrap_peers_fail(stopped, tmp_path):
    _, data = stopped
    config = tmp_path / "fed.toml"
    config.write_text(
        "[federation]\nenabled = true\n"
        'federation_key = "' + "ab" * 32 + '"\n'
        'bootstrap = ["wss://127.0.0.1:9"]\n'
    )

    _, _, checks = doctor(config, data)

    assert "FAIL" == checks["peers"]["level"]
    assert "0 of 1 bootstrap peers reachable" in checks["peers"]["detail"]


def test_a_damaged_model_file_fails(stopped, tmp_path):
    config, data = stopped
    models = tmp_path / "models"
    shutil.copytree("models", models)
    target = models / "water_leak.onnx"
    target.write_bytes(target.read_bytes()[:-10] + b"x" * 10)

    done = cli(
        "doctor",
        "--json",
        "--config",
        str(config),
        "--data-dir",
        str(data),
        env={"KOPROGO_MODELS": str(models)},
    )
    checks = {c["check"]: c for c in json.loads(done.stdout)["checks"]}

    assert "FAIL" == checks["model water_leak"]["level"]
    assert "sha256 mismatch" in checks["model water_leak"]["detail"]
    assert "OK" == checks["model anomaly_mlp"]["level"]


def test_no_configuration_file_is_a_warning(tmp_path):
    """No --config, no KOPROGO_CONFIG, no /etc file, no daemon to follow."""
    done = cli(
        "doctor", "--json", "--data-dir", str(tmp_path), env={"KOPROGO_CONFIG": ""}
    )

    checks = {c["check"]: c for c in json.loads(done.stdout)["checks"]}
    assert "WARN" == checks["config"]["level"]
    assert "defaults in use" in checks["config"]["detail"]


def test_the_configuration_a_daemon_ran_with_is_used_without_config(stopped):
    _, data = stopped
    done = cli("doctor", "--json", "--data-dir", str(data), env={"KOPROGO_CONFIG": ""})

    checks = {c["check"]: c for c in json.loads(done.stdout)["checks"]}
    assert "OK" == checks["config"]["level"]
    assert "node.toml is valid" in checks["config"]["detail"]
    assert "sensors sim" in checks
