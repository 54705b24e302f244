"""Replay a CSV file of timestamped values as readings of one sensor.

The file starts with a header row naming its columns. `timestamp_column` is
read with `time_format` (naive times are wall time in `timezone`) and
`value_column` as a number. A row that cannot become a reading is rejected
with its line number, for one of three reasons, and the replay goes on:

    bad_row        wrong number of fields, or a line the csv module refuses
    bad_timestamp  the time does not match `time_format`
    not_a_number   the value is not a number, or is NaN or infinite

Blank lines are skipped. Out-of-order and repeated timestamps are passed on
as they are: counting them is the ingest stage's job.

Rows come out `speed` times faster than their timestamps advance (speed 0:
as fast as the sink takes them). `rebase` shifts every stamp so that the
first row is stamped now. `loop` starts again at the end, each pass shifted
by the length of the series (first to last stamp plus the usual step between
rows) so that time keeps increasing; rejects are reported on the first pass
only, since later passes read the same rows.
"""

from __future__ import annotations

import asyncio
import csv
import math
import statistics
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Iterable, Iterator
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import structlog

from ..config.model import CsvSource
from ..core.clock import Clock, Stamp
from ..core.readings import Kind, Reading, Reject
from ..errors import ConfigError, SensorUnavailable
from .base import Sink

log = structlog.get_logger(__name__)

# Rows that are already due go out back to back; hand the loop to other
# tasks this often meanwhile.
_YIELD_EVERY_ROWS = 500
_DETAIL_CHARS = 60


@dataclass(frozen=True, slots=True)
class Row:
    """One good row: Unix time and value, with its line number."""

    line: int
    ts: float
    value: float


@dataclass(frozen=True, slots=True)
class Series:
    """A parsed file: rows and rejects in file order."""

    entries: tuple[Row | Reject, ...]
    first_ts: float  # stamp of the first good row
    period_s: float  # how far each `loop` pass moves the stamps

    @property
    def rows(self) -> int:
        """Number of good rows."""
        return sum(1 for entry in self.entries if isinstance(entry, Row))


class CsvReplay:
    """Source that replays one column of a CSV file as readings."""

    def __init__(self, config: CsvSource) -> None:
        self.name = config.name
        self.config = config
        self.sensor = f"{config.name}.{config.sensor}"
        self._zone = _zone(config)
        self._kind = Kind(config.kind)

    async def run(self, sink: Sink, clock: Clock) -> None:
        """Replay the file; return at its end unless `loop` is set."""
        series = await asyncio.to_thread(self.load)
        rejects = len(series.entries) - series.rows
        log.info(
            "csv_replay",
            source=self.name,
            path=self.config.path,
            rows=series.rows,
            rejects=rejects,
        )
        anchor = clock.stamp() if self.config.rebase else None
        await self._replay(series, sink, anchor)

    def load(self) -> Series:
        """Read and parse the whole file (blocking: run it off the loop).

        The file is held in memory, about 150 bytes a row: fine for replays
        of up to a few hundred thousand rows.
        """
        try:
            with open(self.config.path, encoding="utf-8-sig", newline="") as file:
                return parse_csv(file, self.config, self._zone)
        except (OSError, UnicodeDecodeError) as exc:
            raise SensorUnavailable(
                f"cannot read CSV file {self.config.path}: {exc}"
            ) from exc

    async def _replay(self, series: Series, sink: Sink, anchor: Stamp | None) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        shift_s = anchor.ts - series.first_ts if anchor else 0.0
        sent = 0
        # With no good row, a loop would spin for ever without output.
        for lap in _laps(self.config.loop and series.rows > 0):
            lap_shift_s = shift_s + lap * series.period_s
            for entry in series.entries:
                if isinstance(entry, Reject):
                    if lap == 0:
                        sink.reject(entry)
                    continue
                series_s = entry.ts - series.first_ts + lap * series.period_s
                await self._pace(loop, started, series_s, sent)
                await sink.put(self._reading(entry.ts + lap_shift_s, entry, anchor))
                sent += 1

    async def _pace(
        self,
        loop: asyncio.AbstractEventLoop,
        started: float,
        series_s: float,
        sent: int,
    ) -> None:
        """Wait until a row `series_s` into the series is due."""
        delay = 0.0
        if self.config.speed > 0:
            delay = started + series_s / self.config.speed - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        elif sent % _YIELD_EVERY_ROWS == 0:
            await asyncio.sleep(0)

    def _reading(self, ts: float, row: Row, anchor: Stamp | None) -> Reading:
        unit, kind = self.config.unit, self._kind
        if anchor is None or anchor.trusted:
            return Reading(self.sensor, ts, row.value, unit, kind)
        # A rebased stamp is only as good as the wall clock it was taken
        # from; keep the matching monotonic instant so it can be corrected.
        mono_s = anchor.mono_s + (ts - anchor.ts)
        return Reading(
            self.sensor, ts, row.value, unit, kind, clock_trusted=False, mono_s=mono_s
        )


