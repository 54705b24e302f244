"""sensors capture-p1, listen-mqtt and keys rotate, run as a technician would."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import serial
from paho.mqtt.enums import CallbackAPIVersion

from koprogo_node.federation.identity import KEY_FILE, NodeKey
from koprogo_node.ledger.lock import holder_pid
from tests.mqtt_broker import (
    MOSQUITTO,
    Broker,
    broker_fixture,  # noqa: F401 (registers "broker")
    free_port,
)

from ..daemon.conftest import CLI, cli, start_node, write_config
from ..drivers.test_p1_reader import PtyPair, start_socat, stop_socat

pytestmark = pytest.mark.timeout(60)

DATA = Path(__file__).parents[1] / "data" / "dsmr_parser-telegrams"
GOOD = (DATA / "be_fluvius_emucs171_gas_water.txt").read_bytes()
GOOD_2 = (DATA / "be_fluvius_emucs171_alt_gas_water.txt").read_bytes()
BAD_CRC = (
    DATA / "edge-cases" / "be_fluvius_emucs171__line_removed_crc_invalid.txt"
).read_bytes()
NOISE = b"\xfe\xffnoise "  # 7 visible bytes before the first telegram
GARBAGE = b"garbage\r\n"  # 7 visible bytes between two telegrams
PASSWD = Path("/usr/bin/mosquitto_passwd")
TASMOTA = b'{"Time":"2000-01-01T00:00:00","ENERGY":{"Total":6.294,"Power":2635}}'


# helpers ---------------------------------------------------------------------


@pytest.fixture
def ptys(tmp_path: Path) -> Iterator[PtyPair]:
    """Two linked pseudo-terminals: the test is the meter, the command the node."""
    pair = start_socat(tmp_path)
    yield pair
    stop_socat(pair)


def start_cli(*args: str, stderr: Path) -> subprocess.Popen:
    """Run `koprogo-node ARGS` in the background, its stderr into a file."""
    return subprocess.Popen(
        [*CLI, *args],
        stdout=subprocess.PIPE,
        stderr=stderr.open("w"),
    )


def wait_for_text(path: Path, text: str, timeout_s: float = 15.0) -> None:
    """Wait until `text` appears in the file at `path`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text(errors="replace"):
            return
        time.sleep(0.05)
    shown = path.read_text(errors="replace") if path.exists() else "(no file)"
    raise AssertionError(f"{text!r} not in {path}: {shown}")


def send_as_meter(meter: Path, data: bytes, chunk: int = 300) -> None:
    """Write `data` in pieces, so telegrams straddle reads as on a real line."""
    fd = os.open(meter, os.O_RDWR | os.O_NOCTTY)
    try:
        for start in range(0, len(data), chunk):
            os.write(fd, data[start : start + chunk])
            time.sleep(0.02)
    finally:
        os.close(fd)


def decoded(path: Path) -> dict:
    """What `sensors decode p1 --json` makes of a file."""
    result = cli("sensors", "decode", "p1", str(path), "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def publish(port: int, messages: list[tuple[str, bytes]]) -> None:
    """Publish with QoS 1, waiting for each acknowledgement."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-publisher")
    client.connect("127.0.0.1", port)
    client.loop_start()
    for topic, payload in messages:
        client.publish(topic, payload, qos=1).wait_for_publish(timeout=5)
    client.disconnect()
    client.loop_stop()


def mqtt_config(path: Path, port: int, credentials: str = "") -> Path:
    """A node with one mqtt source reading Tasmota plugs on tele/+/SENSOR."""
    path.write_text(f"""
[time]
trust = "always"
[[sources]]
type = "mqtt"
name = "mqtt"
host = "127.0.0.1"
port = {port}
{credentials}
[[sources.subscriptions]]
profile = "tasmota"
topic = "tele/+/SENSOR"
""")
    return path


def json_lines(text: str) -> list[dict]:
    """Each line of `text` parsed as JSON."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# sensors capture-p1 ----------------------------------------------------------


def test_capture_keeps_telegrams_that_decode_like_the_source(tmp_path, ptys):
    """A capture replays to the source's readings; garbage and CRCs are counted."""
    stream = NOISE + GOOD + GARBAGE + BAD_CRC + GOOD_2
    source, capture, errors = (tmp_path / n for n in ("src.txt", "cap.txt", "err"))
    source.write_bytes(stream)
    process = start_cli(
        "sensors",
        "capture-p1",
        str(ptys.node),
        "--seconds",
        "3",
        "--out",
        str(capture),
        "--json",
        stderr=errors,
    )
    wait_for_text(errors, "capturing")

    send_as_meter(ptys.meter, stream)
    process.wait(timeout=20)

    summary = json.loads(errors.read_text().splitlines()[-1])
    assert process.returncode == 0
    assert capture.read_bytes() == GOOD + BAD_CRC + GOOD_2
    assert summary["telegrams"] == 3
    assert (summary["crc_good"], summary["crc_bad"]) == (2, 1)
    assert summary["bytes_read"] == len(stream)
    assert summary["skipped_bytes"] == 14
    assert summary["rejects"] == {"junk": 2}
    replayed, original = decoded(capture), decoded(source)
    assert len(replayed["readings"]) == 20
    assert replayed["readings"] == original["readings"]
    assert [r["reason"] for r in replayed["rejects"]] == ["crc_mismatch"]


def test_capture_to_stdout_stops_on_ctrl_c_with_a_summary(tmp_path, ptys):
    """Without --seconds limit, Ctrl-C ends the capture cleanly, telegrams on stdout."""
    errors = tmp_path / "err"
    process = start_cli(
        "sensors", "capture-p1", str(ptys.node), "--seconds", "0", stderr=errors
    )
    wait_for_text(errors, "until Ctrl-C")

    send_as_meter(ptys.meter, GOOD)
    time.sleep(1.0)  # two read timeouts: the telegram is in
    process.send_signal(signal.SIGINT)
    stdout, _ = process.communicate(timeout=10)

    assert process.returncode == 0
    assert stdout == GOOD
    assert "captured 1 telegram " in errors.read_text()
    assert "1 CRC good, 0 CRC bad" in errors.read_text()


def test_capture_on_a_missing_port_exits_3_naming_it(tmp_path):
    """A port that does not exist gives one error line and exit code 3."""
    missing = tmp_path / "ttyUSB9"

    result = cli("sensors", "capture-p1", str(missing), "--out", str(tmp_path / "o"))

    assert result.returncode == 3
    assert result.stderr.startswith("error: cannot open P1 port")
    assert str(missing) in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "o").exists()


