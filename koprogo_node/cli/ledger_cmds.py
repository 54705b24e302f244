"""`koprogo-node ledger verify|export`."""

from __future__ import annotations

import csv
import json
import sys

import click

from ..core.readings import Quality
from ..ledger import query
from ..ledger.verify import verify
from .common import (
    Context,
    check_sensors,
    data_dir_options,
    iso,
    parse_time_ms,
    print_json,
    sensor_option,
)

QUALITY = {q.value: q.name.lower() for q in Quality}
EXPORT_FIELDS = (
    "id",
    "block",
    "sensor",
    "kind",
    "unit",
    "ts",
    "ts_ms",
    "value",
    "delta",
    "quality",
)


@click.group()
def ledger() -> None:
    """Verify and export the ledger."""


@ledger.command("verify")
@data_dir_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def verify_cmd(obj: Context, config_path, data_dir, as_json: bool) -> None:
    """Recompute every block; print OK or the first bad block (exit 1).

    \b
    Example:
      koprogo-node ledger verify --data-dir /var/lib/koprogo-node
    """
    obj.override(config_path, data_dir)
    verdict = verify(obj.db_path())
    if as_json:
        print_json(vars(verdict))
    else:
        click.echo(verdict.line())
    if not verdict.ok:
        sys.exit(1)


@ledger.command("export")
@data_dir_options
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "jsonl"]),
    default="csv",
    show_default=True,
)
@sensor_option
@click.option("--from", "from_", metavar="TIME", help="ISO 8601, inclusive.")
@click.option("--to", metavar="TIME", help="ISO 8601, exclusive.")
@click.pass_obj
def export_cmd(obj: Context, config_path, data_dir, fmt: str, sensors, from_, to):
    """Write stored readings to standard output.

    \b
    Example:
      koprogo-node ledger export --format jsonl --sensor p1.import_t1 \\
          --from 2026-11-01 --to 2026-12-01 > november.jsonl
    """
    obj.override(config_path, data_dir)
    from_ms, to_ms = parse_time_ms(from_, "--from"), parse_time_ms(to, "--to")
    if from_ms is not None and to_ms is not None and from_ms >= to_ms:
        raise click.BadParameter("must be before --to", param_hint="--from")
    conn = query.open_reader(obj.db_path())
    try:
        check_sensors(conn, tuple(sensors))
        rows = query.export_rows(conn, tuple(sensors), from_ms, to_ms)
        _write(rows, fmt)
    finally:
        conn.close()


def _write(rows, fmt: str) -> None:
    out = sys.stdout
    writer = csv.writer(out, lineterminator="\n") if fmt == "csv" else None
    if writer:
        writer.writerow(EXPORT_FIELDS)
    for rid, block, name, kind, unit, ts_ms, value, delta, quality in rows:
        record = (
            rid,
            block,
            name,
            kind,
            unit,
            iso(ts_ms),
            ts_ms,
            value,
            delta,
            QUALITY.get(quality, quality),
        )
        if writer:
            writer.writerow(record)
        else:
            out.write(json.dumps(dict(zip(EXPORT_FIELDS, record))) + "\n")
