"""Every check `koprogo-node doctor` runs, in the order a technician reads them.

Each check takes the `Situation` (what was found before any check ran) and
returns findings; none raises for a problem it was written to find.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..config.model import Config, MqttSource
from ..daemon.systime import kernel_clock_synchronised
from ..detect.models import list_models
from ..errors import ConfigError, KoprogoError
from ..ledger import query
from ..ledger.verify import verify
from . import probes, wear
from .result import Finding, fail, ok, skip, warn

# Free space on the data directory's filesystem: FAIL / WARN below these.
FAIL_FREE_BYTES, FAIL_FREE_SHARE = 20e6, 0.05
WARN_FREE_BYTES, WARN_FREE_SHARE = 200e6, 0.15
WARN_CARD_YEARS, FAIL_CARD_YEARS = 5.0, 1.0


@dataclass
class Situation:
    """What every check may look at, gathered once."""

    config: Config
    config_problem: str | None
    config_path: Path | None
    data_dir: Path
    db_path: Path
    pid: int | None
    live: dict | None  # the daemon's /api/v1/status, if it answered
    stale_after_s: float


def config_check(s: Situation) -> list[Finding]:
    if s.config_problem:
        return [
            fail(
                "config",
                s.config_problem,
                "fix the named key, then `koprogo-node config validate FILE`",
            )
        ]
    if s.config_path is None:
        return [
            warn(
                "config",
                "no configuration file: defaults in use, so no meter is read",
                "write /etc/koprogo-node/node.toml (see config/node.example.toml)"
                " or pass --config",
            )
        ]
    return [ok("config", f"{s.config_path} is valid")]


def daemon_check(s: Situation) -> list[Finding]:
    if s.pid is None:
        return [
            warn(
                "daemon",
                "not running: meters are not being read",
                "systemctl start koprogo-node; `journalctl -u koprogo-node -n 50`"
                " says why it stopped",
            )
        ]
    if s.live is None:
        return [
            fail(
                "daemon",
                f"running (pid {s.pid}) but not answering on its control socket",
                "systemctl restart koprogo-node",
            )
        ]
    return [
        ok("daemon", f"running (pid {s.pid}), up {s.live['node']['uptime_s']:.0f} s")
    ]


def systemd_check(s: Situation) -> list[Finding]:
    if not probes.systemd_running():
        return [skip("systemd unit", "systemd is not running on this machine")]
    return [unit_finding(probes.unit_properties())]


def unit_finding(props: dict[str, str]) -> Finding:
    """Judge `systemctl show` properties of the node's unit."""
    name = "systemd unit"
    load, active = props.get("LoadState", "?"), props.get("ActiveState", "?")
    restarts = int(props.get("NRestarts", "0") or 0)
    if load != "loaded":
        return warn(
            name, f"{probes.UNIT} is {load}", "install it: see systemd/ in the release"
        )
    if active == "failed":
        return fail(
            name,
            f"failed ({props.get('Result', '?')})",
            "journalctl -u koprogo-node -b; then systemctl restart koprogo-node",
        )
    if active != "active":
        return warn(
            name,
            f"{active} ({props.get('SubState', '?')})",
            "systemctl start koprogo-node",
        )
    if restarts > 3:
        return warn(
            name,
            f"active, but restarted {restarts} times",
            "journalctl -u koprogo-node -b says what keeps failing",
        )
    return ok(name, f"active ({props.get('SubState', '?')})")


def clock_check(s: Situation) -> list[Finding]:
    if kernel_clock_synchronised():
        return [ok("clock", "synchronised")]
    trusted = (s.live or {}).get("node", {}).get("clock_trusted")
    if trusted or s.config.time.trust == "always":
        return [
            warn(
                "clock",
                "not synchronised, trusted anyway by configuration (time.trust)",
                "timedatectl set-ntp true; check that NTP can leave the network",
            )
        ]
    return [
        fail(
            "clock",
            "not synchronised: new readings are flagged as untrusted",
            "timedatectl set-ntp true; check that NTP can leave the network",
        )
    ]


