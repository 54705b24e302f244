"""support-bundle against a running and a stopped daemon: useful, never leaky."""

import json
import re
import sqlite3
import subprocess
import tarfile
from pathlib import Path

import pytest

from koprogo_node.cli.support_bundle import Redactor

from ..daemon.conftest import CLI, cli, start_node, wait_for_event, write_config

MQTT_PASSWORD = "mqtt-pass-Zq81x"
MQTT_USER = "tech-alice"
WEBHOOK_SECRET = "whsec-9f8e7d6c5b"
WEBHOOK_TOKEN = "tok3nInPathQ7"
SECRETS_CONFIG = f"""
[[sources]]
type = "mqtt"
name = "mq"
host = "127.0.0.1"
port = 1
username = "{MQTT_USER}"
password = "{MQTT_PASSWORD}"
[webhooks]
urls = ["https://hooks.example.org/services/{WEBHOOK_TOKEN}"]
secret = "{WEBHOOK_SECRET}"
[node]
building_id = "rue-haute-12"
"""
KEY_FILES = ("node_key", "local-api-token", "setup-code", "tokens.json", "users.json")
SETUP_CODE = re.compile(r"setup code: (\S+)")
FIGURE = re.compile(r"(?<![\w.])-?\d+\.\d+(?![\w])")


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    """A daemon with secrets in its configuration, running, and its bundle."""
    root = tmp_path_factory.mktemp("support")
    config = write_config(
        root / "node.toml", speed=600.0, web=True, extra=SECRETS_CONFIG
    )
    data, log_path = root / "data", root / "node.log"
    proc = start_node(config, data, log_path)
    try:
        wait_for_event(log_path, "block_committed", height=3)
        wait_for_event(log_path, "source_failed")
        out = root / "running.tar.gz"
        made = cli(
            "support-bundle",
            "--config", str(config),
            "--data-dir", str(data),
            "--out", str(out),
            "--log-file", str(log_path),
            "--json",
        )  # fmt: skip
        running = proc.poll() is None
    finally:
        proc.terminate()
        assert proc.wait(timeout=20) == 0
    assert running and made.returncode == 0, made.stderr
    return {"root": root, "config": config, "data": data, "log": log_path, "out": out}


def test_bundle_of_a_running_daemon_has_status_config_verify_and_logs(node):
    """Every promised member is there and parses; status says the daemon runs."""
    members = _members(node["out"])

    status = json.loads(members["status.json"])
    config = json.loads(members["config.json"])["config"]
    mqtt = next(s for s in config["sources"] if s["type"] == "mqtt")
    assert {"README.txt", "versions.json", "data-dir.json", "logs.txt"} <= set(members)
    assert status["daemon"]["running"] is True and status["live"] is not None
    assert status["building_id"] == "rue-haute-12"
    assert (mqtt["password"], mqtt["username"]) == ("********", "<user>")
    assert config["webhooks"]["secret"] == "********"
    assert json.loads(members["verify.json"])["ok"] is True
    doctor = {c["check"]: c for c in json.loads(members["doctor.json"])}
    assert "OK" == doctor["daemon"]["level"] and "OK" == doctor["ledger"]["level"]
    assert json.loads(members["versions.json"])["packages"]["click"]
    assert "<ip>" in members["logs.txt"] and "127.0.0.1" not in members["logs.txt"]
    assert "status.json" in members["README.txt"]


def test_bundle_of_a_running_daemon_leaks_no_secret_key_or_lot_value(node):
    """No configured secret, key file, setup code or apartment figure is inside."""
    members = _members(node["out"])
    height = json.loads(members["status.json"])["ledger"]["height"]

    lot_values = _lot_values(node["data"] / "ledger.db", height)
    assert lot_values, "the simulated building has lot meters"
    _assert_nothing_leaks(members, node, lot_values)


def test_bundle_of_a_stopped_daemon_is_complete_and_clean(node, tmp_path):
    """With the daemon stopped: status from the files, same redactions."""
    out = tmp_path / "stopped.tar.gz"
    args = ("--config", str(node["config"]), "--data-dir", str(node["data"]))
    raw_status = cli("status", "--json", *args).stdout

    made = cli("support-bundle", *args, "--out", str(out))

    members = _members(out)
    status = json.loads(members["status.json"])
    lot_values = _lot_values(node["data"] / "ledger.db", status["ledger"]["height"])
    assert made.returncode == 0, made.stderr
    assert status["daemon"]["running"] is False
    assert json.loads(members["verify.json"])["ok"] is True
    assert json.loads(members["config.json"])["config"]["node"]["building_id"]
    assert "logs.txt" in members or members["NO-LOGS.txt"].startswith("No logs")
    assert lot_values & set(FIGURE.findall(raw_status)), "status shows lot values"
    _assert_nothing_leaks(members, node, lot_values)


