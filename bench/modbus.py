"""Registers per second read over TCP loopback from a pymodbus server.

A pymodbus TCP server serves an Eastron SDM630 map (every group of its
profile). The driver's bus reads the profile's groups one request at a time,
as a poll does, and decodes each answer into values; the frame gap is 0 since
loopback TCP has no RS-485 silence to respect. Both server and client run in
this process, so the figure bounds what one Pi core can drive. Prints one
JSON object on its last line.

Usage: python bench/modbus.py [--seconds S] [--profile NAME]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import socket
import time

from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from koprogo_node.drivers import modbus_profile
from koprogo_node.drivers.modbus import ModbusBus
from koprogo_node.drivers.modbus_profile import ModbusProfile, decode_group


def device(profile: ModbusProfile) -> SimDevice:
    """A device serving the profile's groups, each register holding its index."""
    blocks = [
        SimData(
            g.start,
            values=list(range(g.start, g.start + g.count)),
            datatype=DataType.REGISTERS,
        )
        for g in profile.groups
    ]
    bits = [SimData(0, values=[False] * 16, datatype=DataType.BITS)]
    spare = [SimData(0x7000, values=[0], datatype=DataType.REGISTERS)]
    if profile.function == "input":
        return SimDevice(id=1, simdata=(bits, bits, spare, blocks))
    return SimDevice(id=1, simdata=(bits, bits, blocks, spare))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def measure(profile: ModbusProfile, seconds: float) -> dict[str, object]:
    """Poll the profile's groups for `seconds`; counts per second."""
    port = free_port()
    server = ModbusTcpServer([device(profile)], address=("127.0.0.1", port))
    await server.serve_forever(background=True)
    bus = ModbusBus.connect_to("tcp", f"127.0.0.1:{port}", frame_gap_ms=0)
    await bus.open()
    requests = registers = values = 0
    started = time.perf_counter()
    try:
        while time.perf_counter() - started < seconds:
            for group in profile.groups:
                words = await bus.read(profile.function, group.start, group.count, 1)
                values += len(decode_group(group, words, profile.word_order))
                requests += 1
                registers += group.count
    finally:
        elapsed = time.perf_counter() - started
        bus.close()
        await server.shutdown()
    return {
        "bench": "modbus_tcp_loopback",
        "profile": profile.name,
        "seconds": round(elapsed, 2),
        "requests_per_s": round(requests / elapsed, 1),
        "registers_per_s": round(registers / elapsed),
        "values_per_s": round(values / elapsed),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--profile", default="eastron-sdm630")
    args = parser.parse_args()
    # pymodbus logs every frame at debug; keep the bench about the wire.
    logging.getLogger("pymodbus").setLevel(logging.WARNING)
    profile = modbus_profile.load(args.profile)
    print(json.dumps(asyncio.run(measure(profile, args.seconds))))


if __name__ == "__main__":
    main()
