"""`koprogo-node support-bundle`: what support needs, nothing secret or personal."""

from __future__ import annotations

from pathlib import Path

import click

from ..daemon.runfile import read_run_file
from ..ledger.backup import utc_stamp
from . import support_bundle
from .common import Context, data_dir_options, fail, print_json


@click.command("support-bundle")
@data_dir_options
@click.option(
    "--out",
    metavar="FILE",
    type=click.Path(path_type=Path),
    help="Tarball to write [default: ./koprogo-support-<building>-<UTC stamp>.tar.gz].",
)
@click.option(
    "--log-file",
    metavar="FILE",
    type=click.Path(path_type=Path),
    help="Include this log instead of the journal (a daemon started by hand).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def support_bundle_cmd(
    obj: Context, config_path, data_dir, out: Path | None, log_file, as_json: bool
) -> None:
    """Write a gzip tarball for support: status, configuration, verify, logs.

    Secrets, key files and apartments' meter values are left out; logs lose
    IP addresses and user names. README.txt inside lists what is there and
    what was replaced. Works whether the daemon runs or not. Exit 2 if FILE
    cannot be written.

    \b
    Example:
      koprogo-node support-bundle --out /tmp/support.tar.gz
    """
    obj.override(config_path, data_dir)
    building = read_run_file(obj.data_dir()).get(
        "building_id", obj.config().node.building_id
    )
    top = f"koprogo-support-{building}-{utc_stamp()}"
    out = out or Path(f"{top}.tar.gz")
    _check_out(out)
    if log_file is not None and not log_file.is_file():
        fail(f"log file {log_file} does not exist or is not a file", 2)
    redactor = support_bundle.redactor_for(obj)
    members = support_bundle.collect(obj, redactor, log_file)
    members.insert(0, support_bundle.readme(members, redactor, obj))
    try:
        support_bundle.write_tarball(out, top, members)
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror or exc}", 2)
    _report(out, members, redactor, as_json)


def _check_out(out: Path) -> None:
    if out.is_dir():
        fail(f"{out} is a directory; give a file name", 2)
    if out.exists():
        fail(f"{out} already exists; remove it or choose another", 2)
    if not out.parent.is_dir():
        problem = "is not a directory" if out.parent.exists() else "does not exist"
        fail(f"cannot write {out}: {out.parent} {problem}", 2)


def _report(out: Path, members, redactor, as_json: bool) -> None:
    report = {
        "path": str(out),
        "bytes": out.stat().st_size,
        "members": [m.name for m in members],
        "replaced": dict(redactor.counts),
    }
    if as_json:
        print_json(report)
        return
    click.echo(f"wrote {out} ({report['bytes']} bytes)")
    click.echo(f"inside: {', '.join(report['members'])}")
