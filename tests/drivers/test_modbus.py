"""ModbusPoller and scan against pymodbus's own servers (TCP and RTU)."""

from __future__ import annotations

import asyncio
import shutil
import socket
import time
from collections.abc import Awaitable, Callable

import pytest
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice
from structlog.testing import capture_logs

from koprogo_node.config.model import ModbusDevice, ModbusSource
from koprogo_node.core.clock import Clock
from koprogo_node.drivers import modbus_profile
from koprogo_node.drivers.modbus import ModbusPoller, scan
from koprogo_node.drivers.modbus_profile import ModbusProfile, encode_reading
from koprogo_node.errors import SensorUnavailable
from tests.fakes import FakeSink

WALL_TS = 1_700_000_000.0
# Engineering values served for every channel a profile has.
VALUES = {
    "voltage_l1": 230.1,
    "voltage_l2": 231.2,
    "voltage_l3": 229.8,
    "current_l1": 5.25,
    "current_l2": 1.5,
    "current_l3": 0.75,
    "power_l1": 1.2,
    "power_l2": -0.35,
    "power_l3": 0.8,
    "power": 1.65,
    "frequency": 50.0,
    "import_total": 12345.6,
    "export_total": 789.1,
    "voltage_l1_l2": 398.5,
    "voltage_l2_l3": 400.2,
    "voltage_l3_l1": 399.1,
}
PROFILES = [p.name for p in modbus_profile.load_all()]


def clock() -> Clock:
    """A trusted clock frozen on the wall, real on the monotonic side."""
    return Clock(lambda: WALL_TS, time.monotonic, lambda: True)


def free_port() -> int:
    """A TCP port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def sim_device(
    unit_id: int, profile: ModbusProfile, raw: dict[str, list[int]] | None = None
) -> SimDevice:
    """A device serving the profile's groups, VALUES encoded, `raw` overriding."""
    raw = raw or {}
    registers: dict[int, int] = {}
    for group in profile.groups:
        registers.update(
            dict.fromkeys(range(group.start, group.start + group.count), 0)
        )
    for ch in profile.channels:
        words = raw.get(ch.name) or encode_reading(
            VALUES[ch.name], ch, profile.word_order
        )
        registers.update(zip(range(ch.address, ch.address + ch.words), words))
    blocks = [
        SimData(
            g.start,
            values=[registers[a] for a in range(g.start, g.start + g.count)],
            datatype=DataType.REGISTERS,
        )
        for g in profile.groups
    ]
    bits = [SimData(0, values=[False] * 16, datatype=DataType.BITS)]
    spare = [SimData(0x7000, values=[0], datatype=DataType.REGISTERS)]
    if profile.function == "input":
        return SimDevice(id=unit_id, simdata=(bits, bits, spare, blocks))
    return SimDevice(id=unit_id, simdata=(bits, bits, blocks, spare))


def silent_for_others(devices: list[SimDevice], unit_at: int) -> Callable:
    """A server hook dropping answers to unit ids not served, as on a real bus.

    The server would otherwise answer them with an exception; `unit_at` is the
    unit id's offset in a frame (0 for RTU, 6 for TCP).
    """
    served = {d.id for d in devices}

    def trace(sending: bool, packet: bytes) -> bytes:
        if sending and len(packet) > unit_at and packet[unit_at] not in served:
            return b""
        return packet

    return trace


async def tcp_server(devices: list[SimDevice], port: int) -> ModbusTcpServer:
    """Start a TCP server in the background; silent for unknown unit ids."""
    server = ModbusTcpServer(
        devices,
        address=("127.0.0.1", port),
        trace_packet=silent_for_others(devices, unit_at=6),
    )
    await server.serve_forever(background=True)
    return server


def tcp_source(port: int, *devices: ModbusDevice, stale_after_s=60.0) -> ModbusSource:
    """A TCP source with short timeouts."""
    return ModbusSource(
        name="mb",
        transport="tcp",
        host="127.0.0.1",
        tcp_port=port,
        timeout_s=0.2,
        frame_gap_ms=1,
        stale_after_s=stale_after_s,
        devices=devices,
    )


async def until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Wait until `condition()` holds, failing after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def running(poller: ModbusPoller, sink: FakeSink, body: Callable[[], Awaitable]):
    """Run `poller` while `body` runs, then cancel it."""
    task = asyncio.create_task(poller.run(sink, clock()))
    try:
        await body()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def latest(sink: FakeSink) -> dict[str, float]:
    """The last value seen per sensor."""
    return {r.sensor: r.value for r in sink.readings}


