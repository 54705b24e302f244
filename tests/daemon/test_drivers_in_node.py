"""Drivers inside a real daemon: readings reach the ledger, health reaches the API."""

import asyncio
import json
import urllib.request

from koprogo_node.drivers import modbus_profile

from ..drivers.test_modbus import sim_device, tcp_server
from ..drivers.test_mqtt import publish
from ..mqtt_broker import broker_fixture  # noqa: F401 (registers "broker")
from .conftest import free_port, start_node, wait_for_event

COMMON = """
[time]
trust = "always"
[ledger]
batch_ms = 200
[web]
port = {web_port}
anonymous_read = true
[log]
format = "json"
"""


def get_json(url):
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def start(tmp_path, sources: str, web_port: int):
    """A daemon with `sources` (TOML) and a web API on `web_port`."""
    config = tmp_path / "node.toml"
    config.write_text(COMMON.format(web_port=web_port) + sources)
    log_path = tmp_path / "node.log"
    return start_node(config, tmp_path / "data", log_path), log_path


async def stored_values(web_port: int, waiting_for: str) -> dict:
    """Last stored value per sensor, once `waiting_for` has one (or 10 s)."""
    url = f"http://127.0.0.1:{web_port}/api/v1/sensors"
    for _ in range(50):
        sensors = await asyncio.to_thread(get_json, url)
        stored = {s["name"]: s["last_value"] for s in sensors["sensors"]}
        if stored.get(waiting_for) is not None:
            break
        await asyncio.sleep(0.2)
    return stored


async def test_modbus_meter_reaches_ledger_and_device_health_reaches_api(tmp_path):
    """A daemon polling an SDM630 stores its values and shows the device's health."""
    profile = modbus_profile.load("eastron-sdm630")
    modbus_port, web_port = free_port(), free_port()
    server = await tcp_server([sim_device(3, profile)], modbus_port)
    proc, log_path = start(
        tmp_path,
        f"""
[[sources]]
type = "modbus"
name = "mb"
transport = "tcp"
host = "127.0.0.1"
tcp_port = {modbus_port}
[[sources.devices]]
name = "common"
profile = "eastron-sdm630"
unit_id = 3
poll_s = 0.2
""",
        web_port,
    )
    try:
        await asyncio.to_thread(wait_for_event, log_path, "node_started")
        stored = await stored_values(web_port, "mb.common.voltage_l1")
        status = await asyncio.to_thread(
            get_json, f"http://127.0.0.1:{web_port}/api/v1/status"
        )
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        await server.shutdown()

    assert round(stored["mb.common.voltage_l1"], 1) == 230.1
    assert round(stored["mb.common.import_total"], 1) == 12345.6
    source = next(s for s in status["sources"] if s["name"] == "mb")
    device = source["devices"]["common"]
    assert (device["unit_id"], device["stale"]) == (3, False)
    assert device["good_polls"] >= 1


async def test_mqtt_device_reaches_the_ledger(tmp_path, broker):
    """A daemon subscribed to a real broker stores a Tasmota plug's values."""
    web_port = free_port()
    proc, log_path = start(
        tmp_path,
        f"""
[[sources]]
type = "mqtt"
name = "mqtt"
port = {broker.port}
[[sources.subscriptions]]
profile = "tasmota"
topic = "tele/+/SENSOR"
""",
        web_port,
    )
    payload = b'{"ENERGY":{"Total":6.294,"Power":2635,"Voltage":227,"Current":11.661}}'
    try:
        await asyncio.to_thread(wait_for_event, log_path, "mqtt_connected")
        await asyncio.to_thread(publish, broker.port, [("tele/pow1/SENSOR", payload)])
        stored = await stored_values(web_port, "mqtt.pow1.import_total")
    finally:
        proc.terminate()
        proc.wait(timeout=20)

    assert stored["mqtt.pow1.import_total"] == 6.294
    assert stored["mqtt.pow1.power_import"] == 2635
