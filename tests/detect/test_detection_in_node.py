"""A real daemon finds the simulated building's leak: ledger, API, CLI, MQTT."""

import hashlib
import hmac
import http.server
import json
import threading
import time
import urllib.request

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from ..daemon.conftest import cli, free_port, start_node, wait_for_event
from ..mqtt_broker import MOSQUITTO, Broker

pytestmark = pytest.mark.slow
SPEED = 7200.0  # two simulated hours per second
LEAK_START_H = 30.0


SECRET = "hook-secret-for-tests"


class Receiver(http.server.BaseHTTPRequestHandler):
    """Records each webhook POST: (signature header, body)."""

    received: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.received.append((self.headers["X-Koprogo-Signature"], body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def node_config(path, broker_port, web_port, hook_port):
    path.write_text(f"""
[node]
building_id = "leaky"
[time]
trust = "always"
[ledger]
batch_ms = 300
[log]
format = "json"
[web]
port = {web_port}
anonymous_read = true
[webhooks]
urls = ["http://127.0.0.1:{hook_port}/hook"]
secret = "{SECRET}"
[alerts]
check_every_s = 1.0
water_min_history_days = 1
[[sources]]
type = "simulated"
name = "sim"
lots = 12
speed = {SPEED}
step_s = 300.0
start = "2026-11-02T00:00:00+01:00"
emit = "readings"
water_leak_l_per_h = 40.0
water_leak_start_h = {LEAK_START_H}
[[sources]]
type = "mqtt"
name = "mqtt"
port = {broker_port}
""")
    return path


def get_json(url):
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def retained(port, topic, wait_s=3.0):
    """Every retained message under `topic` on the broker."""
    found = {}
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="reader")
    client.on_message = lambda c, u, m: found.__setitem__(m.topic, m.payload)
    client.connect("127.0.0.1", port)
    client.subscribe(topic, qos=1)
    client.loop_start()
    time.sleep(wait_s)
    client.loop_stop()
    client.disconnect()
    return found


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    if not MOSQUITTO.exists():
        pytest.skip("mosquitto is not installed (apt-get install mosquitto)")
    running = Broker(tmp_path_factory.mktemp("broker"))
    running.start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def leaking(tmp_path_factory, broker):
    """The daemon, run until its leak alert is open, then acknowledged."""
    root = tmp_path_factory.mktemp("leak")
    web_port = free_port()
    hooks = http.server.HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=hooks.serve_forever, daemon=True).start()
    config = node_config(root / "node.toml", broker.port, web_port, hooks.server_port)
    data, log_path = root / "data", root / "node.log"
    proc = start_node(config, data, log_path)
    base = f"http://127.0.0.1:{web_port}"
    try:
        opened = wait_for_event(log_path, "alert_opened", timeout_s=90)
        active = get_json(f"{base}/api/v1/alerts?state=active")["alerts"]
        page = urllib.request.urlopen(f"{base}/alerts", timeout=5).read().decode()
        messages = retained(broker.port, "koprogo/leaky/alerts/#")
        acked = cli(
            "alerts",
            "ack",
            opened["alert"],
            "--note",
            "plumber called",
            "--data-dir",
            str(data),
        )
        after = get_json(f"{base}/api/v1/alerts/{opened['alert']}")
        time.sleep(2)  # the sender wakes on each change
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        hooks.shutdown()
    return {
        "opened": opened,
        "active": active,
        "page": page,
        "messages": messages,
        "acked": acked,
        "after": after,
        "data": data,
        "hooks": list(Receiver.received),
    }


def test_the_leak_is_found_within_the_documented_delay(leaking):
    """A water-leak alert opens once the rules are armed, not before the leak."""
    alert = leaking["active"][0]

    assert alert["sensor"] == "sim.water"
    assert alert["kind"] in ("sustained_flow", "night_flow", "continuous_flow")
    start_h = (alert["start_ts"] - 1_793_574_000) / 3600  # hours into the building
    assert LEAK_START_H - 3 <= start_h <= LEAK_START_H + 24
    assert alert["estimate"]["euros_per_day"] > 0
    assert "L/h" in alert["evidence"]["explanation"]


def test_no_alert_is_opened_twice_for_the_same_leak(leaking):
    """One open alert per ongoing problem."""
    water = [a for a in leaking["active"] if a["sensor"] == "sim.water"]

    assert len(water) == 1


def test_the_alert_is_on_the_page_and_on_mqtt(leaking):
    """The alerts page lists it; MQTT holds the alert's JSON, retained."""
    alert_id = leaking["opened"]["alert"]
    topic = f"koprogo/leaky/alerts/{alert_id}"

    assert f'data-alert="{alert_id}"' in leaking["page"]
    assert json.loads(leaking["messages"][topic])["id"] == alert_id


def test_ack_goes_through_the_running_daemon_into_the_ledger(leaking):
    """`alerts ack` is applied by the daemon and chained in the ledger."""
    assert leaking["acked"].returncode == 0, leaking["acked"].stderr
    assert leaking["after"]["state"] == "acknowledged"
    assert leaking["after"]["note"] == "plumber called"
    listed = cli("alerts", "list", "--json", "--data-dir", str(leaking["data"]))
    stored = {a["id"]: a for a in json.loads(listed.stdout)}
    assert stored[leaking["opened"]["alert"]]["state"] == "acknowledged"
    assert cli("ledger", "verify", "--data-dir", str(leaking["data"])).returncode == 0


def test_each_alert_change_reaches_the_webhook_signed(leaking):
    """The opening and the acknowledgement are POSTed with a valid HMAC."""
    events = []
    for signature, body in leaking["hooks"]:
        expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert signature == f"sha256={expected}"
        events.append(json.loads(body)["event"])

    assert events[0] == "alert_opened"
    assert "alert_acknowledged" in events
