"""`koprogo-node sensors list|test`: is each configured source delivering?"""

from __future__ import annotations

import asyncio
import sys
import time

import click

from ..config.model import Config
from ..core.readings import Reading, Reject
from ..daemon.systime import system_clock
from ..drivers.registry import build_source
from ..errors import SensorError
from ..ledger import query
from ..ledger.lock import holder_pid
from .common import Context, FiniteRange, data_dir_options, fail, iso, print_json, table
from .daemon_client import get_json, live_status
from .status_cmds import STALE_AFTER_S

EXIT_NO_READING, EXIT_UNAVAILABLE = 1, 3


@click.command("list")
@data_dir_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def list_cmd(obj: Context, config_path, data_dir, as_json: bool) -> None:
    """The configured sources: where they read, their state and channels.

    The state comes from the running daemon; with it stopped, from the ledger.

    \b
    Example:
      koprogo-node sensors list --json
    """
    obj.override(config_path, data_dir)
    rows = source_rows(obj)
    if as_json:
        print_json({"sources": rows})
        return
    click.echo(
        table(
            [
                [
                    r["name"],
                    r["type"],
                    r["where"],
                    r["state"],
                    r["live"],
                    r["stale"],
                    r["last"] or "never",
                ]
                for r in rows
            ],
            ["source", "type", "reads from", "state", "live", "stale", "last reading"],
        )
    )


def source_rows(obj: Context) -> list[dict]:
    """One row per configured source, with its channels' freshness."""
    cfg = obj.config()
    live = live_status(obj.data_dir())
    health = {h["name"]: h for h in (live or {}).get("sources", [])}
    channels = _channels(obj)
    now_ms = time.time() * 1000
    rows = []
    for source in cfg.sources:
        mine = [c for c in channels if c["name"].startswith(source.name + ".")]
        seen = [c["last_ts_ms"] for c in mine if c["last_ts_ms"] is not None]
        stale = sum(1 for ts in seen if now_ms - ts > STALE_AFTER_S * 1000)
        found = health.get(source.name, {})
        rows.append(
            {
                "name": source.name,
                "type": source.TYPE,
                "where": where(source),
                "state": found.get("state", "daemon down" if live is None else "?"),
                "last_error": found.get("last_error", ""),
                "restarts": found.get("restarts"),
                "channels": len(mine),
                "live": len(seen) - stale,
                "stale": stale,
                "last": iso(max(seen)) if seen else None,
            }
        )
    return rows


def where(source) -> str:
    """The device, file or address a source reads, in a few characters."""
    for key in ("path", "device", "pin"):
        value = getattr(source, key, None)
        if value not in (None, ""):
            return str(value)
    if getattr(source, "host", ""):
        return f"{source.host}:{source.port}"
    return "(simulated)" if source.TYPE == "simulated" else ""


def _channels(obj: Context) -> list[dict]:
    if not obj.db_path().exists():
        return []
    conn = query.open_reader(obj.db_path())
    try:
        return query.sensors(conn)
    finally:
        conn.close()


