"""`koprogo-node sensors profiles|decode|scan-modbus`: device knowledge at hand."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import click

from ..config.model import P1_SPECS
from ..core.clock import Stamp
from ..core.readings import Reading, Reject
from ..drivers.profiles import list_profiles
from .common import fail, iso, print_json, table

SPEC_CHOICES = ("auto", *P1_SPECS)


@click.group()
def sensors() -> None:
    """Device profiles, decoding of captured input, bus scans."""


@sensors.command("profiles")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def profiles_cmd(as_json: bool) -> None:
    """List the device profiles in sensors/ (adding a model is adding a file).

    \b
    Example:
      koprogo-node sensors profiles --json
    """
    found = [
        {"name": p.name, "family": p.family, "title": p.title, "path": str(p.path)}
        for p in list_profiles()
    ]
    if as_json:
        print_json(found)
        return
    click.echo(
        table(
            [[p["family"], p["name"], p["title"]] for p in found],
            ["family", "profile", "what"],
        )
    )


@sensors.group("decode")
def decode() -> None:
    """Show what the node would store for captured input."""


@decode.command("p1")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--spec",
    type=click.Choice(SPEC_CHOICES),
    default="auto",
    show_default=True,
    help="Dialect; auto picks it from sensors/dsmr/.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def decode_p1(path: Path, spec: str, as_json: bool) -> None:
    """Decode a file of P1 telegrams (as written by `sensors capture-p1`).

    \b
    Example:
      koprogo-node sensors decode p1 capture.txt --json
    """
    from ..drivers.p1 import decode_file
    from ..drivers.p1_dialects import detect_spec

    if spec == "auto":
        spec = detect_spec(path.read_bytes())
    out = decode_file(path, spec=spec, stamp=_now())
    _show(out, as_json, {"spec": spec})


@decode.command("mqtt")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--topic", required=True, help="Topic the payload was received on.")
@click.option(
    "--profile",
    "profile",
    default=None,
    help="Profile from sensors/mqtt/; default: the one matching the topic.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def decode_mqtt(path: Path, topic: str, profile: str | None, as_json: bool) -> None:
    """Decode one MQTT payload as the node would on `topic`.

    \b
    Example:
      koprogo-node sensors decode mqtt --topic tele/plug1/SENSOR payload.json
    """
    from ..drivers.mqtt_mapping import decode_message

    out = decode_message(profile, topic, path.read_bytes(), stamp=_now())
    _show(out, as_json, {"topic": topic})


@sensors.command("scan-modbus")
@click.argument("target")
@click.option(
    "--tcp-port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Scan over TCP on this port (TARGET is a host).",
)
@click.option("--baudrate", type=int, default=9600, show_default=True)
@click.option("--first", type=click.IntRange(1, 247), default=1, show_default=True)
@click.option("--last", type=click.IntRange(1, 247), default=247, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def scan_modbus(
    target: str,
    tcp_port: int | None,
    baudrate: int,
    first: int,
    last: int,
    as_json: bool,
) -> None:
    """List the Modbus unit ids answering on a serial port or a host.

    \b
    Examples:
      koprogo-node sensors scan-modbus /dev/ttyUSB0 --baudrate 9600
      koprogo-node sensors scan-modbus 192.168.1.50 --tcp-port 502
    """
    from ..drivers.modbus import scan

    if first > last:
        fail("--first must not be above --last", 2)
    transport = "tcp" if tcp_port else "rtu"
    found = asyncio.run(
        scan(
            transport,
            target,
            unit_ids=range(first, last + 1),
            tcp_port=tcp_port or 502,
            baudrate=baudrate,
        )
    )
    if as_json:
        print_json(found)
        return
    if not found:
        click.echo("no unit id answered")
        return
    rows = [
        [
            d["unit_id"],
            ", ".join(d["models"]) or "unknown model",
            ", ".join(d.get("also_matches", [])),
        ]
        for d in found
    ]
    click.echo(table(rows, ["unit", "model", "also matches"]))


def _now() -> Stamp:
    """Stamp for input that carries no time of its own (an untrusted 'now')."""
    return Stamp(ts=time.time(), trusted=False, mono_s=time.monotonic())


def _show(out: list[Reading | Reject], as_json: bool, about: dict) -> None:
    readings = [_reading(r) for r in out if isinstance(r, Reading)]
    rejects = [_reject(r) for r in out if isinstance(r, Reject)]
    if as_json:
        click.echo(
            json.dumps({**about, "readings": readings, "rejects": rejects}, indent=2)
        )
        return
    click.echo(
        table(
            [
                [r["sensor"], r["value"], r["unit"], r["ts"], r["quality"]]
                for r in readings
            ],
            ["sensor", "value", "unit", "stamp", "quality"],
        )
    )
    for reject in rejects:
        click.echo(f"rejected ({reject['reason']}): {reject['detail']}")


def _reading(r: Reading) -> dict:
    return {
        "sensor": r.sensor,
        "ts": iso(round(r.ts * 1000)),
        "value": r.value,
        "unit": r.unit,
        "kind": str(r.kind),
        "quality": r.quality.name.lower(),
        "clock_trusted": r.clock_trusted,
    }


def _reject(r: Reject) -> dict:
    return {
        "source": r.source,
        "sensor": r.sensor,
        "reason": r.reason,
        "detail": r.detail,
    }
