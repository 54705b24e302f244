"""MQTT subscriber: messages from a broker, mapped by profiles, into the sink.

paho-mqtt runs its network loop on its own thread. Callbacks there only hand
events to the event loop (call_soon_threadsafe into an asyncio.Queue); the
mapping and the sink run on the loop. The session is persistent (fixed client
id, clean_session False, QoS 1) so the broker queues messages while the node
is away and delivers them after the reconnect, which paho retries with
back-off. A first connection that fails raises SensorUnavailable.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import time
from dataclasses import dataclass

import paho.mqtt.client as mqtt
import structlog
from paho.mqtt.enums import CallbackAPIVersion

from ..config.model import MqttSource, MqttSubscription
from ..core.clock import Clock
from ..core.readings import Reading, Reject
from ..errors import SensorUnavailable
from .base import Sink
from .ha_discovery import config_message, state_topic
from .mqtt_mapping import decode_message, mqtt_profile

__all__ = ["MqttSubscriber"]

log = structlog.get_logger(__name__)

QOS = 1
CONNECT_TIMEOUT_S = 10.0
RECONNECT_MIN_S = 1
RECONNECT_MAX_S = 60
# Messages waiting for the loop beyond this are dropped (and counted): paho's
# thread must never wait for a slow sink.
MAX_PENDING = 10_000
PUBLISH_EVERY_S = 10.0
ALERT_POLL_S = 1.0


def broker_client(
    broker: MqttSource, client_id: str = "", clean_session: bool = True
) -> mqtt.Client:
    """A paho client for the broker's address, TLS and credentials (no I/O)."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=clean_session,
        protocol=mqtt.MQTTv311,
    )
    if broker.username:
        client.username_pw_set(broker.username, broker.password or None)
    if broker.tls:
        client.tls_set(ca_certs=broker.ca_file or None, cert_reqs=ssl.CERT_REQUIRED)
    client.connect_timeout = CONNECT_TIMEOUT_S
    return client


@dataclass(frozen=True, slots=True)
class _Message:
    topic: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class _Link:
    """A connection state change reported by paho."""

    up: bool
    reason: str


