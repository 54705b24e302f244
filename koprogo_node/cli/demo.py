"""`koprogo-node demo`: a whole node on a simulated building and real data.

The building's meters write real P1 telegrams (with CRC) to pseudo-terminals
that the node reads with its P1 driver, and a real NAB series is replayed
beside them. The node runs on the simulation's clock (`--speed` simulated
seconds per real second), so stamps, commit times and the dashboard's "today"
agree. Running the demo again on the same directory continues after the data
already stored.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sqlite3
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path

import click
import tomli_w

from ..config import plain_data
from ..config.model import (
    AlertsConfig,
    BuildingConfig,
    Config,
    CsvSource,
    FederationConfig,
    LedgerConfig,
    LogConfig,
    NodeConfig,
    SimulatedSource,
    TimeConfig,
    WebConfig,
)
from ..core.clock import Clock
from ..logs import configure
from ..sim import BRUSSELS

REPLAY_FILE = "machine_temperature_system_failure.csv"
DEMO_FILE = "demo.json"
DEMO_CONFIG = "demo.toml"
STEP_S = 60.0
DEMO_ADMIN = "demo"


@dataclass(frozen=True)
class Member:
    """This demo node's place in a federated demo (see demo_federation.py)."""

    index: int
    gossip_port: int
    federation_key: str
    bootstrap: tuple[str, ...]


def demo_config(
    data_dir: Path, port: int, speed: float, lots: int, member: Member | None = None
) -> Config:
    """The demo node: simulated building over P1, plus a NAB replay."""
    replay = resources.files("koprogo_node.sim") / "data" / REPLAY_FILE
    start, resume = _timeline(data_dir)
    index = member.index if member else 0
    suffix = f"-{index + 1}" if member else ""
    return Config(
        node=NodeConfig(
            building_id=f"demo-residence{suffix}",
            name=f"Résidence Démo{suffix.replace('-', ' ')} (simulated building)",
        ),
        building=BuildingConfig(
            lots=lots,
            floor_area_m2=78.0 * lots,
            construction_year=1965 + 10 * index,
            postcode=("1050", "1180", "1030", "2000", "9000")[index % 5],
            heating="gas",
        ),
        federation=_federation(member),
        # One simulated day of history arms the water rules, so the leak
        # (from hour 30) raises its alert after about 72 simulated hours.
        alerts=AlertsConfig(check_every_s=2.0, water_min_history_days=1),
        time=TimeConfig(trust="always"),
        ledger=LedgerConfig(batch_ms=1000),
        web=WebConfig(host="127.0.0.1", port=port, anonymous_read=True),
        log=LogConfig(level="info", format="auto"),
        sources=(
            SimulatedSource(
                name="sim",
                lots=lots,
                seed=1 + index,
                speed=speed,
                step_s=STEP_S,
                start=start.isoformat(),
                resume=resume.isoformat(),
                emit="p1",
                water_leak_l_per_h=40.0,
                water_leak_start_h=30.0,
            ),
            CsvSource(
                name="replay",
                path=str(replay),
                sensor="machine_temperature",
                unit="degF",
                kind="gauge",
                speed=speed,
                rebase=True,
                loop=True,
            ),
        ),
    )


def _write_config(data_dir: Path, cfg: Config) -> Path:
    """Keep the demo's configuration where the CLI finds it (see node.json)."""
    path = data_dir / DEMO_CONFIG
    data_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "# Written by `koprogo-node demo` at each start; edits are overwritten.\n"
        + tomli_w.dumps(plain_data(cfg))
    )
    return path


def demo_admin(data_dir: Path) -> str:
    """Give the demo an admin `demo` with a fresh password; return it."""
    from ..web.auth import PasswordHasher
    from ..web.auth.users import Role, UserStore

    data_dir.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(12)
    users = UserStore(data_dir)
    digest = PasswordHasher().hash_sync(password)
    if users.get(DEMO_ADMIN) is None:
        users.add(DEMO_ADMIN, Role.ADMIN, digest)
    else:
        users.set_password_hash(DEMO_ADMIN, digest)
    return password


def _federation(member: Member | None) -> FederationConfig:
    if member is None:
        return FederationConfig()
    return FederationConfig(
        enabled=True,
        host="127.0.0.1",
        port=member.gossip_port,
        bootstrap=member.bootstrap,
        lan_discovery=False,  # demo nodes know each other; stay off the LAN
        federation_key=member.federation_key,
    )


def _timeline(data_dir: Path) -> tuple[datetime, datetime]:
    """When the simulated building starts, and when this run starts emitting.

    A first run starts yesterday 00:00 in Brussels. A later run on the same
    directory keeps that start (so meter registers continue) and resumes
    just after the data already stored.
    """
    saved = data_dir / DEMO_FILE
    try:
        start = datetime.fromisoformat(json.loads(saved.read_text())["start"])
    except (OSError, ValueError, KeyError, TypeError):
        now = datetime.now(BRUSSELS)
        start = (now - timedelta(days=1)).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
    last_ms = _stored_data_time_ms(data_dir / "ledger.db")
    if last_ms is None:
        return start, start
    resume = datetime.fromtimestamp(last_ms / 1000 + STEP_S, BRUSSELS)
    return start, max(start, resume.replace(second=0, microsecond=0))


def _remember_start(data_dir: Path, start: datetime) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / DEMO_FILE).write_text(json.dumps({"start": start.isoformat()}))


def _stored_data_time_ms(db_path: Path) -> int | None:
    if not db_path.is_file():
        return None
    try:
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        try:
            return conn.execute("SELECT max(last_ts_ms) FROM sensor_state").fetchone()[
                0
            ]
        finally:
            conn.close()
    except sqlite3.Error:
        return None


def simulation_clock(start_ts: float, speed: float) -> Clock:
    """A trusted clock that runs `speed` times faster than real time."""
    origin = time.monotonic()
    return Clock(
        wall=lambda: start_ts + (time.monotonic() - origin) * speed,
        mono=time.monotonic,
        is_synchronised=lambda: True,
    )


def run_demo(
    data_dir: Path,
    port: int,
    speed: float,
    lots: int,
    duration: float | None,
    member: Member | None = None,
) -> None:
    """Run the demo node and print where to look."""
    cfg = demo_config(data_dir, port, speed, lots, member)
    configure(cfg.log.level, cfg.log.format)
    from ..daemon.node import Node

    building = cfg.sources[0]
    _remember_start(data_dir, datetime.fromisoformat(building.start))
    resume = datetime.fromisoformat(building.resume)
    node = Node(
        cfg,
        data_dir,
        clock=simulation_clock(resume.timestamp(), speed),
        config_path=_write_config(data_dir, cfg),
    )
    password = demo_admin(data_dir)
    click.echo(
        f"koprogo-node demo: {lots} lots on P1, simulated from"
        f" {resume:%Y-%m-%d %H:%M} at {speed:g}x; dashboard http://127.0.0.1:{port}/"
        f" ; ledger in {data_dir}/; dashboard admin: demo / {password}",
        err=True,
    )
    asyncio.run(node.run(duration))
    click.echo(
        f"demo stopped: {node.stats.committed_total} readings committed in"
        f" {node.writer.height} blocks; check them with:"
        f" koprogo-node ledger verify --data-dir {data_dir}",
        err=True,
    )
