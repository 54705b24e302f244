"""What every command shares: where the config and the data live, and output."""

from __future__ import annotations

import json
import math
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import NoReturn

import click

from .. import config as config_mod
from ..config.model import Config
from ..daemon.runfile import read_run_file


class Context:
    """Paths given on the command line or in the environment, resolved lazily."""

    def __init__(self, config_path: str | None, data_dir: str | None) -> None:
        self._config_path = config_path
        self._data_dir = data_dir
        self._config: Config | None = None
        self.follow_daemon = True  # `run` sets False: it reads only what it is given

    def override(self, config_path: str | None, data_dir: str | None) -> None:
        """Options given after the sub-command win over those before it."""
        self._config_path = config_path or self._config_path
        self._data_dir = data_dir or self._data_dir

    def config_path(self) -> Path | None:
        """The configuration file in use, or None for the defaults.

        Without --config, KOPROGO_CONFIG or /etc's file, the technician's
        commands read the file the daemon of this data directory was last
        started with (the demo writes its own), so they see its sources.
        """
        chosen = config_mod.resolve_config_path(self._config_path)
        if chosen is None and self.follow_daemon:
            recorded = read_run_file(self.data_dir()).get("config_path")
            if recorded and Path(recorded).is_file():
                chosen = Path(recorded)
        return chosen

    def config(self) -> Config:
        """The validated configuration (defaults when there is no file)."""
        if self._config is None:
            self._config = config_mod.load(self.config_path())
        return self._config

    def data_dir(self) -> Path:
        return config_mod.resolve_data_dir(self._data_dir)

    def db_path(self) -> Path:
        return self.data_dir() / self.config().ledger.file


def data_dir_options(command):
    """Accept --data-dir and --config after the sub-command name too."""
    command = click.option(
        "--data-dir", metavar="DIR", envvar="KOPROGO_DATA_DIR", help="State directory."
    )(command)
    return click.option(
        "--config",
        "config_path",
        metavar="PATH",
        envvar="KOPROGO_CONFIG",
        help="TOML configuration.",
    )(command)


sensor_option = click.option(
    "--sensor",
    "sensors",
    multiple=True,
    metavar="NAME",
    help="Only this channel (repeatable).",
)


class FiniteRange(click.FloatRange):
    """A float range that also refuses nan and infinity (FloatRange lets nan in)."""

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


def fail(message: str, code: int) -> NoReturn:
    """Print an error for a person and exit with `code`."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def iso(ts_ms: int | None) -> str:
    """Milliseconds to an ISO 8601 UTC string ('' for None)."""
    if ts_ms is None:
        return ""
    moment = datetime.fromtimestamp(ts_ms / 1000, timezone.utc)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_time_ms(text: str | None, option: str) -> int | None:
    """Parse an ISO 8601 date/time (naive means UTC) into milliseconds."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(
            f"expected ISO 8601 such as 2026-01-31 or 2026-01-31T12:00, got {text!r}",
            param_hint=option,
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)


def print_json(data) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


def table(rows: list[list[str]], headers: list[str]) -> str:
    """Aligned columns for a terminal."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(str(c))) for w, c in zip(widths, row)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths))]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)) for row in rows]
    return "\n".join(line.rstrip() for line in lines)


def check_sensors(conn, names: tuple[str, ...]) -> None:
    """Exit 2 naming the first of `names` the ledger does not know."""
    from ..ledger import query

    known = {s["name"] for s in query.sensors(conn)}
    unknown = [n for n in names if n not in known]
    if unknown:
        fail(f"unknown sensor {unknown[0]!r}; `koprogo-node status` lists them", 2)