def disk_check(s: Situation) -> list[Finding]:
    unwritable = _unwritable(s.data_dir)
    if unwritable:
        return [
            fail(
                "disk space",
                unwritable,
                "look for I/O errors (`dmesg`); a card that went read-only is"
                " worn out: replace it and restore the last backup",
            )
        ]
    usage = shutil.disk_usage(s.data_dir)
    share = usage.free / usage.total if usage.total else 0.0
    detail = (
        f"{usage.free / 1e6:.1f} MB free of {usage.total / 1e6:.0f} MB"
        f" ({share:.0%} free)"
    )
    fix = (
        "free space on that filesystem, or move old backups off it"
        " (`koprogo-node ledger backup --to` elsewhere)"
    )
    if usage.free < FAIL_FREE_BYTES or share < FAIL_FREE_SHARE:
        return [fail("disk space", detail + ": the ledger cannot grow", fix)]
    if usage.free < WARN_FREE_BYTES or share < WARN_FREE_SHARE:
        return [warn("disk space", detail, fix)]
    return [ok("disk space", detail)]


def _unwritable(data_dir: Path) -> str | None:
    """Why the daemon could not write in `data_dir`, or None if it could."""
    if os.statvfs(data_dir).f_flag & os.ST_RDONLY:
        return f"{data_dir} is on a filesystem mounted read-only"
    if not os.access(data_dir, os.W_OK):
        return f"{data_dir} is not writable by this user"
    return None


def wear_check(s: Situation) -> list[Finding]:
    name = "storage wear"
    try:
        found = wear.estimate_for(s.data_dir)
    except (OSError, ValueError, IndexError) as exc:
        return [skip(name, f"no write counters readable: {exc}")]
    if found is None:
        return [skip(name, "the data directory is not on a block device")]
    return [wear_finding(found)]


def wear_finding(found: wear.WearEstimate) -> Finding:
    """Judge a wear estimate: eMMC's own figure first, else the write rate."""
    name = "storage wear"
    fix = "keep logs in RAM (journald Storage=volatile) and check what writes"
    rate = (
        f"{found.device}: {found.bytes_per_day / 1e6:.0f} MB written a day since boot"
    )
    if found.emmc_used_percent is not None:
        used = found.emmc_used_percent
        detail = f"{found.device} reports {used} % of its life used"
        if used >= 90:
            return fail(name, detail, "replace the storage soon")
        return warn(name, detail, fix) if used >= 70 else ok(name, detail)
    if found.years_left is None:
        return ok(name, f"{found.device}: nothing written since boot")
    detail = (
        f"{rate}; at {wear.CARD_WRITE_CYCLES} full writes this"
        f" {found.capacity_bytes / 1e9:.0f} GB device lasts ~{found.years_left:.0f}"
        " years at that rate"
    )
    if found.years_left < FAIL_CARD_YEARS:
        return fail(name, detail, fix)
    if found.years_left < WARN_CARD_YEARS:
        return warn(name, detail, fix)
    return ok(name, detail)


def ledger_check(s: Situation) -> list[Finding]:
    fix = "restore the last good backup: koprogo-node ledger restore FILE"
    if not s.db_path.exists():
        return [
            fail(
                "ledger",
                f"no ledger at {s.db_path}",
                "check --data-dir, or start the daemon once",
            )
        ]
    try:
        verdict = verify(s.db_path)
    except KoprogoError as exc:
        return [fail("ledger", str(exc), fix)]
    if not verdict.ok:
        return [fail("ledger", verdict.line(), fix)]
    return [ok("ledger", verdict.line())]


def sensors_check(s: Situation) -> list[Finding]:
    """One finding per configured source, from the ledger and the daemon."""
    if not s.config.sources:
        return [warn("sensors", "no source configured", "add [[sources]] to node.toml")]
    try:
        stored = _stored_sensors(s.db_path)
    except KoprogoError as exc:
        return [
            fail("sensors", f"cannot read the ledger: {exc}", "see the ledger check")
        ]
    health = {h["name"]: h for h in (s.live or {}).get("sources", [])}
    return [
        _source_finding(src.name, stored, health.get(src.name), s.stale_after_s)
        for src in s.config.sources
    ]