def test_capture_on_a_busy_port_exits_3(ptys):
    """A port another program holds (as the daemon does) is refused, exit 3."""
    with serial.Serial(str(ptys.node), exclusive=True):
        result = cli("sensors", "capture-p1", str(ptys.node), "--seconds", "1")

    assert result.returncode == 3
    assert "busy" in result.stderr
    assert "Traceback" not in result.stderr


def test_capture_on_a_regular_file_exits_3(tmp_path):
    """A file is not a serial device: exit 3, said so."""
    plain = tmp_path / "telegrams.txt"
    plain.write_bytes(GOOD)

    result = cli("sensors", "capture-p1", str(plain), "--seconds", "1")

    assert result.returncode == 3
    assert "not a serial device" in result.stderr


# sensors listen-mqtt ---------------------------------------------------------


def test_listen_prints_messages_and_the_readings_they_map_to(tmp_path, broker):
    """Messages published while listening are shown, decoded where mapped."""
    config = mqtt_config(tmp_path / "node.toml", broker.port)
    errors = tmp_path / "err"
    process = start_cli(
        "sensors",
        "listen-mqtt",
        "--config",
        str(config),
        "--topic",
        "#",
        "--seconds",
        "4",
        "--json",
        stderr=errors,
    )
    wait_for_text(errors, "listening on")

    publish(
        broker.port,
        [("tele/pow1/SENSOR", TASMOTA), ("site/notes", b"x" * 5000)],
    )
    stdout, _ = process.communicate(timeout=20)

    assert process.returncode == 0, errors.read_text()
    heard = {m["topic"]: m for m in json_lines(stdout.decode())}
    assert set(heard) == {"tele/pow1/SENSOR", "site/notes"}
    plug = heard["tele/pow1/SENSOR"]
    assert (plug["profile"], plug["subscription"]) == ("tasmota", "tele/+/SENSOR")
    values = {r["sensor"]: (r["value"], r["unit"]) for r in plug["readings"]}
    assert values == {
        "mqtt.pow1.import_total": (6.294, "kWh"),
        "mqtt.pow1.power_import": (2635, "W"),
    }
    notes = heard["site/notes"]
    assert "readings" not in notes
    assert notes["payload_bytes"] == 5000
    assert len(notes["payload"]) < 5000
    assert "2 messages" in errors.read_text()


def test_listen_in_text_shows_topic_payload_and_reading(tmp_path, broker):
    """The default output names topic, payload and each decoded reading."""
    config = mqtt_config(tmp_path / "node.toml", broker.port)
    errors = tmp_path / "err"
    process = start_cli(
        "sensors",
        "listen-mqtt",
        "--config",
        str(config),
        "--seconds",
        "3",
        stderr=errors,
    )
    wait_for_text(errors, "listening on")

    publish(broker.port, [("tele/pow1/SENSOR", TASMOTA), ("other/topic", b"1")])
    stdout, _ = process.communicate(timeout=20)

    text = stdout.decode()
    assert process.returncode == 0
    assert "tele/pow1/SENSOR" in text and '"Total":6.294' in text
    assert "mqtt.pow1.import_total = 6.294 kWh" in text
    assert "subscribed as tele/+/SENSOR" in text
    assert "other/topic" not in text  # only the configured topics by default