class MqttSubscriber:
    """The source for one MQTT broker and its subscriptions.

    `connected` and `dropped` are for status display.
    """

    def __init__(self, config: MqttSource) -> None:
        self.config = config
        self.name = config.name
        self.connected = False
        self.dropped = 0
        for subscription in config.subscriptions:
            mqtt_profile(subscription.profile)  # ConfigError now, not per message
        self._queue: asyncio.Queue[_Message | _Link] = asyncio.Queue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._latest: dict[str, Reading] | None = None
        self._node_id = "node"
        self._alerts: dict[str, dict] | None = None
        self._alerts_topic = ""
        self.publish_every_s = PUBLISH_EVERY_S

    def observe(self, latest: dict[str, Reading], node_id: str) -> None:
        """Give the node's latest readings, for Home Assistant discovery."""
        self._latest = latest
        self._node_id = node_id

    def observe_alerts(self, feed: dict[str, dict], topic: str) -> None:
        """Give the node's alerts, to publish (retained) under `topic`/<id>."""
        self._alerts = feed
        self._alerts_topic = topic.rstrip("/")

    async def run(self, sink: Sink, clock: Clock) -> None:
        """Deliver mapped messages into `sink` until cancelled."""
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        client = self._client()
        publisher = None
        try:
            await asyncio.to_thread(self._connect, client)
            client.loop_start()
            await self._first_link()
            if self._publishes():
                publisher = asyncio.create_task(self._publish_forever(client))
            while True:
                item = await self._queue.get()
                if isinstance(item, _Link):
                    self._note_link(item)
                else:
                    await self._deliver(item, sink, clock)
        finally:
            if publisher is not None:
                publisher.cancel()
            await asyncio.to_thread(_shut, client)
            if self.connected:
                self.connected = False
                log.info("mqtt_disconnected", source=self.name, reason="stopped")

    def _publishes(self) -> bool:
        readings = self.config.ha_discovery and self._latest is not None
        return readings or (self._alerts is not None and bool(self._alerts_topic))

    async def _publish_forever(self, client: mqtt.Client) -> None:
        """Publish changed alerts at once, readings every `publish_every_s`."""
        announced: set[str] = set()
        sent: dict[str, float] = {}
        alerts_sent: dict[str, dict] = {}
        readings_due = 0.0
        while True:
            self._publish_alerts(client, alerts_sent)
            if self.config.ha_discovery and time.monotonic() >= readings_due:
                readings_due = time.monotonic() + self.publish_every_s
                self._publish_readings(client, announced, sent)
            await asyncio.sleep(min(ALERT_POLL_S, self.publish_every_s))

    def _publish_readings(
        self, client: mqtt.Client, announced: set[str], sent: dict[str, float]
    ) -> None:
        """Discovery configs for new channels, and values that changed."""
        prefix = self.config.discovery_prefix
        for sensor, reading in list((self._latest or {}).items()):
            if sensor not in announced:
                topic, payload = config_message(prefix, self._node_id, reading)
                client.publish(topic, payload, qos=QOS, retain=True)
                announced.add(sensor)
            if sent.get(sensor) != reading.value:
                topic = state_topic(self._node_id, sensor)
                client.publish(topic, repr(reading.value), qos=QOS, retain=True)
                sent[sensor] = reading.value

    def _publish_alerts(self, client: mqtt.Client, sent: dict[str, dict]) -> None:
        """Each alert's JSON, retained, whenever it changed."""
        for alert_id, alert in list((self._alerts or {}).items()):
            if sent.get(alert_id) != alert:
                payload = json.dumps(alert, sort_keys=True)
                topic = f"{self._alerts_topic}/{alert_id}"
                client.publish(topic, payload, qos=QOS, retain=True)
                sent[alert_id] = alert

    def _client(self) -> mqtt.Client:
        """A paho client set up from the configuration (no I/O yet)."""
        client = broker_client(
            self.config,
            self.config.client_id or default_client_id(self.name),
            clean_session=False,
        )
        client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def _connect(self, client: mqtt.Client) -> None:
        """Open the TCP/TLS connection (blocking; run in a worker thread)."""
        where = f"{self.config.host}:{self.config.port}"
        try:
            client.connect(self.config.host, self.config.port, self.config.keepalive_s)
        except (OSError, ssl.SSLError, ValueError) as exc:
            message = f"cannot connect to MQTT broker {where}: {exc}"
            raise SensorUnavailable(message) from exc

    async def _first_link(self) -> None:
        """Wait for the broker's answer to the first connection."""
        where = f"{self.config.host}:{self.config.port}"
        try:
            item = await asyncio.wait_for(self._queue.get(), CONNECT_TIMEOUT_S)
        except TimeoutError as exc:
            raise SensorUnavailable(f"MQTT broker {where} did not answer") from exc
        if not isinstance(item, _Link) or not item.up:
            reason = item.reason if isinstance(item, _Link) else "no answer"
            raise SensorUnavailable(f"MQTT broker {where} refused: {reason}")
        self._note_link(item)

    def _note_link(self, link: _Link) -> None:
        """Log connection transitions only."""
        if link.up == self.connected:
            return
        self.connected = link.up
        event = "mqtt_connected" if link.up else "mqtt_disconnected"
        log.info(event, source=self.name, host=self.config.host, reason=link.reason)

    async def _deliver(self, message: _Message, sink: Sink, clock: Clock) -> None:
        """Map one message and hand its readings and rejects to the sink."""
        subscription = self._subscription_for(message.topic)
        if subscription is None:
            return
        out = decode_message(
            subscription.profile,
            message.topic,
            message.payload,
            prefix=self.name,
            stamp=clock.stamp(),
            device=subscription.device,
        )
        readings = [item for item in out if isinstance(item, Reading)]
        for item in out:
            if isinstance(item, Reject):
                sink.reject(item)
        if readings:
            await sink.put_many(readings)

    def _subscription_for(self, topic: str) -> MqttSubscription | None:
        """The first subscription whose filter covers `topic`."""
        for subscription in self.config.subscriptions:
            if mqtt.topic_matches_sub(subscription.topic, topic):
                return subscription
        return None

    # paho's network thread ---------------------------------------------------

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        """Subscribe (again) and report; runs on paho's thread."""
        if not reason_code.is_failure:
            topics = [(s.topic, QOS) for s in self.config.subscriptions]
            if topics:
                client.subscribe(topics)
        self._post(_Link(up=not reason_code.is_failure, reason=str(reason_code)))

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self._post(_Link(up=False, reason=str(reason_code)))

    def _on_message(self, client, userdata, message: mqtt.MQTTMessage) -> None:
        self._post(_Message(message.topic, bytes(message.payload)))

    def _post(self, item: _Message | _Link) -> None:
        """Hand an event to the loop without waiting."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(self._async_enqueue, item)
        except RuntimeError:
            pass  # the loop closed between the check and the call

    def _async_enqueue(self, item: _Message | _Link) -> None:
        if isinstance(item, _Message) and self._queue.qsize() >= MAX_PENDING:
            self.dropped += 1
            return
        self._queue.put_nowait(item)


def default_client_id(name: str) -> str:
    """A client id stable across restarts, so the broker keeps our session."""
    return f"koprogo-{socket.gethostname()}-{name}"[:64]


def _shut(client: mqtt.Client) -> None:
    """Disconnect and stop paho's thread (blocking; run in a worker thread)."""
    client.disconnect()
    client.loop_stop()
