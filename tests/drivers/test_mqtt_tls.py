"""MQTT over TLS with credentials, against a real mosquitto."""

import asyncio
import datetime
import ipaddress
import subprocess
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from paho.mqtt.enums import CallbackAPIVersion

from koprogo_node.config.model import MqttSource, MqttSubscription
from koprogo_node.core.clock import Clock
from koprogo_node.drivers.mqtt import MqttSubscriber
from koprogo_node.errors import SensorUnavailable
from tests.mqtt_broker import MOSQUITTO, Broker

from ..fakes import FakeSink

PASSWD = Path("/usr/bin/mosquitto_passwd")


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def make_certs(folder: Path) -> tuple[Path, Path, Path]:
    """A throw-away CA and a server certificate for 127.0.0.1 / localhost."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("test ca"))
        .issuer_name(_name("test ca"))
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    san = x509.SubjectAlternativeName(
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    )
    server = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(2)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(san, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return paths


@pytest.fixture
def tls_broker(tmp_path):
    """mosquitto with TLS only and a user 'node' / 'secret-for-tests'."""
    if not MOSQUITTO.exists() or not PASSWD.exists():
        pytest.skip("mosquitto is not installed (apt-get install mosquitto)")
    ca, cert, key = make_certs(tmp_path)
    passwords = tmp_path / "passwd"
    subprocess.run(
        [str(PASSWD), "-c", "-b", str(passwords), "node", "secret-for-tests"],
        check=True,
        capture_output=True,
    )
    broker = Broker(tmp_path)
    broker.config.write_text(
        f"listener {broker.port} 127.0.0.1\n"
        f"cafile {ca}\ncertfile {cert}\nkeyfile {key}\n"
        f"allow_anonymous false\npassword_file {passwords}\n"
        "log_dest none\nuser root\n"
    )
    broker.start()
    yield broker, ca
    broker.stop()


def source(port, ca, password):
    return MqttSource(
        port=port,
        tls=True,
        ca_file=str(ca),
        username="node",
        password=password,
        client_id="tls-test",
        subscriptions=(MqttSubscription(profile="tasmota", topic="tele/+/SENSOR"),),
    )


async def test_message_arrives_over_tls_with_credentials(tls_broker):
    """With the CA and the right password, a message arrives over TLS."""
    broker, ca = tls_broker
    subscriber = MqttSubscriber(source(broker.port, ca, "secret-for-tests"))
    sink = FakeSink()
    clock = Clock(time.time, time.monotonic, lambda: True)
    task = asyncio.create_task(subscriber.run(sink, clock))
    for _ in range(100):
        if subscriber.connected:
            break
        await asyncio.sleep(0.05)
    payload = b'{"ENERGY":{"Total":6.294,"Power":2635}}'
    await asyncio.to_thread(_publish_tls, broker.port, ca, "tele/pow1/SENSOR", payload)
    for _ in range(100):
        if sink.readings:
            break
        await asyncio.sleep(0.05)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)

    values = {r.sensor: r.value for r in sink.readings}
    assert values == {"mqtt.pow1.import_total": 6.294, "mqtt.pow1.power_import": 2635}


def _publish_tls(port: int, ca: Path, topic: str, payload: bytes) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="tls-publisher")
    client.tls_set(ca_certs=str(ca))
    client.username_pw_set("node", "secret-for-tests")
    client.connect("127.0.0.1", port)
    client.loop_start()
    client.publish(topic, payload, qos=1).wait_for_publish(timeout=5)
    client.disconnect()
    client.loop_stop()


async def test_wrong_password_is_refused(tls_broker):
    """A wrong password ends run() with SensorUnavailable naming the refusal."""
    broker, ca = tls_broker
    subscriber = MqttSubscriber(source(broker.port, ca, "wrong"))
    clock = Clock(time.time, time.monotonic, lambda: True)

    with pytest.raises(SensorUnavailable, match="refused"):
        await asyncio.wait_for(subscriber.run(FakeSink(), clock), 15)