def test_listen_to_an_unreachable_broker_exits_3():
    """Nothing listening on the port: one error line, exit code 3."""
    port = free_port()

    result = cli("sensors", "listen-mqtt", "--port", str(port), "--seconds", "1")

    assert result.returncode == 3
    assert result.stderr.startswith(
        f"error: cannot connect to MQTT broker 127.0.0.1:{port}"
    )
    assert "Traceback" not in result.stderr


@pytest.fixture
def locked_broker(tmp_path: Path) -> Iterator[Broker]:
    """mosquitto that admits only user 'node' with password 'right'."""
    if not MOSQUITTO.exists() or not PASSWD.exists():
        pytest.skip("mosquitto is not installed (apt-get install mosquitto)")
    passwords = tmp_path / "passwd"
    subprocess.run(
        [str(PASSWD), "-c", "-b", str(passwords), "node", "right"],
        check=True,
        capture_output=True,
    )
    broker = Broker(tmp_path)
    broker.config.write_text(
        f"listener {broker.port} 127.0.0.1\nallow_anonymous false\n"
        f"password_file {passwords}\nlog_dest none\nuser root\n"
    )
    broker.start()
    yield broker
    broker.stop()


@pytest.mark.parametrize(("password", "code"), [("wrong", 3), ("right", 0)])
def test_listen_uses_the_configured_credentials(
    tmp_path, locked_broker, password, code
):
    """The source's credentials are used: a wrong password is refused with exit 3."""
    credentials = f'username = "node"\npassword = "{password}"'
    config = mqtt_config(tmp_path / "node.toml", locked_broker.port, credentials)

    result = cli("sensors", "listen-mqtt", "--config", str(config), "--seconds", "0.5")

    assert result.returncode == code, result.stderr
    refused = f"error: MQTT broker 127.0.0.1:{locked_broker.port} refused"
    assert (refused in result.stderr) == (code == 3)


# keys rotate -----------------------------------------------------------------


def peer_id_shown(data: Path) -> str:
    """The peer id `keys show` prints for a data directory."""
    result = cli("keys", "show", "--data-dir", str(data), "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["peer_id"]


def rotate(data: Path) -> dict:
    """Run `keys rotate --json` and return what it printed."""
    result = cli("keys", "rotate", "--data-dir", str(data), "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_rotate_changes_the_peer_id_and_keeps_the_old_key(tmp_path):
    """After a rotation, keys show gives the new id; the old key is kept, 0600."""
    data = tmp_path / "data"
    data.mkdir()
    old = NodeKey.load_or_create(data)

    result = cli("keys", "rotate", "--data-dir", str(data), "--json")

    done = json.loads(result.stdout)
    retired = Path(done["old_key_file"])
    assert result.returncode == 0
    assert done["old_peer_id"] == old.peer_id
    assert peer_id_shown(data) == done["new_peer_id"] != old.peer_id
    assert retired.read_bytes() == bytes(old.signing_key)
    assert retired.stat().st_mode & 0o777 == 0o600
    assert (data / KEY_FILE).stat().st_mode & 0o777 == 0o600
    assert any(
        f"federation admit {done['new_peer_id']}" in s for s in done["next_steps"]
    )


def test_rotate_twice_keeps_both_old_keys(tmp_path):
    """Each rotation keeps its own retired key; none is overwritten."""
    data = tmp_path / "data"
    data.mkdir()
    first = NodeKey.load_or_create(data)

    one, two = rotate(data), rotate(data)

    kept = {p.name: p.read_bytes() for p in data.glob(f"{KEY_FILE}.retired-*")}
    assert two["old_peer_id"] == one["new_peer_id"]
    assert set(kept) == {
        f"{KEY_FILE}.retired-{first.peer_id}",
        f"{KEY_FILE}.retired-{one['new_peer_id']}",
    }
    assert kept[f"{KEY_FILE}.retired-{first.peer_id}"] == bytes(first.signing_key)


def test_rotate_without_a_key_exits_3(tmp_path):
    """No key yet: nothing to rotate, exit 3, and no key is made."""
    result = cli("keys", "rotate", "--data-dir", str(tmp_path))

    assert result.returncode == 3
    assert "no node key" in result.stderr
    assert not (tmp_path / KEY_FILE).exists()


def test_rotate_is_refused_while_a_daemon_runs(tmp_path):
    """With a daemon on the data directory, rotate exits 3 and the key stays."""
    config, data = write_config(tmp_path / "node.toml"), tmp_path / "data"
    node = start_node(config, data, tmp_path / "node.log")
    try:
        wait_until(lambda: (data / KEY_FILE).exists() and holder_pid(data) is not None)
        before = peer_id_shown(data)

        result = cli("keys", "rotate", "--data-dir", str(data))

        assert result.returncode == 3
        assert f"pid {node.pid}" in result.stderr
        assert "stop it first" in result.stderr
        assert peer_id_shown(data) == before
        assert not list(data.glob(f"{KEY_FILE}.retired-*"))
    finally:
        node.send_signal(signal.SIGTERM)
        node.wait(timeout=20)


def wait_until(condition: Callable[[], bool], timeout_s: float = 30.0) -> None:
    """Poll `condition` until it holds, failing after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)
