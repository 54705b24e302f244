"""What `sensors capture-p1` and `sensors listen-mqtt` print, and how they run."""

from __future__ import annotations

import json
import sys
import time
from contextlib import closing, contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO, Iterator

import click

from ..config.model import MqttSource, P1Source
from ..core.clock import Clock
from ..core.readings import Reading, Reject
from ..drivers.mqtt_listen import Heard, Link, Listener, Mapping, decode_heard
from ..drivers.p1_capture import CaptureStats, capture
from ..drivers.p1_reader import open_port
from ..errors import SensorUnavailable
from .common import fail, iso

PROGRESS_EVERY_S = 0.5
PAYLOAD_CHARS = 160
JSON_PAYLOAD_CHARS = 4096


# capture-p1 ------------------------------------------------------------------


def run_capture(
    settings: P1Source, out_path: Path | None, seconds: float | None, as_json: bool
) -> None:
    """Record a P1 port into `out_path` (or stdout), then summarise on stderr."""
    try:
        port = open_port(settings)
    except SensorUnavailable as exc:
        fail(f"{exc}{_open_hint(str(exc))}", 3)
    progress = _Progress(settings.path, seconds)
    show = progress.show if _progress_wanted(out_path) else _ignore
    with closing(port), _output(out_path) as out:
        started = time.monotonic()
        click.echo(_capture_start(settings.path, seconds), err=True)
        try:
            stats = capture(port, settings.path, out, seconds, show)
        finally:
            progress.clear()
        elapsed_s = time.monotonic() - started
    _capture_summary(settings.path, out_path, stats, elapsed_s, as_json)


def _open_hint(message: str) -> str:
    """A likely cause, for the two failures whose wording is obscure."""
    if "exclusively lock" in message:
        return " (busy: stop the daemon or program that reads it)"
    if "Inappropriate ioctl" in message:
        return " (not a serial device)"
    return ""


@contextmanager
def _output(path: Path | None) -> Iterator[BinaryIO]:
    """The capture file, opened only once the port is, or stdout."""
    if path is None:
        yield click.get_binary_stream("stdout")
        return
    try:
        file = path.open("wb")
    except OSError as exc:
        fail(f"cannot write {path}: {exc.strerror}", 2)
    with file:
        yield file


def _capture_start(port: str, seconds: float | None) -> str:
    until = "until Ctrl-C" if seconds is None else f"for {seconds:g} s (Ctrl-C ends)"
    return f"capturing {port} {until}"


class _Progress:
    """A one-line, rewritten count on a terminal."""

    def __init__(self, port: str, seconds: float | None) -> None:
        self._port = port
        self._seconds = seconds
        self._started = time.monotonic()
        self._shown = 0.0
        self._drawn = False

    def show(self, stats: CaptureStats) -> None:
        """Rewrite the line, at most every PROGRESS_EVERY_S."""
        now = time.monotonic()
        if now - self._shown < PROGRESS_EVERY_S:
            return
        self._shown = now
        elapsed = now - self._started
        clock = f"{elapsed:.0f} s" + (
            f" of {self._seconds:g}" if self._seconds is not None else ""
        )
        line = (
            f"{clock}: {_count(stats.telegrams, 'telegram')}"
            f" ({stats.crc_bad} bad CRC), {stats.bytes_read} bytes"
        )
        click.echo(f"\r{line}\033[K", err=True, nl=False)
        self._drawn = True

    def clear(self) -> None:
        """Remove the progress line, if one was drawn."""
        if self._drawn:
            click.echo("\r\033[K", err=True, nl=False)
            self._drawn = False


def _capture_summary(
    port: str, out_path: Path | None, stats: CaptureStats, elapsed_s: float, as_json
) -> None:
    """Counts on stderr, where they do not mix with telegrams on stdout."""
    if as_json:
        about = {"port": port, "out": str(out_path) if out_path else None}
        summary = {**about, "seconds": round(elapsed_s, 1), **stats.as_dict()}
        click.echo(json.dumps(summary, sort_keys=True), err=True)
        return
    crc = f"{stats.crc_good} CRC good, {stats.crc_bad} CRC bad"
    if stats.crc_absent:
        crc += f", {stats.crc_absent} without CRC"
    lines = [
        f"captured {_count(stats.telegrams, 'telegram')} in {elapsed_s:.1f} s: {crc}",
        f"{stats.bytes_read} bytes read, {stats.skipped_bytes} bytes of garbage"
        f" skipped{_reasons(stats)}",
    ]
    if stats.telegrams == 0:
        lines.append(
            "no telegram: check the cable, that the meter's P1 port is enabled,"
            " and --baud/--serial-format (DSMR 2.2 and 3: 9600 7E1)"
        )
    elif out_path is not None:
        lines.append(f"replay with: koprogo-node sensors decode p1 {out_path}")
    for line in lines:
        click.echo(line, err=True)


