"""umqtt.simple's MQTTClient over paho-mqtt, for the firmware under CPython.

micropython-umqtt.simple on PyPI is a upip archive without setup.py, so pip
cannot install it. This keeps umqtt.simple's surface and its failure modes:
OSError when the socket fails, MQTTException when the broker refuses, a
QoS 1 publish that returns only once acknowledged, and no reconnecting of
its own (a client whose link dropped fails until a new one is made).
"""

import threading

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

ANSWER_TIMEOUT_S = 5.0


class MQTTException(Exception):
    """The broker refused the connection (the argument is its code)."""


class MQTTClient:
    def __init__(
        self,
        client_id,
        server,
        port=0,
        user=None,
        password=None,
        keepalive=0,
        ssl=False,
        ssl_params=None,
    ):
        self.client_id = _text(client_id)
        self.server = server
        self.port = port or 1883
        self.user = user
        self.password = password
        self.keepalive = keepalive
        self._paho = None
        self._lost = False
        self._answered = threading.Event()
        self._refusal = None

    def connect(self, clean_session=True):
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            clean_session=clean_session,
            protocol=mqtt.MQTTv311,
        )
        if self.user:
            client.username_pw_set(_text(self.user), _text(self.password or ""))
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.connect(self.server, self.port, self.keepalive or 60)
        self._paho = client
        client.loop_start()
        if not self._answered.wait(ANSWER_TIMEOUT_S):
            self.disconnect()
            raise OSError(110, "no CONNACK")
        if self._refusal is not None:
            self.disconnect()
            raise MQTTException(self._refusal)
        return False

    def publish(self, topic, msg, retain=False, qos=0):
        if self._paho is None or self._lost:
            raise OSError(104, "connection lost")
        info = self._paho.publish(_text(topic), bytes(msg), qos=qos, retain=retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise OSError(104, mqtt.error_string(info.rc))
        if qos:
            try:
                info.wait_for_publish(ANSWER_TIMEOUT_S)
            except (RuntimeError, ValueError) as exc:
                raise OSError(104, str(exc)) from exc
            if not info.is_published() or self._lost:
                raise OSError(110, "no PUBACK")

    def ping(self):
        """paho keeps the connection alive on its own thread."""

    def disconnect(self):
        if self._paho is None:
            return
        self._paho.disconnect()
        self._paho.loop_stop()
        self._paho = None

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            self._refusal = reason_code.value
        self._answered.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        self._lost = True


def _text(value):
    return value.decode() if isinstance(value, (bytes, bytearray)) else value
