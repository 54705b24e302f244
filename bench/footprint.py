"""RSS, CPU and disk writes of `koprogo-node run` on a 50-sensor building.

Starts the real daemon with a simulated building feeding 50 channels at one
reading per channel per second (8 lots x 5 channels, water, gas and 8 extra
gauges), the default ledger settings (a commit every `batch_ms`, 30 s) and
the web server on, then samples /proc/PID over the measuring window. Prints
one JSON object on its last line.

Usage: python bench/footprint.py [--seconds 60] [--warmup 5]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from koprogo_node.config.model import LedgerConfig

CONFIG = """
[time]
trust = "always"
[web]
port = {port}
[log]
level = "info"
format = "json"
[[sources]]
type = "simulated"
name = "sim"
lots = 8
extra_gauges = 8
speed = 1.0
step_s = 1.0
emit = "readings"
start = "{start}"
"""
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def write_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    raise RuntimeError("no write_bytes in /proc/PID/io")


def rss_kb(pid: int) -> dict[str, int]:
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0])
    return found


def stored_readings(db: Path) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT count(*) FROM readings").fetchone()[0]
    finally:
        conn.close()


def checkpoint_bytes(db: Path) -> int:
    """Bytes this process writes to copy the WAL into the database file.

    The daemon checkpoints only every 4,000 pages, which a 60-second window
    does not reach; doing it here, measured on our own /proc/self/io, counts
    what the window's readings will cost the card when the daemon does.
    """
    before = write_bytes(os.getpid())
    conn = sqlite3.connect(db)
    try:
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
    finally:
        conn.close()
    return write_bytes(os.getpid()) - before


def wait_started(log: Path, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if '"node_started"' in log.read_text(errors="replace"):
            return
        time.sleep(0.1)
    raise SystemExit(f"daemon did not start: {log.read_text()[-2000:]}")


def measure(seconds: float, warmup: float, tmp: Path) -> dict:
    start = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    config = tmp / "node.toml"
    config.write_text(CONFIG.format(port=free_port(), start=start))
    log = tmp / "node.log"
    data = tmp / "data"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "koprogo_node.cli",
            "run",
            "--config",
            str(config),
            "--data-dir",
            str(data),
        ],
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
    )
    try:
        wait_started(log)
        time.sleep(warmup)
        db = data / "ledger.db"
        readings0, cpu0, io0 = (
            stored_readings(db),
            cpu_s(proc.pid),
            write_bytes(proc.pid),
        )
        t0 = time.monotonic()
        peak_rss = 0
        while time.monotonic() - t0 < seconds:
            time.sleep(1)
            peak_rss = max(peak_rss, rss_kb(proc.pid)["VmRSS"])
        elapsed = time.monotonic() - t0
        cpu1, io1 = cpu_s(proc.pid), write_bytes(proc.pid)
        memory = rss_kb(proc.pid)
        readings1 = stored_readings(db)
        checkpoint = checkpoint_bytes(db)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    stored = readings1 - readings0
    return {
        "sensors": 50,
        "window_s": round(elapsed, 1),
        "readings_stored": stored,
        "readings_per_s": round(stored / elapsed, 1),
        "rss_mb": round(memory["VmRSS"] / 1024, 1),
        "rss_peak_mb": round(max(memory["VmHWM"], peak_rss) / 1024, 1),
        "cpu_percent_of_one_core": round(100 * (cpu1 - cpu0) / elapsed, 2),
        "disk_bytes_written": io1 - io0,
        "disk_bytes_per_reading": round((io1 - io0) / max(stored, 1), 1),
        "checkpoint_bytes_per_reading": round(checkpoint / max(stored, 1), 1),
        "disk_bytes_per_reading_with_checkpoint": round(
            (io1 - io0 + checkpoint) / max(stored, 1), 1
        ),
        "commit_interval_ms": LedgerConfig().batch_ms,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        figures = measure(args.seconds, args.warmup, Path(tmp))
    print(
        f"RSS {figures['rss_mb']} MB (peak {figures['rss_peak_mb']} MB), CPU "
        f"{figures['cpu_percent_of_one_core']} % of a core, "
        f"{figures['disk_bytes_per_reading']} B written per reading"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
