"""`koprogo-node status`: one screen on the node's health."""

from __future__ import annotations

import time

import click

from ..daemon.runfile import read_run_file
from ..daemon.systime import kernel_clock_synchronised
from ..ledger import query
from ..ledger.lock import holder_pid
from .common import Context, daemon_json, data_dir_options, iso, print_json, table

STALE_AFTER_S = 900


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
        }
    finally:
        conn.close()
    if pid is not None and recorded.get("web_url"):
        report["live"] = daemon_json(
            obj.data_dir(), recorded["web_url"], "/api/v1/status"
        )
    if report.get("live"):
        trusted = report["live"]["node"]["clock_trusted"]
        report["clock"] = "trusted by the daemon" if trusted else report["clock"]
    return report


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
    """The status as aligned text."""
    daemon = report["daemon"]
    led = report["ledger"]
    lines = [
        f"building  {report['building_id']}",
        "daemon    "
        + (
            f"running (pid {daemon['pid']})"
            if daemon["running"]
            else "not running: figures read from the data directory"
        ),
        f"clock     {report['clock']}",
        f"ledger    block {led['height']} at {iso(led['created_ms'])},"
        f" {led['size_bytes'] / 1e6:.1f} MB",
    ]
    live = report.get("live")
    if live:
        ingest = live["ingest"]
        lines.append(
            f"ingest    {ingest['rate_per_s']} readings/s,"
            f" {ingest['committed_total']} committed since start"
        )
    lines += [
        "",
        table(
            [
                [
                    s["name"],
                    _num(s["last_value"]),
                    s["unit"],
                    _age(s["age_s"]),
                    s["state"],
                ]
                for s in report["sensors"]
            ],
            ["sensor", "last value", "unit", "age", "state"],
        ),
    ]
    if report["rejects"]:
        lines += [
            "",
            table(
                [
                    [
                        r["source"],
                        r["reason"],
                        r["count"],
                        iso(r["last_ms"]),
                        r["detail"][:50],
                    ]
                    for r in report["rejects"]
                ],
                ["source", "rejected because", "count", "last", "detail"],
            ),
        ]
    return "\n".join(lines)


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
