"""`koprogo-node ledger verify|export|backup|restore`."""

from __future__ import annotations

import csv
import json
import sys
from contextlib import closing, contextmanager
from pathlib import Path

import click

from ..core.readings import Quality
from ..ledger import backup as backups
from ..ledger import query
from ..ledger.verify import verify
from .common import (
    Context,
    check_sensors,
    data_dir_options,
    fail,
    iso,
    parse_time_ms,
    print_json,
    sensor_option,
)

PROGRESS_EVERY = 5000  # rows between two redraws of the export's bar
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
    """Verify, export, back up and restore the ledger."""


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
        lo, hi = query.id_range(conn, from_ms or 0, to_ms or 2**62)
        with _progress_bar("exporting") as progress:
            with closing(_counted(rows, lo, hi, progress)) as counted:
                _write(counted, fmt)
    finally:
        conn.close()


def _counted(rows, first_id: int, last_id: int, progress):
    """Pass rows through, reporting how far through the id range they are."""
    if progress is None:
        yield from rows
        return
    total = max(1, last_id - first_id + 1)
    for n, row in enumerate(rows):
        if n % PROGRESS_EVERY == 0:
            progress(row[0] - first_id, total)
        yield row
    progress(total, total)


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


@ledger.command("backup")
@data_dir_options
@click.option(
    "--to",
    "dest",
    metavar="FILE",
    type=click.Path(path_type=Path),
    help="Where to write the copy [default: DATA_DIR/backups/ledger-<UTC stamp>.db].",
)
@click.option(
    "--keep",
    type=click.IntRange(min=1),
    metavar="N",
    help="Without --to: then delete all but the newest N backups in"
    " DATA_DIR/backups (only those this command named; the copies taken"
    " before a schema migration stay).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def backup_cmd(
    obj: Context,
    config_path,
    data_dir,
    dest: Path | None,
    keep: int | None,
    as_json: bool,
):
    """Copy the ledger while the daemon runs, then verify the copy.

    Writes FILE and its head anchor FILE.head; keep both together. Exit 1 if
    the copy does not verify, 2 if FILE cannot be written, 3 if there is no
    readable ledger.

    \b
    Examples:
      koprogo-node ledger backup --to /media/usb/ledger-2026-11.db
      koprogo-node ledger backup --keep 7     # what the daily timer runs
    """
    obj.override(config_path, data_dir)
    if keep is not None and dest is not None:
        raise click.BadParameter("applies only without --to", param_hint="--keep")
    if not obj.db_path().is_file():
        fail(f"no ledger at {obj.db_path()}", 3)
    if dest is None:
        dest = backups.default_backup_path(obj.data_dir(), obj.config().ledger.file)
        _make_backups_dir(dest.parent)
    try:
        with _progress_bar("copying ledger") as progress:
            outcome = backups.backup(obj.db_path(), dest, progress)
    except backups.PathUnusable as exc:
        fail(str(exc), 2)
    _report(outcome, as_json, "backup")
    if keep is not None:
        ledger_name = obj.config().ledger.file
        for old in backups.prune_default_backups(obj.data_dir(), ledger_name, keep):
            click.echo(f"removed old backup {old}", err=True)


@ledger.command("restore")
@data_dir_options
@click.argument("backup_file", metavar="FILE", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def restore_cmd(obj: Context, config_path, data_dir, backup_file: Path, as_json: bool):
    """Replace the ledger by a backup; the current one is kept aside, renamed.

    The daemon must be stopped. FILE must verify (with FILE.head beside it),
    otherwise nothing is changed. Exit 1 if FILE is not a ledger or does not
    verify, 2 if FILE cannot be read, 3 if the daemon runs or the data
    directory cannot be written.

    \b
    Example:
      systemctl stop koprogo-node
      koprogo-node ledger restore /media/usb/ledger-2026-11.db
      systemctl start koprogo-node
    """
    obj.override(config_path, data_dir)
    try:
        with _progress_bar("restoring ledger") as progress:
            outcome = backups.restore(
                backup_file, obj.data_dir(), obj.config().ledger.file, progress
            )
    except backups.PathUnusable as exc:
        fail(str(exc), 2)
    except backups.BackupRejected as exc:
        fail(f"{exc}; the current ledger was not touched", 1)
    _report(outcome, as_json, "restored")


def _make_backups_dir(folder: Path) -> None:
    try:
        folder.mkdir(exist_ok=True)
    except OSError as exc:
        fail(f"cannot create {folder}: {exc.strerror}", 3)


@contextmanager
def _progress_bar(label: str):
    """Yield a progress callback drawing a bar on stderr, or None off a TTY."""
    if not sys.stderr.isatty():
        yield None
        return
    with click.progressbar(length=1, label=label, file=sys.stderr) as bar:

        def update(done: int, total: int) -> None:
            bar.length = total
            bar.update(done - bar.pos)

        yield update


def _report(outcome: backups.Outcome, as_json: bool, what: str) -> None:
    """Print where the ledger went and its verdict; exit 1 if it does not verify."""
    if as_json:
        print_json(outcome.as_dict())
    else:
        if outcome.kept_aside:
            click.echo(f"kept aside  {outcome.kept_aside} (the previous ledger)")
        click.echo(f"{what:<11} {outcome.path} from {outcome.source}")
        click.echo(f"size        {outcome.size_bytes} bytes")
        click.echo(f"height      block {outcome.height}")
        click.echo(f"verify      {outcome.verdict.line()}")
    if not outcome.verdict.ok:
        sys.exit(1)
