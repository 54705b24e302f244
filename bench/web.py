"""Benchmark the dashboard: requests per second and latency under 50 clients.

Starts a real `koprogo-node run` (a simulated 12-flat building feeding the
ledger while the load runs), then for each target sends requests from 50
concurrent clients (aiohttp, one connection each) for a fixed time:
`/api/v1/status` with an API token, and the overview page `/` plus its script
and style with a logged-in session. The load generator shares the machine's
two cores with the daemon, so the figures are a floor for the node alone.
Prints figures, then one JSON line. Run: ``python bench/web.py [--seconds S]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

CLIENTS = 50
TARGET_P99_MS = 50.0
ADMIN = {"username": "bench", "password": "a bench-only secret"}
CONFIG = """
[time]
trust = "always"
[log]
format = "json"
[web]
port = {port}
[[sources]]
type = "simulated"
name = "sim"
lots = 12
speed = 600.0
step_s = 10.0
emit = "readings"
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_node(tmp: Path) -> tuple[subprocess.Popen, str, Path]:
    port = free_port()
    config = tmp / "node.toml"
    config.write_text(CONFIG.format(port=port))
    log = tmp / "node.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "koprogo_node.cli", "run", "--config", str(config)]
        + ["--data-dir", str(tmp / "data")],
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
    )
    deadline = time.monotonic() + 60
    while "web_listening" not in log.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the node did not start:\n{log.read_text()[-2000:]}")
        time.sleep(0.1)
    return proc, f"http://127.0.0.1:{port}", log


async def first_admin(base: str, log: Path) -> dict[str, str]:
    """Create the admin with the printed setup code; return a browser's headers."""
    code = re.search(r"One-time setup code: (\S+)", log.read_text()).group(1)
    # unsafe=True: aiohttp otherwise keeps no cookie set by an IP address.
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as session:
        async with session.post(f"{base}/api/v1/setup", json={"code": code, **ADMIN}):
            pass
    return {
        "Cookie": "; ".join(f"{c.key}={c.value}" for c in jar),
        "Accept": "text/html",
    }


async def load(base: str, paths: list[str], seconds: float, **session_args) -> dict:
    """Latencies of `paths` (requested in turn) from CLIENTS clients."""
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal errors
        connector = aiohttp.TCPConnector(limit=1)
        async with aiohttp.ClientSession(connector=connector, **session_args) as http:
            turn = 0
            while time.perf_counter() < stop_at:
                path = paths[turn % len(paths)]
                turn += 1
                started = time.perf_counter()
                async with http.get(base + path) as answer:
                    await answer.read()
                    if answer.status != 200:
                        errors += 1
                latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(CLIENTS)))
    elapsed = time.perf_counter() - started
    ms = sorted(1000 * x for x in latencies)
    return {
        "requests": len(ms),
        "errors": errors,
        "rps": round(len(ms) / elapsed, 1),
        "p50_ms": round(statistics.median(ms), 2),
        "p99_ms": round(ms[int(0.99 * (len(ms) - 1))], 2),
    }


async def run(seconds: float, tmp: Path) -> dict:
    proc, base, log = start_node(tmp)
    try:
        browser = await first_admin(base, log)
        token = (tmp / "data" / "local-api-token").read_text().strip()
        await asyncio.sleep(3)  # some readings and rollups in the ledger
        status = await load(
            base,
            ["/api/v1/status"],
            seconds,
            headers={"Authorization": f"Bearer {token}"},
        )
        page = await load(base, ["/"], seconds, headers=browser)
        page_with_files = await load(
            base, ["/", "/static/app.js", "/static/style.css"], seconds, headers=browser
        )
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return {
        "clients": CLIENTS,
        "seconds_per_target": seconds,
        "status": status,
        "overview_page": page,
        "overview_with_files": page_with_files,
        "target_p99_ms": TARGET_P99_MS,
        "status_p99_within_target": status["p99_ms"] <= TARGET_P99_MS,
        "page_p99_within_target": page["p99_ms"] <= TARGET_P99_MS,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = asyncio.run(run(args.seconds, Path(tmp)))
    for name in ("status", "overview_page", "overview_with_files"):
        figures = result[name]
        print(
            f"{name:20} {figures['rps']:8.1f} req/s  p50 {figures['p50_ms']:6.2f} ms"
            f"  p99 {figures['p99_ms']:6.2f} ms  errors {figures['errors']}"
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
