"""`koprogo-node demo --nodes N`: N federated buildings on this machine.

Each building is a real daemon in its own process, with its own data
directory (`DIR/node1`, `DIR/node2`, ...), its own simulated building and its
dashboard on `--port` + i. This process plays the cooperative: it keeps a
federation key in `DIR/federation`, admits every node's key on the roster and
gives each node a copy. The nodes reach each other over TLS WebSockets on
loopback, each knowing the others' addresses as its bootstrap list.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import click

from ..federation import roster
from ..federation.identity import NodeKey
from .federation_cmds import FEDERATION_KEY, ROSTER_FILE


def run_federated_demo(
    data_dir: Path,
    port: int,
    speed: float,
    lots: int,
    duration: float | None,
    nodes: int,
) -> int:
    """Start the nodes, wait for them, and return the worst exit code."""
    node_dirs = [data_dir / f"node{i + 1}" for i in range(nodes)]
    federation_key, signed = prepare_federation(data_dir / "federation", node_dirs)
    gossip_ports = _free_ports(nodes)
    children = []
    for i, node_dir in enumerate(node_dirs):
        (node_dir / ROSTER_FILE).write_bytes(signed)
        others = [f"wss://127.0.0.1:{p}" for j, p in enumerate(gossip_ports) if j != i]
        command = _child_command(
            node_dir, port + i, speed, lots, duration, i, gossip_ports[i], others
        )
        command += ["--federation-key", federation_key.public_key.hex()]
        children.append(subprocess.Popen(command))
    pages = ", ".join(f"http://127.0.0.1:{port + i}/" for i in range(nodes))
    click.echo(f"koprogo-node demo: {nodes} federated buildings: {pages}", err=True)
    return _wait(children)


def prepare_federation(folder: Path, node_dirs: list[Path]) -> tuple[NodeKey, bytes]:
    """The demo federation's key and a roster admitting every node."""
    folder.mkdir(parents=True, exist_ok=True)
    key = NodeKey.load_or_create(folder, FEDERATION_KEY)
    path = folder / ROSTER_FILE
    signed = path.read_bytes() if path.exists() else roster.empty(key, time.time())
    current = roster.read(signed, key.public_key)
    for i, node_dir in enumerate(node_dirs):
        node_dir.mkdir(parents=True, exist_ok=True)
        node = NodeKey.load_or_create(node_dir)
        if node.public_key not in current:
            name = f"Résidence Démo {i + 1}"
            signed = roster.admit(signed, key, node.peer_id, name, time.time())
            current = roster.read(signed, key.public_key)
    path.write_bytes(signed)
    return key, signed


def _child_command(
    node_dir: Path,
    port: int,
    speed: float,
    lots: int,
    duration: float | None,
    index: int,
    gossip_port: int,
    bootstrap: list[str],
) -> list[str]:
    command = [sys.executable, "-m", "koprogo_node.cli", "demo"]
    command += ["--data-dir", str(node_dir), "--port", str(port)]
    command += ["--speed", str(speed), "--lots", str(lots)]
    command += ["--member", str(index), "--gossip-port", str(gossip_port)]
    if duration is not None:
        command += ["--duration", str(duration)]
    for address in bootstrap:
        command += ["--bootstrap", address]
    return command


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _wait(children: list[subprocess.Popen]) -> int:
    def forward(signum, frame) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        codes = [child.wait() for child in children]
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return next((code for code in codes if code), 0)
