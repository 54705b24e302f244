"""MqttSubscriber against a real mosquitto started by the test."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from structlog.testing import capture_logs

from koprogo_node.config.model import MqttSource, MqttSubscription
from koprogo_node.core.clock import Clock
from koprogo_node.drivers.mqtt import MqttSubscriber
from koprogo_node.errors import SensorUnavailable
from tests.fakes import FakeSink
from tests.mqtt_broker import (
    Broker,
    broker_fixture,  # noqa: F401 (registers "broker")
    free_port,
)

WALL_S = 1_700_000_000.0
pytestmark = pytest.mark.timeout(30)


def fixed_clock() -> Clock:
    """A trusted clock stuck at WALL_S."""
    return Clock(wall=lambda: WALL_S, mono=time.monotonic, is_synchronised=lambda: True)


def source(port: int, client_id: str = "koprogo-test") -> MqttSource:
    """A source subscribed to Tasmota telemetry and Zigbee2MQTT plugs."""
    return MqttSource(
        name="mqtt",
        port=port,
        client_id=client_id,
        subscriptions=(
            MqttSubscription(profile="tasmota", topic="tele/+/SENSOR"),
            MqttSubscription(profile="zigbee2mqtt", topic="zigbee2mqtt/+"),
        ),
    )


def publish(port: int, messages: list[tuple[str, bytes]]) -> None:
    """Publish with QoS 1 from another client, waiting for each acknowledgement."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="publisher")
    client.connect("127.0.0.1", port)
    client.loop_start()
    for topic, payload in messages:
        client.publish(topic, payload, qos=1).wait_for_publish(timeout=5)
    client.disconnect()
    client.loop_stop()


async def wait_until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Poll `condition` until it holds, failing after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def power(watts: int) -> bytes:
    """A Zigbee2MQTT plug state with this power."""
    return b'{"power": %d}' % watts


async def test_published_message_becomes_readings(broker: Broker) -> None:
    """A Tasmota message published on the broker reaches the sink as readings."""
    sink = FakeSink()
    subscriber = MqttSubscriber(source(broker.port))
    task = asyncio.create_task(subscriber.run(sink, fixed_clock()))
    await wait_until(lambda: subscriber.connected)
    payload = b'{"ENERGY":{"Total":6.294,"Power":2635,"Voltage":227}}'

    await asyncio.to_thread(publish, broker.port, [("tele/pow1/SENSOR", payload)])
    await wait_until(lambda: len(sink.readings) == 3)
    task.cancel()

    assert {(r.sensor, r.value, r.ts) for r in sink.readings} == {
        ("mqtt.pow1.import_total", 6.294, WALL_S),
        ("mqtt.pow1.power_import", 2635.0, WALL_S),
        ("mqtt.pow1.voltage", 227.0, WALL_S),
    }
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_bad_payload_is_counted_as_reject(broker: Broker) -> None:
    """A malformed payload goes to sink.reject and the stream goes on."""
    sink = FakeSink()
    subscriber = MqttSubscriber(source(broker.port))
    task = asyncio.create_task(subscriber.run(sink, fixed_clock()))
    await wait_until(lambda: subscriber.connected)

    messages = [("zigbee2mqtt/plug", b"{not json"), ("zigbee2mqtt/plug", power(7))]
    await asyncio.to_thread(publish, broker.port, messages)
    await wait_until(lambda: len(sink.readings) == 1)
    task.cancel()

    assert [r.reason for r in sink.rejects] == ["bad_json"]
    assert sink.readings[0].sensor == "mqtt.plug.power_import"


async def test_no_message_lost_across_broker_restart(broker: Broker) -> None:
    """QoS 1 messages published around a broker restart all reach the sink."""
    sink = FakeSink()
    subscriber = MqttSubscriber(source(broker.port))
    task = asyncio.create_task(subscriber.run(sink, fixed_clock()))
    await wait_until(lambda: subscriber.connected)
    await asyncio.to_thread(publish, broker.port, [("zigbee2mqtt/p", power(1))])
    await wait_until(lambda: len(sink.readings) == 1)

    with capture_logs() as logs:
        await asyncio.to_thread(broker.restart)
        # Published at once, most likely before the subscriber is back: the
        # broker must hold them in the subscriber's persistent session.
        first = [("zigbee2mqtt/p", power(w)) for w in range(2, 12)]
        await asyncio.to_thread(publish, broker.port, first)
        await wait_until(lambda: subscriber.connected)
        after = [("zigbee2mqtt/p", power(w)) for w in range(12, 22)]
        await asyncio.to_thread(publish, broker.port, after)
        await wait_until(lambda: len(sink.readings) >= 21)
    task.cancel()

    assert sorted(r.value for r in sink.readings) == [float(w) for w in range(1, 22)]
    events = [e["event"] for e in logs if e["event"].startswith("mqtt_")]
    assert events == ["mqtt_disconnected", "mqtt_connected"]


async def test_messages_queued_while_stopped_arrive_on_next_run(
    broker: Broker,
) -> None:
    """The persistent session keeps messages published while the node was away."""
    config = source(broker.port, client_id="koprogo-away")
    subscriber = MqttSubscriber(config)
    first = asyncio.create_task(subscriber.run(FakeSink(), fixed_clock()))
    await wait_until(lambda: subscriber.connected)
    first.cancel()
    await asyncio.gather(first, return_exceptions=True)

    await asyncio.to_thread(publish, broker.port, [("zigbee2mqtt/p", power(42))])
    sink = FakeSink()
    again = MqttSubscriber(config)
    second = asyncio.create_task(again.run(sink, fixed_clock()))
    await wait_until(lambda: len(sink.readings) == 1)
    second.cancel()

    assert sink.readings[0].value == 42.0


async def test_unreachable_broker_raises_sensor_unavailable() -> None:
    """No broker listening: run() raises SensorUnavailable for the supervisor."""
    subscriber = MqttSubscriber(source(free_port()))

    with pytest.raises(SensorUnavailable, match="cannot connect to MQTT broker"):
        await subscriber.run(FakeSink(), fixed_clock())

    assert subscriber.connected is False


def test_unknown_profile_is_refused_at_construction() -> None:
    """A subscription naming a missing profile fails before any connection."""
    config = MqttSource(
        subscriptions=(MqttSubscription(profile="nope", topic="a/+"),),
    )

    with pytest.raises(Exception, match="no mqtt profile 'nope'"):
        MqttSubscriber(config)
