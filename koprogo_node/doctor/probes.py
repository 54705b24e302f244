"""Small, bounded probes of what the node depends on: broker, peers, systemd."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

from ..config.model import MqttSource
from ..drivers.mqtt import broker_client

PROBE_TIMEOUT_S = 3.0
UNIT = "koprogo-node.service"


def mqtt_connect(source: MqttSource, timeout_s: float = PROBE_TIMEOUT_S) -> str | None:
    """Log in to the source's broker as the node would; None if accepted.

    Returns why it failed otherwise (unreachable, refused, no answer).
    """
    answer: dict = {}
    client = broker_client(source, f"koprogo-doctor-{os.getpid()}")
    client.on_connect = lambda c, u, f, code, p: answer.setdefault("code", code)
    try:
        client.connect(source.host, source.port, keepalive=10)
    except (OSError, ValueError) as exc:
        return f"cannot reach {source.host}:{source.port}: {exc}"
    try:
        deadline = time.monotonic() + timeout_s
        while "code" not in answer and time.monotonic() < deadline:
            client.loop(timeout=0.1)
    finally:
        client.disconnect()
    if "code" not in answer:
        return f"{source.host}:{source.port} did not answer within {timeout_s:g} s"
    code = answer["code"]
    return f"the broker refused us: {code}" if code.is_failure else None


def tcp_reachable(url: str, timeout_s: float = PROBE_TIMEOUT_S) -> str | None:
    """Open a TCP connection to a wss://host:port address; None if it opens."""
    parts = urlsplit(url)
    try:
        port = parts.port or 443
        with socket.create_connection((parts.hostname, port), timeout=timeout_s):
            return None
    except (OSError, ValueError, TypeError) as exc:
        return f"{url}: {exc}"


def systemd_running() -> bool:
    """Whether this machine was booted with systemd (not true in containers)."""
    return (
        Path("/run/systemd/system").is_dir() and shutil.which("systemctl") is not None
    )


def unit_properties(unit: str = UNIT) -> dict[str, str]:
    """`systemctl show` of the unit as a dict (empty if systemctl fails)."""
    try:
        done = subprocess.run(
            [
                "systemctl",
                "show",
                unit,
                "--property=LoadState,ActiveState,SubState,Result,NRestarts",
            ],
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT_S,
        )
    except (OSError, subprocess.TimeoutExpired):
        return {}
    return parse_properties(done.stdout)


def parse_properties(text: str) -> dict[str, str]:
    """KEY=value lines into a dict."""
    pairs = (line.partition("=") for line in text.splitlines() if "=" in line)
    return {key: value for key, _, value in pairs}
