"""Readings per second through the real ingest path, against raw executemany.

The ingest path is what the daemon runs: a source's sink puts each second's
readings of the building (one delivery, as a poll or a telegram gives them) on
the bounded queue, the single writer applies the ingest rules, builds rollups,
hashes the block and commits it with aiosqlite. The baseline inserts the same
rows with `sqlite3.executemany` into a table of the same shape, in one
transaction, with the same pragmas. Each contender runs `--rounds` times,
alternating, and its fastest run counts. Prints one JSON object on its last
line.

Usage: python bench/ingest.py [--readings N] [--sensors N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import tempfile
import time
from pathlib import Path

from koprogo_node.config.model import IngestConfig, LedgerConfig
from koprogo_node.core.clock import Clock
from koprogo_node.core.readings import Kind, Reading
from koprogo_node.daemon.sink import IngestSink
from koprogo_node.daemon.supervisor import SourceHealth
from koprogo_node.ledger.stats import IngestStats
from koprogo_node.ledger.writer import LedgerWriter
from koprogo_node.logs import configure

START_S = 1_780_012_800.0


def make_readings(count: int, sensors: int) -> list[Reading]:
    """Half counters, half gauges, one reading per sensor per second."""
    out = []
    for i in range(count):
        s = i % sensors
        second = i // sensors
        if s % 2:
            out.append(
                Reading(f"bench.s{s:03d}", START_S + second, 230.0 + s, "V", Kind.GAUGE)
            )
        else:
            out.append(
                Reading(
                    f"bench.s{s:03d}",
                    START_S + second,
                    1000.0 + second * 0.001,
                    "kWh",
                    Kind.COUNTER,
                )
            )
    return out


async def through_node(readings: list[Reading], sensors: int, data_dir: Path) -> float:
    """Seconds to commit every reading through sink, queue and writer."""
    clock = Clock(time.time, time.monotonic, lambda: True)
    stats = IngestStats()
    writer = LedgerWriter(data_dir, LedgerConfig(), clock, "bench", stats)
    await writer.open()
    queue: asyncio.Queue = asyncio.Queue(IngestConfig().queue_size)
    sink = IngestSink(queue, stats, SourceHealth("bench"), {})
    started = time.perf_counter()
    task = asyncio.create_task(writer.run(queue))
    for tick in range(0, len(readings), sensors):  # one delivery per second
        await sink.put_many(readings[tick : tick + sensors])
    await queue.put(None)
    await task
    elapsed = time.perf_counter() - started
    await writer.close()
    if stats.committed_total != len(readings):
        raise SystemExit(f"committed {stats.committed_total} of {len(readings)}")
    return elapsed


def raw_executemany(readings: list[Reading], data_dir: Path) -> float:
    """Seconds to insert the same rows with plain sqlite3.executemany.

    The rows are the tuples the ledger stores (id, sensor, stamp, value,
    delta, quality, boot, monotonic stamp), built before the clock starts.
    """
    conn = sqlite3.connect(data_dir / "raw.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute(
        "CREATE TABLE readings (id INTEGER PRIMARY KEY, block INTEGER, sensor"
        " INTEGER, ts_ms INTEGER, value REAL, delta REAL, quality INTEGER,"
        " boot INTEGER, mono_ms INTEGER)"
    )
    ids: dict[str, int] = {}
    rows = [
        (
            i + 1,
            ids.setdefault(r.sensor, len(ids) + 1),
            round(r.ts * 1000),
            r.value,
            0.0 if r.kind is Kind.COUNTER else None,
            0,
            None,
            None,
        )
        for i, r in enumerate(readings)
    ]
    started = time.perf_counter()
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO readings (id, sensor, ts_ms, value, delta, quality, boot,"
        " mono_ms, block) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1)",
        rows,
    )
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


def best_of(rounds: int, readings: list[Reading], sensors: int) -> tuple[float, float]:
    """Fastest time of each contender over alternating rounds (noise is one-sided)."""
    node_times, raw_times = [], []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as tmp:
            node_times.append(asyncio.run(through_node(readings, sensors, Path(tmp))))
            raw_times.append(raw_executemany(readings, Path(tmp)))
    return min(node_times), min(raw_times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=200_000)
    parser.add_argument("--sensors", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    configure("warning", "console")
    readings = make_readings(args.readings, args.sensors)
    node_s, raw_s = best_of(args.rounds, readings, args.sensors)
    node_rate = len(readings) / node_s
    raw_rate = len(readings) / raw_s
    print(
        f"ingest path: {node_rate:,.0f} readings/s; raw executemany:"
        f" {raw_rate:,.0f} readings/s"
    )
    print(
        json.dumps(
            {
                "readings": len(readings),
                "sensors": args.sensors,
                "rounds": args.rounds,
                "node_readings_per_s": round(node_rate),
                "raw_executemany_readings_per_s": round(raw_rate),
                "ratio_node_to_raw": round(node_rate / raw_rate, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