def _stored_sensors(db_path: Path) -> list[dict]:
    conn = query.open_reader(db_path)
    try:
        return query.sensors(conn)
    finally:
        conn.close()


def _source_finding(
    source: str, stored: list[dict], health: dict | None, stale_after_s: float
) -> Finding:
    name = f"sensors {source}"
    test = f"koprogo-node sensors test {source}; check its wiring and device"
    if health and health.get("state") == "failing":
        return fail(name, f"failing: {health.get('last_error') or 'no detail'}", test)
    mine = [row for row in stored if row["name"].startswith(source + ".")]
    seen = [row for row in mine if row["last_ts_ms"] is not None]
    if not seen:
        return fail(name, "no reading ever stored", test)
    now_ms = time.time() * 1000
    stale = [r for r in seen if (now_ms - r["last_ts_ms"]) / 1000 > stale_after_s]
    if stale:
        oldest = min(r["last_ts_ms"] for r in stale)
        listed = ", ".join(r["name"] for r in stale[:3]) + (
            " ..." if len(stale) > 3 else ""
        )
        return warn(
            name,
            f"{len(stale)} of {len(seen)} stale (no reading for"
            f" {(now_ms - oldest) / 60_000:.0f} min): {listed}",
            test,
        )
    return ok(name, f"{len(seen)} channels live")


def mqtt_check(s: Situation) -> list[Finding]:
    brokers = [src for src in s.config.sources if isinstance(src, MqttSource)]
    if not brokers:
        return [skip("mqtt broker", "no MQTT source configured")]
    return [_broker_finding(src) for src in brokers]


def _broker_finding(source: MqttSource) -> Finding:
    name = f"mqtt broker {source.name}"
    problem = probes.mqtt_connect(source)
    if problem is None:
        return ok(name, f"{source.host}:{source.port} accepts the node's login")
    return fail(
        name,
        problem,
        "systemctl status mosquitto; check host, port, user and password in node.toml",
    )


def peers_check(s: Situation) -> list[Finding]:
    fed = s.config.federation
    if not fed.enabled:
        return [skip("peers", "federation is off")]
    unreachable = [p for p in map(probes.tcp_reachable, fed.bootstrap) if p]
    connected = ((s.live or {}).get("federation") or {}).get("connected")
    fix = "check the network and the bootstrap list (federation.bootstrap)"
    if unreachable:
        reached = len(fed.bootstrap) - len(unreachable)
        detail = (
            f"{reached} of {len(fed.bootstrap)} bootstrap peers reachable:"
            f" {unreachable[0]}"
        )
        judge = fail if not reached and not connected else warn
        return [judge("peers", detail, fix)]
    if connected is None:
        return [
            warn(
                "peers", "cannot tell: the daemon is not answering", "start the daemon"
            )
        ]
    if connected == 0:
        return [warn("peers", "no peer connected", fix)]
    return [ok("peers", f"{connected} connected")]


def models_check(s: Situation) -> list[Finding]:
    try:
        models = list_models()
    except (ConfigError, OSError) as exc:
        return [
            fail("models", str(exc), "reinstall the release: the models ship with it")
        ]
    return [
        ok(f"model {m['name']}", "file intact (sha256 matches)")
        if m["ok"]
        else fail(
            f"model {m['name']}",
            m["problem"],
            "reinstall the release: the models ship with it",
        )
        for m in models
    ]


CHECKS: tuple[Callable[[Situation], list[Finding]], ...] = (
    config_check,
    daemon_check,
    systemd_check,
    clock_check,
    disk_check,
    wear_check,
    ledger_check,
    sensors_check,
    mqtt_check,
    peers_check,
    models_check,
)


def run_all(situation: Situation) -> list[Finding]:
    """Every check's findings, in order."""
    return [finding for check in CHECKS for finding in check(situation)]
