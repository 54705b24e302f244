"""Telegrams per second through the node's serial path and through dsmr_parser.

Our path: Belgian telegrams written into one end of a socat pseudo-terminal
pair, read by P1Reader (pyserial in a worker thread, framing, CRC, parsing,
mapping) into a counting sink. The baseline: dsmr_parser's TelegramParser on
the same telegrams as strings, in a loop, no I/O. Both in the same run; one
JSON object on the last line.

Usage: python bench/p1.py [--telegrams N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

from dsmr_parser import telegram_specifications
from dsmr_parser.parsers import TelegramParser

from koprogo_node.config.model import P1Source
from koprogo_node.core.clock import Clock
from koprogo_node.drivers.p1_reader import P1Reader
from koprogo_node.logs import configure
from koprogo_node.sim import Building, BuildingSpec, building_frames, encode_telegram

# Telegrams stamped around now: a meter clock far off would be restamped.
START_S = float(int(time.time()) // 60 * 60)


def make_telegrams(count: int) -> list[bytes]:
    """Distinct Belgian telegrams of one flat, a second apart."""
    building = Building(BuildingSpec(lots=1, seed=7, start_ts=START_S))
    out = []
    for i in range(count):
        frames = building_frames(building.advance(START_S + i), 7, "gas")
        out.append(encode_telegram(next(iter(frames.values()))))
    return out


class CountingSink:
    def __init__(self) -> None:
        self.readings = 0

    async def put(self, reading) -> None:
        self.readings += 1

    async def put_many(self, readings) -> None:
        self.readings += len(readings)

    def reject(self, reject) -> None:
        raise SystemExit(f"unexpected reject: {reject}")


async def through_serial(telegrams: list[bytes], tmp: Path) -> float:
    """Seconds from the first byte written to the last telegram decoded."""
    meter, node = tmp / "meter", tmp / "node"
    socat = subprocess.Popen(
        ["socat", f"pty,raw,echo=0,link={meter}", f"pty,raw,echo=0,link={node}"],
        stderr=subprocess.DEVNULL,
    )
    try:
        while not (meter.exists() and node.exists()):
            await asyncio.sleep(0.01)
        reader = P1Reader(P1Source(path=str(node), interval_s=0))
        sink = CountingSink()
        clock = Clock(time.time, time.monotonic, lambda: True)
        task = asyncio.create_task(reader.run(sink, clock))
        while not reader.port_open:
            await asyncio.sleep(0.01)
        started = time.perf_counter()
        writer = asyncio.create_task(asyncio.to_thread(_write_all, meter, telegrams))
        while reader.decoder.telegrams < len(telegrams):
            await asyncio.sleep(0.005)
        elapsed = time.perf_counter() - started
        await writer
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return elapsed
    finally:
        socat.terminate()
        socat.wait()


def _write_all(path: Path, telegrams: list[bytes]) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        for telegram in telegrams:
            view = memoryview(telegram)
            while view:
                view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def parser_alone(telegrams: list[bytes]) -> float:
    """Seconds for dsmr_parser to parse every telegram (with its CRC check)."""
    parser = TelegramParser(telegram_specifications.BELGIUM_FLUVIUS)
    texts = [t.decode("latin-1") for t in telegrams]
    started = time.perf_counter()
    for text in texts:
        parser.parse(text)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--telegrams", type=int, default=2000)
    args = parser.parse_args()
    configure("warning", "console")
    telegrams = make_telegrams(args.telegrams)
    with tempfile.TemporaryDirectory() as tmp:
        serial_s = asyncio.run(through_serial(telegrams, Path(tmp)))
    parse_s = parser_alone(telegrams)
    ours, theirs = len(telegrams) / serial_s, len(telegrams) / parse_s
    print(f"serial path: {ours:,.0f} telegrams/s; dsmr_parser alone: {theirs:,.0f}/s")
    print(
        json.dumps(
            {
                "telegrams": len(telegrams),
                "serial_path_telegrams_per_s": round(ours),
                "dsmr_parser_alone_telegrams_per_s": round(theirs),
                "ratio_serial_to_parser": round(ours / theirs, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