@click.command("test")
@click.argument("name")
@data_dir_options
@click.option(
    "--seconds",
    type=FiniteRange(min=1, max=3600),
    default=15,
    show_default=True,
    help="How long to wait for fresh readings.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def test_cmd(obj: Context, name: str, config_path, data_dir, seconds: float, as_json):
    """Check that the source NAME delivers readings now.

    With the daemon running, watches the readings it receives from NAME;
    with it stopped, opens the device itself and reads for a while. Exit
    code: 0 fresh readings arrived, 1 none arrived, 3 the device cannot be
    opened.

    \b
    Examples:
      koprogo-node sensors test p1
      koprogo-node sensors test boiler --seconds 60
    """
    obj.override(config_path, data_dir)
    source = _configured(obj.config(), name)
    if holder_pid(obj.data_dir()) is not None:
        result = _watch_daemon(obj, source.name, seconds)
    else:
        result = _read_directly(source, seconds)
    if as_json:
        print_json(result)
    else:
        click.echo(render_test(result))
    if result.get("error"):
        sys.exit(EXIT_UNAVAILABLE)
    if not result["readings"]:
        sys.exit(EXIT_NO_READING)


def _configured(cfg: Config, name: str):
    for source in cfg.sources:
        if name == source.name or name.startswith(source.name + "."):
            return source
    known = ", ".join(s.name for s in cfg.sources) or "none configured"
    fail(f"no source {name!r} in the configuration (sources: {known})", 2)


def _watch_daemon(obj: Context, source: str, seconds: float) -> dict:
    """Readings of `source` the daemon received while we watched."""
    before = _latest(obj, source)
    if before is None:
        fail("the daemon runs but does not answer on its control socket", 3)
    deadline = time.monotonic() + seconds
    fresh: dict[str, dict] = {}
    while time.monotonic() < deadline and not fresh:
        time.sleep(min(1.0, seconds))
        now = _latest(obj, source) or {}
        fresh = {
            n: row
            for n, row in now.items()
            if row.get("live_ts_ms")
            and row["live_ts_ms"] != before.get(n, {}).get("live_ts_ms")
        }
    readings = [
        {
            "sensor": n,
            "value": r["live_value"],
            "unit": r["unit"],
            "ts": iso(r["live_ts_ms"]),
        }
        for n, r in sorted(fresh.items())
    ]
    return {
        "source": source,
        "via": "daemon",
        "seconds": seconds,
        "readings": readings,
        "rejects": [],
    }


def _latest(obj: Context, source: str) -> dict[str, dict] | None:
    answer = get_json(obj.data_dir(), "/api/v1/sensors")
    if answer is None:
        return None
    return {
        row["name"]: row
        for row in answer["sensors"]
        if row["name"].startswith(source + ".")
    }


class _Collector:
    """A sink that keeps what a source delivers during the test."""

    def __init__(self) -> None:
        self.readings: list[Reading] = []
        self.rejects: list[Reject] = []

    async def put(self, reading: Reading) -> None:
        self.readings.append(reading)

    async def put_many(self, readings: list[Reading]) -> None:
        self.readings.extend(readings)

    def reject(self, reject: Reject) -> None:
        self.rejects.append(reject)

    def last_value(self, sensor: str) -> float | None:
        return None  # a test counts from zero; it stores nothing


def _read_directly(source_config, seconds: float) -> dict:
    """Run the source's driver for `seconds` with nothing stored."""
    sink = _Collector()
    error = asyncio.run(_run_for(source_config, sink, seconds))
    latest: dict[str, Reading] = {}
    for reading in sink.readings:
        latest[reading.sensor] = reading
    return {
        "source": source_config.name,
        "via": "device",
        "seconds": seconds,
        "error": error,
        "readings": [
            {
                "sensor": r.sensor,
                "value": r.value,
                "unit": r.unit,
                "ts": iso(int(r.ts * 1000)),
            }
            for r in sorted(latest.values(), key=lambda r: r.sensor)
        ],
        "rejects": [
            {"reason": j.reason, "detail": j.detail} for j in sink.rejects[:20]
        ],
    }


async def _run_for(source_config, sink: _Collector, seconds: float) -> str | None:
    """Run the driver; return why it could not read, or None."""
    source = build_source(source_config)
    try:
        await asyncio.wait_for(source.run(sink, system_clock("always")), seconds)
    except asyncio.TimeoutError:
        return None
    except SensorError as exc:
        return str(exc)
    return None


def render_test(result: dict) -> str:
    """What the test saw, for a person."""
    if result.get("error"):
        return f"FAIL  {result['source']}: {result['error']}"
    got = result["readings"]
    head = (
        f"OK    {result['source']}: {len(got)} channels gave readings"
        if got
        else f"FAIL  {result['source']}: no reading in {result['seconds']:g} s"
    )
    via = "as received by the daemon" if result["via"] == "daemon" else "read directly"
    rows = [[r["sensor"], f"{r['value']:g}", r["unit"], r["ts"]] for r in got]
    lines = [f"{head} ({via})"]
    if rows:
        lines.append(table(rows, ["channel", "value", "unit", "time"]))
    for reject in result["rejects"]:
        lines.append(f"rejected: {reject['reason']}: {reject['detail']}")
    return "\n".join(lines)
