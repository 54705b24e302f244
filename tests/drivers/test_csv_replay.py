"""CSV replay: the real NAB series, bad rows, pacing, rebase and loop."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from koprogo_node.config.model import CsvSource
from koprogo_node.core.clock import Clock
from koprogo_node.core.readings import Kind
from koprogo_node.drivers.csv_replay import CsvReplay
from koprogo_node.errors import ConfigError, SensorUnavailable
from koprogo_node.sim import sample_csv

from ..fakes import FakeSink

NAB_MACHINE = (
    Path(__file__).parents[1]
    / "data/nab/data/realKnownCause/machine_temperature_system_failure.csv"
)
WALL_TS = 1_750_000_000.0
MONO_S = 5_000.0


def clock(trusted: bool = True) -> Clock:
    """A clock stopped at WALL_TS / MONO_S."""
    return Clock(
        wall=lambda: WALL_TS, mono=lambda: MONO_S, is_synchronised=lambda: trusted
    )


def utc(*fields: int) -> float:
    """Return the Unix time of a UTC wall time."""
    return datetime(*fields, tzinfo=timezone.utc).timestamp()


def write_csv(tmp_path: Path, text: str) -> str:
    """Write a CSV file and return its path."""
    path = tmp_path / "series.csv"
    path.write_text(text, encoding="utf-8")
    return str(path)


async def replay_until(source: CsvReplay, sink: FakeSink) -> None:
    """Run a looping source until the sink is full, then cancel it."""
    task = asyncio.create_task(source.run(sink, clock()))
    await asyncio.wait_for(sink.full.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_nab_machine_temperature_replays_every_row_at_speed_0() -> None:
    """All 22,695 rows of the real NAB file arrive, first and last intact."""
    config = CsvSource(
        name="machine", path=str(NAB_MACHINE), sensor="temp", unit="degF", speed=0
    )
    sink = FakeSink()

    await CsvReplay(config).run(sink, clock())

    assert len(sink.readings) == 22_695
    assert sink.rejects == []
    first, last = sink.readings[0], sink.readings[-1]
    assert (first.sensor, first.unit) == ("machine.temp", "degF")
    assert first.kind is Kind.GAUGE
    assert (first.ts, first.value) == (utc(2013, 12, 2, 21, 15), 73.96732207)
    assert (last.ts, last.value) == (utc(2014, 2, 19, 15, 25), 96.90386085)


async def test_nab_clock_jump_is_passed_through_as_is() -> None:
    """The file's 55-minute jump back reaches the sink: 12 repeated stamps."""
    config = CsvSource(path=str(NAB_MACHINE), speed=0)
    sink = FakeSink()

    await CsvReplay(config).run(sink, clock())

    stamps = [reading.ts for reading in sink.readings]
    backward = [(a, b) for a, b in zip(stamps, stamps[1:]) if b <= a]
    assert backward == [(utc(2014, 1, 7, 2, 55), utc(2014, 1, 7, 2, 0))]
    assert len(stamps) - len(set(stamps)) == 12


def test_shipped_demo_series_match_the_test_copy() -> None:
    """The package ships the same machine-temperature file the tests read."""
    shipped = sample_csv("machine_temperature").read_bytes()

    assert shipped == NAB_MACHINE.read_bytes()
    assert sample_csv("ambient_temperature").is_file()


async def test_bad_rows_are_rejected_and_the_rest_replayed(tmp_path: Path) -> None:
    """Each bad row becomes one reject with its reason and line; others replay."""
    path = write_csv(
        tmp_path,
        "timestamp,value\n"
        "2024-05-01 00:00:00,1.5\n"
        "2024-05-01 00:05:00\n"
        "yesterday,2.0\n"
        "2024-05-01 00:15:00,warm\n"
        "2024-05-01 00:20:00,nan\n"
        "\n"
        "2024-05-01 00:25:00,3.5,extra\n"
        "2024-05-01 00:30:00,4.5\n",
    )
    sink = FakeSink()

    await CsvReplay(CsvSource(name="r", path=path, speed=0)).run(sink, clock())

    assert [(r.ts, r.value) for r in sink.readings] == [
        (utc(2024, 5, 1, 0, 0), 1.5),
        (utc(2024, 5, 1, 0, 30), 4.5),
    ]
    assert [(r.reason, r.detail.split(":")[0]) for r in sink.rejects] == [
        ("bad_row", "line 3"),
        ("bad_timestamp", "line 4"),
        ("not_a_number", "line 5"),
        ("not_a_number", "line 6"),
        ("bad_row", "line 8"),
    ]
    assert all(r.source == "r" and r.sensor == "r.value" for r in sink.rejects)


