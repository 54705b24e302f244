"""`koprogo-node status`: one screen on the node's health."""

from __future__ import annotations

import time

import click

from ..daemon.runfile import read_run_file
from ..daemon.systime import kernel_clock_synchronised
from ..detect import alert_log
from ..ledger import query
from ..ledger.lock import holder_pid
from . import peers_cmds
from .common import Context, data_dir_options, iso, print_json, table
from .daemon_client import live_status

STALE_AFTER_S = 900
ALERT_FIELDS = ("id", "kind", "severity", "sensor", "state", "start_ts")


@click.command()
@data_dir_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def status(obj: Context, config_path, data_dir, as_json: bool) -> None:
    """Node, clock, ledger, sensors and rejected input at a glance.

    Works whether the daemon runs or not; says which.

    \b
    Example:
      koprogo-node status --json
    """
    obj.override(config_path, data_dir)
    report = gather(obj)
    if as_json:
        print_json(report)
    else:
        click.echo(render(report))


def gather(obj: Context) -> dict:
    """Collect the status from the data directory and, if up, the daemon."""
    cfg = obj.config()
    pid = holder_pid(obj.data_dir())
    recorded = read_run_file(obj.data_dir())
    conn = query.open_reader(obj.db_path())
    try:
        report = {
            "building_id": recorded.get("building_id", cfg.node.building_id),
            "daemon": {"running": pid is not None, "pid": pid},
            "clock": _clock(cfg.time.trust),
            "ledger": {**query.head(conn), "size_bytes": _size(obj)},
            "sensors": _sensors(conn),
            "rejects": query.reject_counts(conn),
            "alerts": _open_alerts(conn),
        }
    finally:
        conn.close()
    live = live_status(obj.data_dir())
    report["live"] = live
    report["daemon"]["answering"] = live is not None
    report["peers"] = _peers(obj, live)
    if live:
        report["daemon"]["uptime_s"] = live["node"]["uptime_s"]
        trusted = live["node"]["clock_trusted"]
        report["clock"] = "trusted by the daemon" if trusted else report["clock"]
    return report


def _open_alerts(conn) -> list[dict]:
    """Alerts not yet resolved, newest first, as the ledger records them."""
    current = alert_log.fold(query.events(conn, alert_log.EVENT_PREFIX))
    return [
        {key: alert.get(key) for key in ALERT_FIELDS}
        for alert in alert_log.listed(current, "active")
    ]


def _peers(obj: Context, live: dict | None) -> dict:
    """Connected peers (only a running daemon knows) and those ever heard."""
    if not obj.config().federation.enabled:
        return {"enabled": False}
    federation = (live or {}).get("federation") or {}
    return {
        "enabled": True,
        "connected": federation.get("connected"),
        "known": len(peers_cmds.gather(obj)["peers"]),
    }


def _clock(trust: str) -> str:
    """How far this host's wall clock is trusted, in words."""
    if kernel_clock_synchronised():
        return "synchronised"
    if trust == "always":
        return "not synchronised, but trusted by configuration (time.trust)"
    return "NOT synchronised (readings are flagged until it is)"


def _size(obj: Context) -> int:
    db = obj.db_path()
    return sum(
        p.stat().st_size for p in (db, db.with_name(db.name + "-wal")) if p.exists()
    )


def _sensors(conn) -> list[dict]:
    now_ms = time.time() * 1000
    rows = query.sensors(conn)
    for row in rows:
        age = None if row["last_ts_ms"] is None else (now_ms - row["last_ts_ms"]) / 1000
        row["age_s"] = None if age is None else round(age, 1)
        row["state"] = "live" if age is not None and age < STALE_AFTER_S else "stale"
    return rows


def render(report: dict) -> str:
    """The status as aligned text: a header, then sensors, alerts, rejects."""
    lines = _header(report)
    sensors = report["sensors"]
    stale = sum(1 for s in sensors if s["state"] == "stale")
    lines += ["", f"sensors   {len(sensors) - stale} live, {stale} stale"]
    lines.append(
        table(
            [
                [
                    s["name"],
                    _num(s["last_value"]),
                    s["unit"],
                    _age(s["age_s"]),
                    s["state"],
                ]
                for s in sensors
            ],
            ["sensor", "last value", "unit", "age", "state"],
        )
    )
    if report["alerts"]:
        lines += ["", _alerts_table(report["alerts"])]
    if report["rejects"]:
        lines += ["", _rejects_table(report["rejects"])]
    return "\n".join(lines)


def _header(report: dict) -> list[str]:
    daemon, led, live = report["daemon"], report["ledger"], report.get("live")
    lines = [
        f"building  {report['building_id']}",
        f"daemon    {_daemon(daemon)}",
        f"clock     {report['clock']}",
        f"ledger    block {led['height']} at {iso(led['created_ms'])},"
        f" {led['size_bytes'] / 1e6:.1f} MB",
    ]
    if live:
        ingest = live["ingest"]
        lines.append(
            f"ingest    {ingest['rate_per_s']} readings/s,"
            f" {ingest['committed_total']} committed since start,"
            f" {ingest['queue_depth']} queued"
        )
    lines.append(f"peers     {_peers_line(report['peers'])}")
    lines.append(f"alerts    {len(report['alerts'])} open")
    return lines


def _daemon(daemon: dict) -> str:
    if not daemon["running"]:
        return "not running: figures read from the data directory"
    if not daemon["answering"]:
        return (
            f"running (pid {daemon['pid']}) but not answering on its control"
            " socket: figures read from the data directory"
        )
    return f"running (pid {daemon['pid']}), up {_age(daemon['uptime_s'])}"


def _peers_line(peers: dict) -> str:
    if not peers["enabled"]:
        return "federation off"
    connected = peers["connected"]
    now = "unknown (daemon down)" if connected is None else str(connected)
    return f"{now} connected, {peers['known']} known"


def _alerts_table(alerts: list[dict]) -> str:
    return table(
        [
            [a["id"], a["severity"], a["state"], iso(int(a["start_ts"] * 1000))]
            for a in alerts
        ],
        ["open alert", "severity", "state", "since"],
    )


def _rejects_table(rejects: list[dict]) -> str:
    return table(
        [
            [r["source"], r["reason"], r["count"], iso(r["last_ms"]), r["detail"][:50]]
            for r in rejects
        ],
        ["source", "rejected because", "count", "last", "detail"],
    )


def _num(value) -> str:
    return "" if value is None else f"{value:g}"


def _age(age_s) -> str:
    if age_s is None:
        return "never"
    if abs(age_s) < 120:
        return f"{age_s:.0f} s"
    if abs(age_s) < 7200:
        return f"{age_s / 60:.0f} min"
    return f"{age_s / 3600:.1f} h"