def test_default_name_carries_the_building_and_a_utc_stamp(node, tmp_path):
    """Without --out, the tarball lands in the current directory, named."""
    args = ["--config", str(node["config"]), "--data-dir", str(node["data"])]

    made = subprocess.run(
        [*CLI, "support-bundle", *args], cwd=tmp_path, capture_output=True, text=True
    )

    written = list(tmp_path.glob("*.tar.gz"))
    assert made.returncode == 0, made.stderr
    assert len(written) == 1
    assert re.fullmatch(
        r"koprogo-support-rue-haute-12-\d{8}T\d{6}Z\.tar\.gz", written[0].name
    )
    assert tarfile.is_tarfile(written[0])


@pytest.mark.parametrize("where", ["directory", "missing_parent", "existing"])
def test_an_unusable_out_path_exits_2_with_one_line(node, tmp_path, where):
    """A directory, a missing folder or a taken name: error line, exit 2."""
    (tmp_path / "taken.tar.gz").write_bytes(b"keep me")
    out = {
        "directory": tmp_path,
        "missing_parent": tmp_path / "nope" / "b.tar.gz",
        "existing": tmp_path / "taken.tar.gz",
    }[where]

    made = cli("support-bundle", "--data-dir", str(node["data"]), "--out", str(out))

    assert made.returncode == 2
    assert made.stderr.startswith("error: ") and "Traceback" not in made.stderr
    assert (tmp_path / "taken.tar.gz").read_bytes() == b"keep me"


def _assert_nothing_leaks(members: dict[str, str], node: dict, lot_values: set) -> None:
    forbidden = [MQTT_PASSWORD, MQTT_USER, WEBHOOK_SECRET, WEBHOOK_TOKEN]
    forbidden += _key_file_texts(node["data"]) + SETUP_CODE.findall(
        node["log"].read_text()
    )
    for name, text in members.items():
        assert Path(name).name not in KEY_FILES
        for secret in forbidden:
            assert secret not in text, f"{secret!r} in {name}"
        leaked = lot_values & set(FIGURE.findall(text))
        assert not leaked, f"lot values {sorted(leaked)[:3]} in {name}"


def _members(tarball: Path) -> dict[str, str]:
    """Every member's text by its name inside the bundle's folder."""
    with tarfile.open(tarball, "r:gz") as tar:
        return {
            Path(m.name).name: tar.extractfile(m).read().decode()
            for m in tar.getmembers()
            if m.isfile()
        }


def _lot_values(db_path: Path, height: int) -> set[str]:
    """The last value of each lot meter up to `height`, as JSON writes them."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT r.value FROM readings r JOIN sensors s ON s.id = r.sensor"
            " WHERE r.id IN (SELECT max(r2.id) FROM readings r2"
            "   JOIN sensors s2 ON s2.id = r2.sensor"
            "   WHERE s2.name GLOB '*lot[0-9]*' AND r2.block <= ? GROUP BY r2.sensor)",
            (height,),
        ).fetchall()
    finally:
        conn.close()
    return {
        repr(value) for (value,) in rows if abs(value) >= 10 and value != int(value)
    }


def _key_file_texts(data_dir: Path) -> list[str]:
    """The secret material of the data directory's key and token files."""
    texts = []
    for name in KEY_FILES:
        path = data_dir / name
        if path.exists():
            content = path.read_bytes()
            texts += [content.hex()]
            texts += (
                [content.decode(errors="ignore").strip()] if content.isascii() else []
            )
    return [t for t in texts if len(t) >= 8]


@pytest.mark.parametrize(
    "line, kept, gone",
    [
        (
            "2026-12-01T10:00:00+0100 rue-haute-12 koprogo-node[812]: "
            '{"event": "login", "user": "alice", "peer": "192.168.1.23"}',
            ["2026-12-01T10:00:00+0100", '"user": "<user>"', "<ip>"],
            ["alice", "192.168.1.23"],
        ),
        (
            "2026-12-01T10:00:00+0100 pi koprogo-node[812]: dial_failed"
            " address=[fe80::1c2b:3aff:fe4d:5e6f]:4610 reason=timeout",
            ["<ip>", "reason=timeout"],
            ["fe80::1c2b"],
        ),
        (
            "WARNING aiohttp.access 10.0.0.7 GET /login?user=bob from /home/bob/x",
            ["<ip>", "user=<user>", "/home/<user>/x"],
            ["10.0.0.7", "bob"],
        ),
        (
            '{"source": "sim.lot04.import_t1", "detail": "value 1234.5 too high",'
            ' "count": 3, "event": "input_rejected"}',
            ['"count": 3', "sim.lot04.import_t1", "value <lot value> too high"],
            ["1234.5"],
        ),
        (
            "mqtt://tech-alice:s3cr3t@broker.local:1883 refused",
            ["mqtt://<user>@broker.local:1883"],
            ["tech-alice", "s3cr3t"],
        ),
    ],
)
def test_log_lines_lose_addresses_user_names_and_lot_figures(line, kept, gone):
    """Journal, JSON and plain lines: personal parts replaced, the rest kept."""
    redacted = Redactor({}, r"lot\d+").log_line(line)

    for text in kept:
        assert text in redacted
    for text in gone:
        assert text not in redacted
