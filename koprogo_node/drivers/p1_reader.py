"""The P1 source: a serial port (or a file of telegrams) into a P1Decoder.

Reads happen in a worker thread with a short timeout, so the event loop never
blocks and cancellation is prompt; pyserial's errors become SensorUnavailable
here, and nothing else imports serial.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import serial
import structlog

from ..config.model import P1Source
from ..core.clock import Clock, Stamp
from ..core.readings import Quality, Reading
from ..errors import SensorUnavailable
from .base import Sink
from .p1 import FILE_CHUNK_BYTES, Output, P1Decoder

log = structlog.get_logger(__name__)

READ_TIMEOUT_S = 0.2
SILENT_AFTER_S = 30.0

# A meter's clock this far from a synchronised system clock is wrong (stuck
# in the past after a firmware fault, or never set).
METER_CLOCK_SKEW_S = 3600.0


def correct_meter_clock(
    items: list[Output], stamp: Stamp
) -> tuple[list[Output], float]:
    """Shift meter-stamped readings onto a trusted clock if the meter's is off.

    Returns the items and the offset applied (0.0 when none was needed). The
    offset comes from the newest meter stamp; M-Bus capture times keep their
    distance to it. Shifted readings are flagged ESTIMATED.
    """
    meter_stamped = [o for o in items if isinstance(o, Reading) and o.clock_trusted]
    if not stamp.trusted or not meter_stamped:
        return items, 0.0
    offset = stamp.ts - max(r.ts for r in meter_stamped)
    if abs(offset) <= METER_CLOCK_SKEW_S:
        return items, 0.0
    shifted = [
        replace(o, ts=o.ts + offset, quality=Quality.ESTIMATED)
        if isinstance(o, Reading) and o.clock_trusted
        else o
        for o in items
    ]
    return shifted, offset


class MeterClockCheck:
    """Applies correct_meter_clock and logs when a meter's clock goes wrong."""

    def __init__(self, source: str) -> None:
        self._source = source
        self._off = False

    def check(self, items: list[Output], stamp: Stamp) -> list[Output]:
        """Correct `items` if needed, logging the transitions."""
        corrected, offset = correct_meter_clock(items, stamp)
        has_meter_time = any(isinstance(o, Reading) and o.clock_trusted for o in items)
        if offset and not self._off:
            log.warning(
                "p1_meter_clock_off",
                source=self._source,
                offset_s=round(offset),
                action="restamped, estimated",
            )
        elif not offset and self._off and has_meter_time:
            log.info("p1_meter_clock_back", source=self._source)
        if has_meter_time:
            self._off = bool(offset)
        return corrected


