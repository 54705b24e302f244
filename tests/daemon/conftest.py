"""Start real `koprogo-node` processes on a temporary data directory."""

import json
import os
import socket
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

CLI = [sys.executable, "-m", "koprogo_node.cli"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_config(
    path: Path, *, speed=600.0, web=False, extra="", start_offset_s=0.0
) -> Path:
    """A node with a 10-lot simulated building feeding readings directly.

    Each run's simulation starts `start_offset_s` after now, so a restart can
    begin after the data an earlier, faster-than-real-time run stored.
    """
    start = datetime.fromtimestamp(time.time() + start_offset_s, timezone.utc)
    start = start.replace(microsecond=0).isoformat()
    path.write_text(f"""
[time]
trust = "always"
[ledger]
batch_ms = 200
[log]
level = "debug"
format = "json"
[web]
anonymous_read = true
enabled = {str(web).lower()}
port = {free_port()}
[[sources]]
type = "simulated"
name = "sim"
lots = 10
speed = {speed}
step_s = 10.0
start = "{start}"
emit = "readings"
{extra}
""")
    return path


def start_node(config: Path, data_dir: Path, log_path: Path, env=None):
    """Run `koprogo-node run` in the background, logging to `log_path`."""
    return subprocess.Popen(
        [*CLI, "run", "--config", str(config), "--data-dir", str(data_dir)],
        stdout=subprocess.DEVNULL,
        stderr=log_path.open("w"),
        env={**os.environ, **(env or {})},
    )


def log_events(log_path: Path, event: str) -> list[dict]:
    """Every JSON log line of `event`."""
    found = []
    for line in log_path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("event") == event:
            found.append(record)
    return found


def wait_for_event(
    log_path: Path, event: str, timeout_s: float = 30.0, **match
) -> dict:
    """Wait for a log line of `event` whose fields are at least `match`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = [
            e
            for e in log_events(log_path, event)
            if all(e.get(k, 0) >= v for k, v in match.items())
        ]
        if found:
            return found[0]
        time.sleep(0.05)
    raise AssertionError(f"no {event} in {log_path}: {log_path.read_text()[-2000:]}")


def cli(*args, check=False, env=None) -> subprocess.CompletedProcess:
    """Run `koprogo-node ARGS`, with extra environment variables if given."""
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        check=check,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def node_dir(tmp_path):
    data = tmp_path / "data"
    return tmp_path / "node.toml", data
