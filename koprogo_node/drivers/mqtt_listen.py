"""Listening to a broker as a technician: every message, and what it maps to.

Unlike `MqttSubscriber`, the listener takes no persistent session and a
random client id, so it never steals the daemon's session or queues messages
for later. paho's network thread only puts events on a queue; the caller's
thread takes them off with `events`.
"""

from __future__ import annotations

import queue
import ssl
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import paho.mqtt.client as mqtt

from ..config.model import MqttSource
from ..core.clock import Stamp
from ..core.readings import Reading, Reject
from ..errors import SensorUnavailable
from .mqtt import CONNECT_TIMEOUT_S, broker_client
from .mqtt_mapping import decode_message, mqtt_profile
from .profiles import list_profiles

__all__ = ["Heard", "Link", "Listener", "Mapping", "decode_heard"]

POLL_S = 0.2


@dataclass(frozen=True, slots=True)
class Heard:
    """One message as the broker delivered it."""

    received_s: float
    topic: str
    payload: bytes
    retained: bool


@dataclass(frozen=True, slots=True)
class Link:
    """The connection went up or down."""

    up: bool
    reason: str


@dataclass(frozen=True, slots=True)
class Mapping:
    """What the node's profiles make of a message.

    `subscription` is the configured topic filter that covers the topic, or
    "" when only an auto-detected profile does (the node would ignore it).
    """

    profile: str
    subscription: str
    out: list[Reading | Reject]


class Listener:
    """A short-lived, clean-session subscription to a broker's topics."""

    def __init__(self, broker: MqttSource, topics: Sequence[str]) -> None:
        self.broker = broker
        self.topics = tuple(topics)
        self.where = f"{broker.host}:{broker.port}"
        self._events: queue.Queue[Heard | Link] = queue.Queue()
        self._client = self._make_client()

    def connect(self) -> None:
        """Connect and subscribe; SensorUnavailable if unreachable or refused.

        Returns once the broker has acknowledged the subscriptions, so no
        message published afterwards is missed.
        """
        try:
            self._client.connect(
                self.broker.host, self.broker.port, self.broker.keepalive_s
            )
        except (OSError, ssl.SSLError, ValueError) as exc:
            message = f"cannot connect to MQTT broker {self.where}: {exc}"
            raise SensorUnavailable(message) from exc
        self._client.loop_start()
        try:
            first = self._events.get(timeout=CONNECT_TIMEOUT_S)
        except queue.Empty as exc:
            self.close()
            raise SensorUnavailable(f"MQTT broker {self.where} did not answer") from exc
        if not isinstance(first, Link) or not first.up:
            self.close()
            reason = first.reason if isinstance(first, Link) else "no answer"
            raise SensorUnavailable(f"MQTT broker {self.where} refused: {reason}")

    def events(self, seconds: float | None) -> Iterator[Heard | Link]:
        """Messages and link changes for `seconds` (None: until interrupted)."""
        deadline = None if seconds is None else time.monotonic() + seconds
        while deadline is None or time.monotonic() < deadline:
            wait_s = POLL_S if deadline is None else deadline - time.monotonic()
            try:
                yield self._events.get(timeout=max(0.0, min(POLL_S, wait_s)))
            except queue.Empty:
                continue

    def close(self) -> None:
        """Disconnect and stop paho's thread."""
        self._client.disconnect()
        self._client.loop_stop()

    def _make_client(self) -> mqtt.Client:
        """A paho client for the broker's address, TLS and credentials."""
        client = broker_client(self.broker)
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    # paho's network thread ---------------------------------------------------

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        """Subscribe (again, after a reconnect), or report the refusal."""
        if reason_code.is_failure:
            self._events.put(Link(up=False, reason=str(reason_code)))
        else:
            client.subscribe([(topic, 0) for topic in self.topics])

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        """Report the link up once the broker has taken the subscriptions."""
        refused = [str(code) for code in reason_codes if code.is_failure]
        reason = f"subscription refused: {refused[0]}" if refused else "subscribed"
        self._events.put(Link(up=not refused, reason=reason))

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self._events.put(Link(up=False, reason=str(reason_code)))

    def _on_message(self, client, userdata, message: mqtt.MQTTMessage) -> None:
        heard = Heard(
            time.time(), message.topic, bytes(message.payload), message.retain
        )
        self._events.put(heard)


def decode_heard(source: MqttSource, heard: Heard, stamp: Stamp) -> Mapping | None:
    """Decode a message as `source` would, else with an auto-detected profile.

    None when no profile covers the topic.
    """
    for subscription in source.subscriptions:
        if mqtt.topic_matches_sub(subscription.topic, heard.topic):
            out = decode_message(
                subscription.profile,
                heard.topic,
                heard.payload,
                prefix=source.name,
                stamp=stamp,
                device=subscription.device,
            )
            return Mapping(subscription.profile, subscription.topic, out)
    profile = _auto_profile(heard.topic)
    if profile is None:
        return None
    out = decode_message(
        profile, heard.topic, heard.payload, prefix=source.name, stamp=stamp
    )
    return Mapping(profile, "", out)


def _auto_profile(topic: str) -> str | None:
    """The first auto-detectable profile covering `topic`, as the node picks it."""
    for found in list_profiles("mqtt"):
        profile = mqtt_profile(found.name)
        if profile.auto_detect and profile.match(topic) is not None:
            return profile.name
    return None