def expected(profile: ModbusProfile, prefix: str) -> dict[str, float]:
    """The values a profile's device should read as."""
    return {f"{prefix}.{c.name}": VALUES[c.name] for c in profile.channels}


@pytest.mark.parametrize("name", PROFILES)
async def test_every_profile_reads_its_values_over_tcp(name):
    """Each profile's device reads back the engineering values served."""
    profile = modbus_profile.load(name)
    port = free_port()
    server = await tcp_server([sim_device(7, profile)], port)
    device = ModbusDevice(name="meter", profile=name, unit_id=7, poll_s=0.1)
    poller, sink = ModbusPoller(tcp_source(port, device)), FakeSink()
    want = expected(profile, "mb.meter")

    try:
        await running(
            poller, sink, lambda: until(lambda: want.keys() <= latest(sink).keys())
        )
    finally:
        await server.shutdown()

    got = latest(sink)
    assert got == pytest.approx(want, rel=1e-6)
    assert got["mb.meter.import_total"] == pytest.approx(12345.6, rel=1e-6)
    assert got["mb.meter.power"] == pytest.approx(1.65, rel=1e-6)
    assert sink.rejects == []
    first = sink.readings[0]
    assert (first.ts, first.clock_trusted) == (WALL_TS, True)


async def test_counter_and_gauge_kinds_and_units_come_from_the_profile():
    """An SDM630's energy is a kWh counter, its power a kW gauge."""
    profile = modbus_profile.load("eastron-sdm630")
    port = free_port()
    server = await tcp_server([sim_device(1, profile)], port)
    device = ModbusDevice(name="sdm", profile="eastron-sdm630", unit_id=1, poll_s=0.1)
    poller, sink = ModbusPoller(tcp_source(port, device)), FakeSink()

    try:
        await running(poller, sink, lambda: until(lambda: len(sink.readings) >= 16))
    finally:
        await server.shutdown()

    by_sensor = {r.sensor: r for r in sink.readings}
    energy, power = by_sensor["mb.sdm.import_total"], by_sensor["mb.sdm.power_l2"]
    assert (energy.kind.value, energy.unit) == ("counter", "kWh")
    assert (power.kind.value, power.unit, power.value) == (
        "gauge",
        "kW",
        pytest.approx(-0.35),
    )


async def test_not_available_and_nan_are_rejected_not_stored():
    """ABB's 0xFFFFFFFF/0x7FFFFFFF and an Eastron NaN become rejects."""
    abb, sdm = modbus_profile.load("abb-b23"), modbus_profile.load("eastron-sdm630")
    port = free_port()
    server = await tcp_server(
        [
            sim_device(
                1, abb, {"voltage_l2": [0xFFFF, 0xFFFF], "power_l3": [0x7FFF, 0xFFFF]}
            ),
            sim_device(2, sdm, {"frequency": [0x7FC0, 0x0000]}),
        ],
        port,
    )
    devices = (
        ModbusDevice(name="abb", profile="abb-b23", unit_id=1, poll_s=0.1),
        ModbusDevice(name="sdm", profile="eastron-sdm630", unit_id=2, poll_s=0.1),
    )
    poller, sink = ModbusPoller(tcp_source(port, *devices)), FakeSink()

    try:
        await running(poller, sink, lambda: until(lambda: len(sink.rejects) >= 3))
    finally:
        await server.shutdown()

    reasons = {(r.sensor, r.reason) for r in sink.rejects}
    assert reasons == {
        ("mb.abb.voltage_l2", "not_available"),
        ("mb.abb.power_l3", "not_available"),
        ("mb.sdm.frequency", "not_a_number"),
    }
    stored = latest(sink)
    assert "mb.abb.voltage_l2" not in stored and "mb.sdm.frequency" not in stored
    assert stored["mb.abb.voltage_l1"] == pytest.approx(230.1)
    assert poller.devices_health["abb"].errors["not_available"] >= 2


async def test_silent_server_makes_device_stale_and_it_recovers_alone():
    """Stopping the server marks the device stale once; restarting brings it back."""
    profile = modbus_profile.load("eastron-sdm120")
    port = free_port()
    server = await tcp_server([sim_device(1, profile)], port)
    device = ModbusDevice(name="sdm", profile="eastron-sdm120", unit_id=1, poll_s=0.1)
    poller = ModbusPoller(tcp_source(port, device, stale_after_s=1.0))
    sink = FakeSink()
    health = poller.devices_health["sdm"]

    async def outage() -> None:
        nonlocal server
        await until(lambda: health.good_polls >= 1)
        await server.shutdown()
        await until(lambda: health.stale, timeout_s=4)
        before = len(sink.readings)
        server = await tcp_server([sim_device(1, profile)], port)
        await until(lambda: not health.stale and len(sink.readings) > before, 6)

    with capture_logs() as logs:
        try:
            await running(poller, sink, outage)
        finally:
            await server.shutdown()

    events = [e["event"] for e in logs]
    assert events.count("modbus_device_stale") == 1
    assert events.count("modbus_device_back") == 1
    assert health.errors["no_answer"] >= 2
    assert health.last_good_ts == WALL_TS