class P1Reader:
    """The source for one P1 port, or for a file of recorded telegrams.

    A regular file is read to its end, then `run` returns. Anything else is
    opened as a serial device and read until cancelled; serial failures
    raise `SensorUnavailable`. `port_open` and the decoder's counters are
    for status display.
    """

    def __init__(self, config: P1Source) -> None:
        self.config = config
        self.name = config.name
        self.decoder = P1Decoder.from_config(config)
        self.port_open = False
        self._telegrams_seen = 0
        self._last_telegram_mono = 0.0
        self._receiving = False
        self._silence_logged = False
        self._meter_clock = MeterClockCheck(self.name)

    async def run(self, sink: Sink, clock: Clock) -> None:
        """Read telegrams into `sink` until the file ends or forever."""
        path = Path(self.config.path)
        if await asyncio.to_thread(path.is_file):
            await self._run_file(path, sink, clock)
        else:
            await self._run_port(sink, clock)

    async def _run_file(self, path: Path, sink: Sink, clock: Clock) -> None:
        """Decode a recording to its end."""
        try:
            with await asyncio.to_thread(open, path, "rb") as file:
                while chunk := await asyncio.to_thread(file.read, FILE_CHUNK_BYTES):
                    await self._deliver(self.decoder.feed(chunk, clock.stamp()), sink)
        except OSError as exc:
            raise SensorUnavailable(f"cannot read {path}: {exc}") from exc
        await self._deliver(self.decoder.flush(clock.stamp()), sink)
        log.info(
            "p1_file_done",
            source=self.name,
            path=str(path),
            telegrams=self.decoder.telegrams,
            skipped=self.decoder.skipped,
            rejects=dict(self.decoder.rejects),
        )

    async def _run_port(self, sink: Sink, clock: Clock) -> None:
        """Read the serial port until cancelled or lost."""
        port = await asyncio.to_thread(open_port, self.config)
        self.port_open = True
        stamp = clock.stamp()
        self._last_telegram_mono = stamp.mono_s
        self._receiving = self._silence_logged = False
        # A telegram cut off when the port was last lost must not be glued to
        # the first bytes read now.
        await self._deliver(self.decoder.flush(stamp), sink)
        log.info(
            "p1_opened",
            source=self.name,
            path=self.config.path,
            baudrate=self.config.baudrate,
            serial_format=self.config.serial_format,
        )
        try:
            while True:
                data = await self._read_chunk(port)
                stamp = clock.stamp()
                if data:
                    items = self._meter_clock.check(
                        self.decoder.feed(data, stamp), stamp
                    )
                    await self._deliver(items, sink)
                self._note_activity(stamp.mono_s)
        finally:
            port.close()
            self.port_open = False
            log.info("p1_closed", source=self.name, path=self.config.path)

    async def _read_chunk(self, port: serial.Serial) -> bytes:
        """Read what has arrived, waiting at most READ_TIMEOUT_S for a byte."""
        pending = asyncio.ensure_future(
            asyncio.to_thread(read_port, port, self.config.path)
        )
        try:
            return await asyncio.shield(pending)
        except asyncio.CancelledError:
            # Closing the port under a running read could hit a reused file
            # descriptor: wake the read and let it finish first.
            port.cancel_read()
            await asyncio.wait({pending}, timeout=5 * READ_TIMEOUT_S)
            if pending.done() and not pending.cancelled():
                pending.exception()  # retrieved, so asyncio does not warn
            raise

    async def _deliver(self, items: list[Output], sink: Sink) -> None:
        """Hand readings and rejects to the sink."""
        readings = []
        for item in items:
            if isinstance(item, Reading):
                readings.append(item)
            else:
                sink.reject(item)  # counted and logged by the ingest stats
        await sink.put_many(readings)

    def _note_activity(self, mono_s: float) -> None:
        """Log when telegrams start, stop for SILENT_AFTER_S, and resume."""
        seen = self.decoder.telegrams + self.decoder.skipped
        if seen != self._telegrams_seen:
            self._telegrams_seen = seen
            self._last_telegram_mono = mono_s
            self._silence_logged = False
            if not self._receiving:
                self._receiving = True
                log.info("p1_receiving", source=self.name)
        elif not self._silence_logged:
            silent_s = mono_s - self._last_telegram_mono
            if silent_s > SILENT_AFTER_S:
                self._receiving = False
                self._silence_logged = True
                log.warning("p1_silent", source=self.name, silent_s=round(silent_s))


def open_port(config: P1Source) -> serial.Serial:
    """Open a P1 serial device with its settings (blocking; run off the loop).

    The port is locked for exclusive use, so a second reader is refused
    rather than sharing the bytes.
    """
    bits, parity, stop = config.serial_format
    try:
        return serial.Serial(
            port=config.path,
            baudrate=config.baudrate,
            bytesize=int(bits),
            parity=parity,
            stopbits=int(stop),
            timeout=READ_TIMEOUT_S,
            exclusive=True,
        )
    except (serial.SerialException, OSError) as exc:
        raise SensorUnavailable(f"cannot open P1 port {config.path}: {exc}") from exc


def read_port(port: serial.Serial, path: str) -> bytes:
    """Read what has arrived on an open port (blocking, see `_read_some`)."""
    try:
        return _read_some(port)
    except (serial.SerialException, OSError) as exc:
        raise SensorUnavailable(f"cannot read P1 port {path}: {exc}") from exc


def _read_some(port: serial.Serial) -> bytes:
    """Wait for one byte (up to the port timeout), then take what is buffered."""
    data = port.read(1)
    if data and port.in_waiting:
        data += port.read(port.in_waiting)
    return data