async def test_naive_times_are_read_in_the_configured_zone(tmp_path: Path) -> None:
    """With timezone Europe/Brussels, midnight in January is 23:00 UTC."""
    path = write_csv(tmp_path, "when,kwh\n14/01/2025 00:00,12.5\n")
    config = CsvSource(
        path=path,
        timestamp_column="when",
        value_column="kwh",
        time_format="%d/%m/%Y %H:%M",
        timezone="Europe/Brussels",
        kind="counter",
        speed=0,
    )
    sink = FakeSink()

    await CsvReplay(config).run(sink, clock())

    assert sink.readings[0].ts == utc(2025, 1, 13, 23, 0)
    assert sink.readings[0].kind is Kind.COUNTER


async def test_missing_file_is_sensor_unavailable(tmp_path: Path) -> None:
    """A file that is not there raises SensorUnavailable naming it."""
    config = CsvSource(path=str(tmp_path / "absent.csv"))

    with pytest.raises(SensorUnavailable, match="absent.csv"):
        await CsvReplay(config).run(FakeSink(), clock())


async def test_missing_column_names_the_column_and_the_key(tmp_path: Path) -> None:
    """A header without the value column says which key to set."""
    path = write_csv(tmp_path, "timestamp,reading\n2024-05-01 00:00:00,1\n")

    with pytest.raises(SensorUnavailable, match="no column 'value'.*value_column"):
        await CsvReplay(CsvSource(path=path)).run(FakeSink(), clock())


async def test_empty_file_is_sensor_unavailable(tmp_path: Path) -> None:
    """A file with no header row cannot be replayed."""
    path = write_csv(tmp_path, "")

    with pytest.raises(SensorUnavailable, match="header"):
        await CsvReplay(CsvSource(path=path)).run(FakeSink(), clock())


def test_unknown_timezone_is_a_config_error() -> None:
    """A zone name that does not exist fails when the source is made."""
    with pytest.raises(ConfigError, match="Europe/Bruxelles"):
        CsvReplay(CsvSource(path="x.csv", timezone="Europe/Bruxelles"))


async def test_rebase_stamps_the_first_row_now(tmp_path: Path) -> None:
    """With rebase, the first row is stamped now and spacing is kept."""
    path = write_csv(
        tmp_path,
        "timestamp,value\n2014-01-01 00:00:00,1\n2014-01-01 00:05:00,2\n",
    )
    sink = FakeSink()

    await CsvReplay(CsvSource(path=path, rebase=True, speed=0)).run(sink, clock())

    assert [r.ts for r in sink.readings] == [WALL_TS, WALL_TS + 300]
    assert all(r.clock_trusted for r in sink.readings)


async def test_rebase_on_an_untrusted_clock_keeps_the_monotonic_instant(
    tmp_path: Path,
) -> None:
    """Rebased stamps from an unsynced clock are flagged and correctable."""
    path = write_csv(
        tmp_path,
        "timestamp,value\n2014-01-01 00:00:00,1\n2014-01-01 00:05:00,2\n",
    )
    config = CsvSource(path=path, rebase=True, speed=0)
    sink = FakeSink()

    await CsvReplay(config).run(sink, clock(trusted=False))

    assert [(r.clock_trusted, r.mono_s) for r in sink.readings] == [
        (False, MONO_S),
        (False, MONO_S + 300),
    ]


async def test_loop_moves_each_pass_on_by_the_series_length(tmp_path: Path) -> None:
    """A looped 3-row series keeps its step across passes; rejects come once."""
    path = write_csv(
        tmp_path,
        "timestamp,value\n"
        "2024-05-01 00:00:00,1\n"
        "2024-05-01 00:01:00,oops\n"
        "2024-05-01 00:01:00,2\n"
        "2024-05-01 00:02:00,3\n",
    )
    sink = FakeSink(limit=7)

    await replay_until(CsvReplay(CsvSource(path=path, loop=True, speed=0)), sink)

    start = utc(2024, 5, 1)
    assert [r.ts - start for r in sink.readings] == [0, 60, 120, 180, 240, 300, 360]
    assert [r.value for r in sink.readings] == [1, 2, 3, 1, 2, 3, 1]
    assert [r.reason for r in sink.rejects] == ["not_a_number"]


async def test_speed_paces_rows_on_real_time(tmp_path: Path) -> None:
    """At speed 10, rows one second apart come a tenth of a second apart."""
    path = write_csv(
        tmp_path,
        "timestamp,value\n"
        "2024-05-01 00:00:00,1\n"
        "2024-05-01 00:00:01,2\n"
        "2024-05-01 00:00:02,3\n"
        "2024-05-01 00:00:03,4\n",
    )
    sink = FakeSink()
    began = time.monotonic()

    await CsvReplay(CsvSource(path=path, speed=10)).run(sink, clock())

    assert len(sink.readings) == 4
    assert 0.28 <= time.monotonic() - began < 1.0