def _reasons(stats: CaptureStats) -> str:
    if not stats.rejects:
        return ""
    return " (" + ", ".join(f"{n} {r}" for r, n in sorted(stats.rejects.items())) + ")"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


def _progress_wanted(out_path: Path | None) -> bool:
    """On a terminal, unless telegrams are being printed on that terminal."""
    return sys.stderr.isatty() and (out_path is not None or not sys.stdout.isatty())


def _ignore(stats: CaptureStats) -> None:
    """No progress display (stderr is not a terminal)."""


# listen-mqtt -----------------------------------------------------------------


def run_listen(
    source: MqttSource,
    topics: tuple[str, ...],
    seconds: float | None,
    clock: Clock,
    as_json: bool,
) -> None:
    """Print each message on `topics` until `seconds` pass or Ctrl-C."""
    listener = Listener(source, topics)
    listener.connect()
    click.echo(
        f"listening on {listener.where} to {', '.join(topics)}"
        + (" until Ctrl-C" if seconds is None else f" for {seconds:g} s"),
        err=True,
    )
    count = 0
    try:
        for event in listener.events(seconds):
            if isinstance(event, Link):
                _show_link(event)
                continue
            count += 1
            mapping = decode_heard(source, event, clock.stamp())
            _show_message(event, mapping, as_json)
    except KeyboardInterrupt:
        pass  # the technician's way to stop listening
    finally:
        listener.close()
    click.echo(_count(count, "message"), err=True)


def _show_link(link: Link) -> None:
    state = "reconnected" if link.up else "connection lost, retrying"
    click.echo(f"{state} ({link.reason})", err=True)


def _show_message(heard: Heard, mapping: Mapping | None, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(_message_json(heard, mapping), sort_keys=True))
        return
    moment = datetime.fromtimestamp(heard.received_s).strftime("%H:%M:%S")
    retained = " (retained)" if heard.retained else ""
    click.echo(f"{moment}  {heard.topic}{retained}  {_payload_text(heard.payload)}")
    for line in _mapping_lines(mapping):
        click.echo(f"    {line}")


def _payload_text(payload: bytes) -> str:
    """One line of at most PAYLOAD_CHARS; binary payloads shown in hex."""
    try:
        text = " ".join(payload.decode("utf-8").split())
    except UnicodeDecodeError:
        return f"<{len(payload)} bytes: {payload[:24].hex()}...>"
    if not text:
        return "<empty>"
    if len(text) <= PAYLOAD_CHARS:
        return text
    return f"{text[: PAYLOAD_CHARS - 1]}… ({len(payload)} bytes)"


def _mapping_lines(mapping: Mapping | None) -> list[str]:
    """The profile used, then the readings and rejects it maps the message to."""
    if mapping is None:
        return []
    if mapping.subscription:
        via = f"{mapping.profile}, subscribed as {mapping.subscription}"
    else:
        via = f"{mapping.profile}, auto-detected; the node does not subscribe here"
    if not mapping.out:
        return [f"{via}: no value mapped"]
    lines = [f"{via}:"]
    for item in mapping.out:
        if isinstance(item, Reading):
            lines.append(f"  {item.sensor} = {item.value:.10g} {item.unit}")
        else:
            lines.append(f"  rejected ({item.reason}): {item.detail}")
    return lines


def _message_json(heard: Heard, mapping: Mapping | None) -> dict:
    moment = datetime.fromtimestamp(heard.received_s, timezone.utc)
    text = heard.payload.decode("utf-8", "replace")
    found = {
        "received": moment.isoformat(timespec="milliseconds"),
        "topic": heard.topic,
        "retained": heard.retained,
        "payload": text[:JSON_PAYLOAD_CHARS],
        "payload_bytes": len(heard.payload),
    }
    if mapping is not None:
        found["profile"] = mapping.profile
        found["subscription"] = mapping.subscription or None
        found["readings"] = [
            _reading_json(r) for r in mapping.out if isinstance(r, Reading)
        ]
        found["rejects"] = [
            {"reason": r.reason, "detail": r.detail, "sensor": r.sensor}
            for r in mapping.out
            if isinstance(r, Reject)
        ]
    return found


def _reading_json(reading: Reading) -> dict:
    return {
        "sensor": reading.sensor,
        "value": reading.value,
        "unit": reading.unit,
        "ts": iso(round(reading.ts * 1000)),
        "clock_trusted": reading.clock_trusted,
    }