async def test_rtu_bus_reads_sdm630_while_an_absent_device_goes_stale(tmp_path):
    """Over a serial pair, a silent unit 2 does not stop unit 1's readings."""
    if shutil.which("socat") is None:
        pytest.skip("socat is not installed")
    server_end, client_end = tmp_path / "a", tmp_path / "b"
    socat = await asyncio.create_subprocess_exec(
        "socat",
        f"pty,raw,echo=0,link={server_end}",
        f"pty,raw,echo=0,link={client_end}",
        stderr=asyncio.subprocess.DEVNULL,
    )
    profile = modbus_profile.load("eastron-sdm630")
    try:
        await until(lambda: server_end.exists() and client_end.exists())
        devices = [sim_device(1, profile)]
        server = ModbusSerialServer(
            devices,
            port=str(server_end),
            baudrate=9600,
            trace_packet=silent_for_others(devices, unit_at=0),
        )
        await server.serve_forever(background=True)
        source = ModbusSource(
            name="bus",
            transport="rtu",
            port=str(client_end),
            baudrate=9600,
            timeout_s=0.2,
            stale_after_s=1.0,
            devices=(
                ModbusDevice(
                    name="sdm", profile="eastron-sdm630", unit_id=1, poll_s=0.1
                ),
                ModbusDevice(
                    name="gone", profile="eastron-sdm120", unit_id=2, poll_s=0.1
                ),
            ),
        )
        poller, sink = ModbusPoller(source), FakeSink()
        gone = poller.devices_health["gone"]
        want = expected(profile, "bus.sdm")

        async def body() -> None:
            await until(lambda: gone.stale, timeout_s=5)
            await until(lambda: want.keys() <= latest(sink).keys())

        try:
            await running(poller, sink, body)
        finally:
            await server.shutdown()
    finally:
        socat.terminate()
        await socat.wait()

    assert latest(sink) == pytest.approx(want, rel=1e-6)
    assert latest(sink)["bus.sdm.voltage_l1"] == pytest.approx(230.1, rel=1e-6)
    assert poller.devices_health["sdm"].stale is False
    assert gone.good_polls == 0 and gone.errors["no_answer"] >= 1


async def test_unopenable_bus_raises_sensor_unavailable(tmp_path):
    """No listener at the address: run() raises for the supervisor."""
    device = ModbusDevice(name="m", profile="eastron-sdm120")
    tcp = ModbusPoller(tcp_source(free_port(), device))
    rtu = ModbusPoller(
        ModbusSource(
            transport="rtu", port=str(tmp_path / "no-such-tty"), devices=(device,)
        )
    )

    with pytest.raises(SensorUnavailable, match="cannot open Modbus bus"):
        await tcp.run(FakeSink(), clock())
    with pytest.raises(SensorUnavailable, match="no-such-tty"):
        await rtu.run(FakeSink(), clock())


async def test_scan_lists_answering_units_and_their_models():
    """Five meters on one gateway are found and told apart where maps differ."""
    load = modbus_profile.load
    port = free_port()
    server = await tcp_server(
        [
            sim_device(1, load("eastron-sdm630")),
            sim_device(2, load("eastron-sdm120")),
            sim_device(3, load("abb-b23")),
            sim_device(4, load("abb-b23"), {"voltage_l2": [0xFFFF, 0xFFFF]}),
            sim_device(5, load("carlo-gavazzi-em24")),
        ],
        port,
    )

    try:
        found = await scan("tcp", f"127.0.0.1:{port}", range(1, 7), timeout_s=0.2)
    finally:
        await server.shutdown()

    assert [(f["unit_id"], f["models"]) for f in found] == [
        (1, ["eastron-sdm630"]),
        (2, ["eastron-sdm120"]),
        (3, ["abb-b23", "abb-b24"]),
        (4, ["abb-b21"]),
        (5, ["carlo-gavazzi-em24"]),
    ]
    assert found[0]["also_matches"] == ["eastron-sdm120"]
