"""`koprogo-node readings tail`: committed readings as they arrive."""

from __future__ import annotations

import json
import time
from urllib.parse import urlencode

import click

from ..ledger import query
from ..ledger.lock import holder_pid
from ..web.live_readings import LIVE_PATH
from .common import Context, check_sensors, data_dir_options, iso, sensor_option
from .daemon_client import DaemonUnavailable, stream
from .ledger_cmds import QUALITY

POLL_S = 1.0


@click.group()
def readings() -> None:
    """Look at stored readings."""


@readings.command("tail")
@data_dir_options
@sensor_option
@click.option(
    "-n",
    "--lines",
    default=10,
    show_default=True,
    type=click.IntRange(0, 10_000_000),
    help="How many past readings to show first.",
)
@click.option(
    "--follow/--no-follow",
    default=True,
    show_default=True,
    help="Keep printing new readings, like tail -f.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_obj
def tail(
    obj: Context,
    config_path,
    data_dir,
    sensors,
    lines: int,
    follow: bool,
    as_json: bool,
) -> None:
    """Print the latest readings, then new ones as they arrive, like tail -f.

    With the daemon running, new readings are shown as it receives them,
    through its control socket (before the ledger commits them); with it
    stopped, as blocks are committed to the ledger.

    \b
    Example:
      koprogo-node readings tail --sensor p1.import_t1
    """
    obj.override(config_path, data_dir)
    names = tuple(sensors)
    conn = query.open_reader(obj.db_path())
    try:
        check_sensors(conn, names)
        conn.execute("BEGIN")  # the same snapshot for the rows and the marks
        _emit(query.latest_readings(conn, lines, names) if lines else [], as_json)
        committed = {s["name"]: s["last_ts_ms"] or 0 for s in query.sensors(conn)}
        conn.execute("COMMIT")
        if follow:
            if holder_pid(obj.data_dir()) is not None:
                _follow_daemon(obj, names, committed, as_json)
            _follow_ledger(conn, names, as_json)
    except KeyboardInterrupt:
        pass
    finally:
        conn.close()


def _follow_daemon(
    obj: Context, names: tuple[str, ...], committed: dict[str, int], as_json: bool
) -> None:
    """Print live readings until the daemon stops or stops answering.

    The daemon first resends what it received lately; what the ledger had
    already committed when we read it (shown above, or skipped by -n) is not
    printed twice.
    """
    path = LIVE_PATH + (
        "?" + urlencode([("sensor", n) for n in names]) if names else ""
    )
    click.echo(
        "-- live, as the daemon receives them (before the ledger's checks);"
        " Ctrl-C to stop",
        err=True,
    )
    try:
        for item in stream(obj.data_dir(), path):
            if "missed" in item:
                click.echo(f"-- {item['missed']} readings missed (too slow)", err=True)
            elif item["ts_ms"] > committed.get(item["sensor"], 0):
                _emit_live(item, as_json)
    except DaemonUnavailable as exc:
        click.echo(f"-- {exc}", err=True)
    click.echo("-- the daemon stopped: following the ledger", err=True)


def _follow_ledger(conn, names: tuple[str, ...], as_json: bool) -> None:
    last = query.last_reading_id(conn)
    while True:
        time.sleep(POLL_S)
        newest = query.last_reading_id(conn)
        _emit(query.readings_between(conn, last, newest, names), as_json)
        last = newest


def _emit_live(item: dict, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({**item, "ts": iso(item["ts_ms"]), "committed": False}))
    else:
        click.echo(
            f"{iso(item['ts_ms'])}  {item['sensor']:<32} {item['value']:>14g}"
            f" {item['unit']:<4} {item['quality']}"
        )


def _emit(rows: list[tuple], as_json: bool) -> None:
    for rid, block, name, kind, unit, ts_ms, value, delta, quality in rows:
        q = QUALITY.get(quality, quality)
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "id": rid,
                        "block": block,
                        "sensor": name,
                        "ts": iso(ts_ms),
                        "ts_ms": ts_ms,
                        "value": value,
                        "unit": unit,
                        "kind": kind,
                        "delta": delta,
                        "quality": q,
                    }
                )
            )
        else:
            click.echo(f"{iso(ts_ms)}  {name:<32} {value:>14g} {unit:<4} {q}")