def parse_csv(lines: Iterable[str], config: CsvSource, zone: tzinfo) -> Series:
    """Parse CSV lines into rows and rejects (SensorUnavailable: bad header)."""
    reader = csv.reader(lines)
    header = _header(reader, config)
    parse = _RowParser(config, zone, header)
    entries: list[Row | Reject] = []
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            entries.append(parse.reject("bad_row", reader.line_num, str(exc)))
            continue
        if fields:
            entries.append(parse(fields, reader.line_num))

    return _series(entries)


def _header(reader: Iterator[list[str]], config: CsvSource) -> list[str]:
    try:
        header = [name.strip() for name in next(reader)]
    except StopIteration:
        raise SensorUnavailable(
            f"CSV file {config.path} is empty; it needs a header row"
        ) from None
    except csv.Error as exc:
        raise SensorUnavailable(f"CSV file {config.path}: {exc}") from exc
    for key in ("timestamp_column", "value_column"):
        column = getattr(config, key)
        if column not in header:
            raise SensorUnavailable(
                f"CSV file {config.path} has no column {column!r} (header: "
                f"{', '.join(header)}); set {key} of source {config.name!r}"
            )
    return header


class _RowParser:
    """Turns the fields of one row into a Row or a Reject."""

    def __init__(self, config: CsvSource, zone: tzinfo, header: list[str]) -> None:
        self._config = config
        self._zone = zone
        self._width = len(header)
        self._ts_index = header.index(config.timestamp_column)
        self._value_index = header.index(config.value_column)
        self._sensor = f"{config.name}.{config.sensor}"

    def __call__(self, fields: list[str], line: int) -> Row | Reject:
        if len(fields) != self._width:
            detail = f"{len(fields)} fields, expected {self._width}"
            return self.reject("bad_row", line, detail)
        stamp_text = fields[self._ts_index].strip()
        try:
            ts = _timestamp(stamp_text, self._config.time_format, self._zone)
        except ValueError:
            expected = self._config.time_format
            detail = f"{_clip(stamp_text)!r} does not match {expected!r}"
            return self.reject("bad_timestamp", line, detail)
        value_text = fields[self._value_index].strip()
        value = _number(value_text)
        if value is None:
            return self.reject("not_a_number", line, f"value {_clip(value_text)!r}")

        return Row(line, ts, value)

    def reject(self, reason: str, line: int, detail: str) -> Reject:
        """Return a reject of this source for `line`."""
        return Reject(
            source=self._config.name,
            reason=reason,
            detail=f"line {line}: {detail}",
            sensor=self._sensor,
        )


def _timestamp(text: str, time_format: str, zone: tzinfo) -> float:
    parsed = datetime.strptime(text, time_format)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed.timestamp()


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _clip(text: str) -> str:
    return text if len(text) <= _DETAIL_CHARS else text[:_DETAIL_CHARS] + "..."


def _series(entries: list[Row | Reject]) -> Series:
    stamps = [entry.ts for entry in entries if isinstance(entry, Row)]
    if not stamps:
        return Series(tuple(entries), first_ts=0.0, period_s=0.0)
    steps = [b - a for a, b in zip(stamps, stamps[1:]) if b > a]
    usual_step_s = statistics.median(steps) if steps else 1.0
    period_s = max(stamps) - min(stamps) + usual_step_s

    return Series(tuple(entries), first_ts=stamps[0], period_s=period_s)


def _laps(loop: bool) -> Iterator[int]:
    lap = 0
    while True:
        yield lap
        if not loop:
            return
        lap += 1


def _zone(config: CsvSource) -> tzinfo:
    try:
        return ZoneInfo(config.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"timezone of source {config.name!r} must be an IANA zone name such "
            f"as Europe/Brussels or UTC, got {config.timezone!r}"
        ) from None
