"""`koprogo-node sensors ...`: device knowledge, captures and live views at hand."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from pathlib import Path

import click

from ..config.model import (
    P1_SPECS,
    SERIAL_FORMATS,
    MqttSource,
    P1Source,
    topic_filter_problem,
)
from ..core.clock import Stamp
from ..core.readings import Reading, Reject
from ..drivers.profiles import list_profiles
from ..errors import ConfigError
from .common import Context, FiniteRange, fail, iso, print_json, table

SPEC_CHOICES = ("auto", *P1_SPECS)


@click.group()
def sensors() -> None:
    """Device profiles, captures and their decoding, live views, bus scans."""


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
        try:
            spec = detect_spec(path.read_bytes())
        except ConfigError as exc:  # the file's fault, not the configuration's
            fail(f"{path}: {exc}", 2)
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


@sensors.command("capture-p1")
@click.argument("port")
@click.option(
    "--seconds",
    type=FiniteRange(min=0),
    default=30.0,
    show_default=True,
    help="How long to record; 0: until Ctrl-C.",
)
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File for the telegrams (replaced) [default: stdout].",
)
@click.option(
    "--baud",
    type=click.Choice(["115200", "9600"]),
    default="115200",
    show_default=True,
    help="Serial speed; DSMR 2.2 and 3 meters: 9600.",
)
@click.option(
    "--serial-format",
    type=click.Choice(SERIAL_FORMATS),
    default="8N1",
    show_default=True,
    help="Bits, parity, stop; DSMR 2.2 and 3 meters: 7E1.",
)
@click.option("--json", "as_json", is_flag=True, help="Summary as JSON (on stderr).")
def capture_p1(
    port: str,
    seconds: float,
    out_path: Path | None,
    baud: str,
    serial_format: str,
    as_json: bool,
) -> None:
    """Record a P1 port's telegrams, byte for byte, for `sensors decode p1`.

    Opens PORT as the node does (locked for exclusive use, so stop the
    daemon if it reads the same port). A summary goes to stderr. Exit 3 when
    the port is missing, busy or not a serial device.

    \b
    Examples:
      koprogo-node sensors capture-p1 /dev/ttyUSB0 --seconds 60 --out p1.txt
      koprogo-node sensors decode p1 p1.txt
    """
    from .sensors_live import run_capture

    settings = P1Source(path=port, baudrate=int(baud), serial_format=serial_format)
    run_capture(settings, out_path, seconds or None, as_json)


def _valid_filters(topics: tuple[str, ...]) -> tuple[str, ...]:
    for topic in topics:
        problem = topic_filter_problem(topic)
        if problem:
            raise click.BadParameter(f"{topic!r}: {problem}", param_hint="--topic")
    return topics


@sensors.command("listen-mqtt")
@click.option(
    "--topic",
    "topics",
    multiple=True,
    metavar="FILTER",
    help="Topic filter, + and # allowed (repeatable) [default: the configured"
    " subscriptions, else #].",
    callback=lambda ctx, param, topics: _valid_filters(topics),
)
@click.option(
    "--seconds",
    type=FiniteRange(min=0),
    default=0.0,
    help="Stop after this many seconds [default: until Ctrl-C].",
)
@click.option("--source", "source_name", metavar="NAME", help="Which mqtt source.")
@click.option("--host", help="Broker host instead of the configured one.")
@click.option("--port", type=click.IntRange(1, 65535), help="Broker port.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per message.")
@click.option(
    "--config",
    "config_path",
    metavar="PATH",
    envvar="KOPROGO_CONFIG",
    help="TOML configuration.",
)
@click.pass_obj
def listen_mqtt(
    obj: Context,
    topics: tuple[str, ...],
    seconds: float,
    source_name: str | None,
    host: str | None,
    port: int | None,
    as_json: bool,
    config_path: str | None,
) -> None:
    """Print the messages a broker sends, and the readings the node maps them to.

    Connects with the configured mqtt source's address, TLS and credentials
    (127.0.0.1:1883 when there is none). Exit 3 when the broker cannot be
    reached or refuses the credentials.

    \b
    Examples:
      koprogo-node sensors listen-mqtt --seconds 60
      koprogo-node sensors listen-mqtt --host 192.168.1.10 --topic 'tele/#'
    """
    from ..daemon.systime import system_clock
    from .sensors_live import run_listen

    obj.override(config_path, None)
    cfg = obj.config()
    source = _mqtt_source(cfg.sources, source_name)
    if host or port:
        source = replace(source, host=host or source.host, port=port or source.port)
    topics = topics or tuple(s.topic for s in source.subscriptions) or ("#",)
    clock = system_clock(cfg.time.trust)
    run_listen(source, topics, seconds or None, clock, as_json)


def _mqtt_source(sources, name: str | None) -> MqttSource:
    """The configured mqtt source named `name` (default: the first), or defaults."""
    found = [s for s in sources if isinstance(s, MqttSource)]
    if name is not None:
        found = [s for s in found if s.name == name]
        if not found:
            fail(f"no mqtt source named {name!r} in the configuration", 2)
    return found[0] if found else MqttSource(name="mqtt")


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
