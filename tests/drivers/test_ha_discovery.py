"""The node's readings announced to Home Assistant through a real broker."""

import asyncio
import json
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from koprogo_node.config.model import MqttSource
from koprogo_node.core.clock import Clock
from koprogo_node.core.readings import Kind, Reading
from koprogo_node.drivers.ha_discovery import config_message
from koprogo_node.drivers.mqtt import MqttSubscriber
from tests.mqtt_broker import broker_fixture  # noqa: F401 (registers "broker")

from ..fakes import FakeSink

WATER = Reading("sim.common.water", 1.8e9, 921.5, "m3", Kind.COUNTER)
POWER = Reading("sim.lot01.power_import", 1.8e9, 0.42, "kW", Kind.GAUGE)


def test_counter_config_is_a_total_increasing_water_sensor():
    """A water counter becomes a total_increasing water sensor in m³."""
    topic, payload = config_message("homeassistant", "res-1", WATER)

    config = json.loads(payload)
    assert topic == "homeassistant/sensor/res_1/sim_common_water/config"
    assert config["device_class"] == "water"
    assert config["state_class"] == "total_increasing"
    assert config["unit_of_measurement"] == "m³"
    assert config["state_topic"] == "koprogo/res-1/sim_common_water/state"


async def test_discovery_and_states_are_published_retained(broker):
    """A subscriber with ha_discovery announces each channel and its value."""
    received: dict[str, tuple[bytes, bool]] = {}
    done = threading.Event()

    def on_message(client, userdata, message):
        received[message.topic] = (message.payload, message.retain)
        if len(received) >= 4:
            done.set()

    source = MqttSubscriber(
        MqttSource(port=broker.port, client_id="node-under-test", ha_discovery=True)
    )
    source.publish_every_s = 0.05
    source.observe({WATER.sensor: WATER, POWER.sensor: POWER}, "res-1")
    clock = Clock(time.time, time.monotonic, lambda: True)
    task = asyncio.create_task(source.run(FakeSink(), clock))
    await asyncio.sleep(0.5)
    listener = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="ha")
    listener.on_message = on_message
    listener.connect("127.0.0.1", broker.port)
    listener.subscribe([("homeassistant/#", 1), ("koprogo/#", 1)])
    listener.loop_start()

    got_all = await asyncio.to_thread(done.wait, 5)
    listener.loop_stop()
    listener.disconnect()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)

    assert got_all
    assert received["koprogo/res-1/sim_common_water/state"] == (b"921.5", True)
    assert received["koprogo/res-1/sim_lot01_power_import/state"] == (b"0.42", True)
    config = json.loads(
        received["homeassistant/sensor/res_1/sim_lot01_power_import/config"][0]
    )
    assert (config["device_class"], config["unit_of_measurement"]) == ("power", "kW")
