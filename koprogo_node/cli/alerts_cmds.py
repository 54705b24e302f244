"""`koprogo-node alerts list|ack|resolve`: the node's leak and anomaly alerts.

Alerts are read from the ledger, where every transition is a chained event.
Acknowledging or resolving goes through the running daemon (the only writer)
on its control socket; with the daemon stopped, the command writes the ledger
itself.
"""

from __future__ import annotations

import asyncio
from urllib.parse import quote

import click

from ..detect import alert_log
from ..detect.alerts import Alert, AlertBook, AlertError
from ..ledger import query
from ..ledger.lock import holder_pid
from ..logs import configure
from .common import Context, data_dir_options, fail, iso, print_json, table
from .daemon_client import DaemonUnavailable, call


@click.group()
def alerts() -> None:
    """Leak and anomaly alerts: list, acknowledge, resolve."""


@alerts.command("list")
@data_dir_options
@click.option(
    "--state",
    type=click.Choice(["active", "open", "acknowledged", "resolved"]),
    help="Only alerts in this state (active: not resolved).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def list_alerts(obj: Context, config_path, data_dir, state, as_json: bool) -> None:
    """Alerts, newest first, with their cost estimate.

    \b
    Example:
      koprogo-node alerts list --state active
    """
    obj.override(config_path, data_dir)
    found = alert_log.listed(_stored(obj), state)
    if as_json:
        print_json(found)
        return
    rows = [
        [
            a["id"],
            a["state"],
            a["severity"],
            iso(int(a["start_ts"] * 1000)),
            _cost(a["estimate"]),
        ]
        for a in found
    ]
    click.echo(table(rows, ["ID", "STATE", "SEVERITY", "SINCE", "ESTIMATE"]))


@alerts.command("ack")
@click.argument("alert_id")
@click.option("--note", default="", help="Why, or what is being done.")
@data_dir_options
@click.pass_obj
def acknowledge(obj: Context, alert_id: str, note: str, config_path, data_dir):
    """Mark the alert ALERT_ID as seen by a person.

    \b
    Example:
      koprogo-node alerts ack continuous_flow:common.water:1793577600 \\
          --note "plumber booked for Monday"
    """
    obj.override(config_path, data_dir)
    _change(obj, "acknowledge", alert_id, note)


@alerts.command("resolve")
@click.argument("alert_id")
@click.option("--note", default="", help="What was done (a repair, a false alarm).")
@data_dir_options
@click.pass_obj
def resolve(obj: Context, alert_id: str, note: str, config_path, data_dir):
    """Close the alert ALERT_ID by hand, for instance after a repair.

    \b
    Example:
      koprogo-node alerts resolve continuous_flow:common.water:1793577600 \\
          --note "leaking valve in the boiler room replaced"
    """
    obj.override(config_path, data_dir)
    _change(obj, "resolve", alert_id, note)


def _change(obj: Context, action: str, alert_id: str, note: str) -> None:
    if holder_pid(obj.data_dir()) is not None:
        result = _through_daemon(obj, action, alert_id, note)
    else:
        result = asyncio.run(_directly(obj, action, alert_id, note))
    if not result.get("ok"):
        error = result.get("error", "the change was refused")
        fail(error, 2 if error.startswith("no alert") else 1)
    changed = result["alert"]
    click.echo(f"{changed['id']} is now {changed['state']}")


def _through_daemon(obj: Context, action: str, alert_id: str, note: str) -> dict:
    verb = "ack" if action == "acknowledge" else "resolve"
    try:
        status, answer = call(
            obj.data_dir(),
            "POST",
            f"/api/v1/alerts/{quote(alert_id)}/{verb}",
            {"note": note},
        )
    except DaemonUnavailable as exc:
        fail(f"the daemon runs but {exc}", 3)
    if status == 200:
        return {"ok": True, "alert": answer}
    if status == 503:
        fail("the daemon's detection is off (alerts.enabled)", 3)
    return {"ok": False, "error": answer.get("error", f"refused ({status})")}


async def _directly(obj: Context, action: str, alert_id: str, note: str) -> dict:
    """Apply the change with our own ledger writer (the daemon is stopped)."""
    from ..daemon.systime import boot_id, system_clock
    from ..ledger.stats import IngestStats
    from ..ledger.writer import LedgerWriter

    cfg = obj.config()
    configure("warning", cfg.log.format)  # the writer's own events are noise here
    book = AlertBook()
    book.restore([Alert.from_dict(a) for a in _stored(obj).values()])
    try:
        changed = (book.acknowledge if action == "acknowledge" else book.resolve)(
            alert_id, note
        )
    except AlertError as exc:
        return {"ok": False, "error": str(exc)}
    clock = system_clock(cfg.time.trust)
    writer = LedgerWriter(obj.data_dir(), cfg.ledger, clock, boot_id(), IngestStats())
    await writer.open()
    event = "acknowledged" if action == "acknowledge" else "resolved"
    writer.record_event(f"alert_{event}", changed.sensor, changed.as_dict())
    await writer.close()
    return {"ok": True, "alert": changed.as_dict()}


def _stored(obj: Context) -> dict[str, dict]:
    conn = query.open_reader(obj.db_path())
    try:
        return alert_log.fold(query.events(conn, alert_log.EVENT_PREFIX))
    finally:
        conn.close()


def _cost(estimate: dict) -> str:
    rate = ""
    if "litres_per_hour" in estimate:
        rate = f"{estimate['litres_per_hour']:g} L/h"
    elif "kwh_per_day" in estimate:
        rate = f"{estimate['kwh_per_day']:g} kWh/day"
    euros = estimate.get("euros_per_day")
    return f"{rate}, {euros:.2f} €/day" if euros is not None else rate
