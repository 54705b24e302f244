"""`koprogo-node readings tail`: committed readings as they arrive."""

from __future__ import annotations

import json
import time

import click

from ..ledger import query
from .common import Context, check_sensors, data_dir_options, iso, sensor_option
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
    """Print the latest readings, then new ones as blocks are committed.

    \b
    Example:
      koprogo-node readings tail --sensor p1.import_t1
    """
    obj.override(config_path, data_dir)
    names = tuple(sensors)
    conn = query.open_reader(obj.db_path())
    try:
        check_sensors(conn, names)
        last = query.last_reading_id(conn)
        _emit(query.latest_readings(conn, lines, names) if lines else [], as_json)
        while follow:
            time.sleep(POLL_S)
            newest = query.last_reading_id(conn)
            _emit(query.readings_between(conn, last, newest, names), as_json)
            last = newest
    except KeyboardInterrupt:
        pass
    finally:
        conn.close()


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
