"""The firmware's main loop against a real mosquitto with passwords, read by the node.

Stand-in pins and probes, real sockets: the satellite publishes through the
umqtt.simple stand-in, the node's own MqttSubscriber maps what arrives with
sensors/mqtt/koprogo-satellite.toml, and the broker is stopped and started
again in the middle without a reading going missing.
"""

import asyncio
import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from koprogo_node.config.model import MqttSource, MqttSubscription
from koprogo_node.core.clock import Clock
from koprogo_node.core.readings import Kind
from koprogo_node.drivers.mqtt import MqttSubscriber
from tests.fakes import FakeSink
from tests.firmware import standin_ds18x20, standin_machine
from tests.firmware.support import filled_example
from tests.mqtt_broker import MOSQUITTO, Broker

pytestmark = pytest.mark.timeout(90)

USER = "sat"
PASSWORD = "sat-secret"
NODE_USER = "node"
NODE_PASSWORD = "node-secret"
GOOD_ROM = bytes.fromhex("28ff4c1a00160384")
BAD_ROM = bytes.fromhex("28aa01b2c3d4e5f6")
DEVICE = "mqtt.cellar-1"


class AuthBroker(Broker):
    """mosquitto refusing anonymous clients, with two accounts."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        passwords = root / "passwd"
        passwords.write_text(f"{USER}:{PASSWORD}\n{NODE_USER}:{NODE_PASSWORD}\n")
        subprocess.run(["mosquitto_passwd", "-U", str(passwords)], check=True)
        passwords.chmod(0o600)
        text = self.config.read_text().replace(
            "allow_anonymous true\n",
            f"allow_anonymous false\npassword_file {passwords}\n",
        )
        self.config.write_text(text)


@pytest.fixture(name="auth_broker")
def auth_broker_fixture(tmp_path: Path) -> Iterator[AuthBroker]:
    """A running mosquitto with passwords; skipped when it is not installed."""
    if not MOSQUITTO.exists():
        pytest.skip("mosquitto is not installed (apt-get install mosquitto)")
    running = AuthBroker(tmp_path)
    running.start()
    yield running
    running.stop()


class Recorder:
    """A persistent-session subscriber noting every message in arrival order."""

    def __init__(self, port: int, topic: str, client_id: str) -> None:
        self.messages: list[mqtt.MQTTMessage] = []
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False
        )
        self.client.username_pw_set(NODE_USER, NODE_PASSWORD)
        self.client.reconnect_delay_set(1, 1)
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.on_message = lambda _c, _u, msg: self.messages.append(msg)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def satellite_config(port: int, password: str = PASSWORD) -> dict:
    from kpsat.settings import check

    raw = filled_example()
    raw["broker"].update(port=port, user=USER, password=password, timeout_s=5)
    raw["meter"].update(debounce_ms=2)
    raw["leak"].update(debounce_ms=20)
    raw["onewire"].update(conversion_ms=5)
    raw.update(interval_s=0.3, retry_max_s=1, ntp_host="")
    return check(raw)


async def wait_until(condition: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


def pulse_train(n: int) -> None:
    """`n` clean 10 ms pulses on the meter pin, in real time."""
    for _ in range(n):
        standin_machine.drive(4, 0)
        time.sleep(0.01)
        standin_machine.drive(4, 1)
        time.sleep(0.01)


async def test_readings_reach_the_node_across_a_broker_restart(
    auth_broker: AuthBroker, tmp_path: Path
) -> None:
    """Every reading arrives mapped, in order, though the broker restarted."""
    from kpsat.app import Satellite
    from kpsat.board import Board

    standin_ds18x20.PROBES.update({GOOD_ROM: 21.5, BAD_ROM: Exception("CRC error")})
    sink = FakeSink()
    node = MqttSubscriber(
        MqttSource(
            port=auth_broker.port,
            username=NODE_USER,
            password=NODE_PASSWORD,
            client_id="koprogo-node-e2e",
            subscriptions=(
                MqttSubscription(
                    profile="koprogo-satellite", topic="koprogo-sat/+/state"
                ),
            ),
        )
    )
    clock = Clock(wall=time.time, mono=time.monotonic, is_synchronised=lambda: True)
    node_task = asyncio.create_task(node.run(sink, clock))
    await wait_until(lambda: node.connected)
    recorder = Recorder(auth_broker.port, "koprogo-sat/#", "recorder-e2e")
    config = satellite_config(auth_broker.port)
    sat = Satellite(config, Board(config, str(tmp_path)))

    await asyncio.to_thread(sat.run, lambda: sat.reports >= 2 and not len(sat.ring))
    auth_broker.stop()
    await asyncio.to_thread(pulse_train, 3)
    await asyncio.to_thread(sat.run, lambda: sat.reports >= 6)
    buffered = len(sat.ring)
    auth_broker.start()
    await asyncio.to_thread(sat.run, lambda: sat.reports >= 8 and not len(sat.ring))
    water = f"{DEVICE}.water"
    await wait_until(lambda: sum(r.sensor == water for r in sink.readings) >= 8)
    await wait_until(lambda: len(recorder.messages) >= sat.reports)
    node_task.cancel()
    await asyncio.gather(node_task, return_exceptions=True)
    recorder.close()

    assert buffered >= 3
    seqs = [json.loads(m.payload)["seq"] for m in recorder.messages]
    assert seqs == list(range(1, sat.reports + 1))
    totals = [r for r in sink.readings if r.sensor == water]
    assert len(totals) == sat.reports
    assert (totals[0].unit, totals[0].kind) == ("m3", Kind.COUNTER)
    assert [r.value for r in totals][-1] == pytest.approx(0.003)
    by_sensor = {r.sensor: r for r in sink.readings}
    assert by_sensor[f"{DEVICE}.pulses"].value == 3
    assert by_sensor[f"{DEVICE}.water_leak"].value == 0
    temperature = by_sensor[f"{DEVICE}.temperature_28ff4c1a00160384"]
    assert (temperature.value, temperature.unit) == (21.5, "degC")
    assert f"{DEVICE}.temperature_28aa01b2c3d4e5f6" not in by_sensor
    crc = [
        j for j in sink.rejects if j.sensor == f"{DEVICE}.temperature_28aa01b2c3d4e5f6"
    ]
    assert crc and {j.reason for j in crc} == {"not_a_number"}


def retained(port: int, topic: str, wait_s: float = 2.0) -> list[mqtt.MQTTMessage]:
    """What a newcomer subscribing to `topic` receives within `wait_s`."""
    got: list[mqtt.MQTTMessage] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="newcomer")
    client.username_pw_set(NODE_USER, NODE_PASSWORD)
    client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
    client.on_message = lambda _c, _u, msg: got.append(msg)
    client.connect("127.0.0.1", port)
    client.loop_start()
    time.sleep(wait_s)
    client.disconnect()
    client.loop_stop()
    return got


def test_discovery_documents_are_retained(
    auth_broker: AuthBroker, tmp_path: Path
) -> None:
    """A client arriving later, even after a broker restart, gets the discovery."""
    from kpsat.app import Satellite
    from kpsat.board import Board

    standin_ds18x20.PROBES.update({GOOD_ROM: 21.5})
    config = satellite_config(auth_broker.port)
    sat = Satellite(config, Board(config, str(tmp_path)))
    sat.run(until=lambda: sat.reports >= 1 and not len(sat.ring))

    auth_broker.restart()
    got = retained(auth_broker.port, "homeassistant/#")

    docs = {m.topic: json.loads(m.payload) for m in got}
    assert all(m.retain for m in got)
    assert set(docs) == {
        "homeassistant/sensor/cellar-1/water/config",
        "homeassistant/binary_sensor/cellar-1/water_leak/config",
        "homeassistant/sensor/cellar-1/temperature_28ff4c1a00160384/config",
        "homeassistant/sensor/cellar-1/dropped/config",
        "homeassistant/sensor/cellar-1/rssi/config",
    }
    water = docs["homeassistant/sensor/cellar-1/water/config"]
    assert water["state_topic"] == "koprogo-sat/cellar-1/state"
    assert (water["unit_of_measurement"], water["device_class"]) == ("m³", "water")
    assert water["state_class"] == "total_increasing"


def test_wrong_password_keeps_readings_buffered(
    auth_broker: AuthBroker, tmp_path: Path
) -> None:
    """A refused login is a link failure: readings stay in the ring."""
    from kpsat.app import Satellite
    from kpsat.board import Board

    config = satellite_config(auth_broker.port, password="wrong")
    board = Board(config, str(tmp_path))
    lines: list[str] = []
    board.log = lambda event, **values: lines.append(f"{event} {values}")
    sat = Satellite(config, board)

    sat.run(until=lambda: sat.reports >= 3)

    assert len(sat.ring) == 3
    assert lines[0].startswith("link_down")
    assert "refused" in lines[0]
