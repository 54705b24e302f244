"""P1Reader: files of recorded telegrams and serial ports (pseudo-terminals)."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import pytest
from structlog.testing import capture_logs

from koprogo_node.config.model import P1Source
from koprogo_node.core.clock import Clock, Stamp
from koprogo_node.core.readings import Quality, Reading, Reject
from koprogo_node.drivers.p1 import P1Decoder
from koprogo_node.drivers.p1_dialects import detect_spec
from koprogo_node.drivers.p1_reader import READ_TIMEOUT_S, SILENT_AFTER_S, P1Reader
from koprogo_node.errors import SensorUnavailable

DATA = Path(__file__).parents[1] / "data" / "dsmr_parser-telegrams"
GOOD = (DATA / "be_fluvius_emucs171_gas_water.txt").read_bytes()
GOOD_2 = (DATA / "be_fluvius_emucs171_alt_gas_water.txt").read_bytes()
EDGE = DATA / "edge-cases"
BAD = (EDGE / "be_fluvius_emucs171__line_removed_crc_invalid.txt").read_bytes()
WALL_S = 1_700_000_000.0
STAMP = Stamp(ts=WALL_S, trusted=False, mono_s=0.0)


class ListSink:
    """A sink that keeps what it is given, in order."""

    def __init__(self) -> None:
        self.readings: list[Reading] = []
        self.rejects: list[Reject] = []

    async def put(self, reading: Reading) -> None:
        """Keep a reading."""
        self.readings.append(reading)

    async def put_many(self, readings: list[Reading]) -> None:
        """Keep readings taken together."""
        self.readings.extend(readings)

    def reject(self, reject: Reject) -> None:
        """Keep a reject."""
        self.rejects.append(reject)


def fixed_clock(synchronised: bool = True) -> Clock:
    """A clock stuck at WALL_S, trusted or not."""
    return Clock(
        wall=lambda: WALL_S, mono=time.monotonic, is_synchronised=lambda: synchronised
    )


async def wait_until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Poll `condition` until it holds, failing after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


@dataclass
class PtyPair:
    """Two linked pseudo-terminals: the meter writes one, the node reads the other."""

    process: subprocess.Popen
    meter: Path
    node: Path


def start_socat(folder: Path) -> PtyPair:
    """Start socat with two linked pseudo-terminals p1-in and p1-out in `folder`."""
    if shutil.which("socat") is None:
        pytest.skip("socat is not installed (Debian: apt-get install socat)")
    meter, node = folder / "p1-in", folder / "p1-out"
    process = subprocess.Popen(
        [
            "socat",
            "-d",
            "-d",
            f"pty,raw,echo=0,link={meter}",
            f"pty,raw,echo=0,link={node}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 5
    while not (meter.exists() and node.exists()):
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            pytest.fail("socat did not create its pseudo-terminals")
        time.sleep(0.02)
    return PtyPair(process, meter, node)


def stop_socat(pair: PtyPair) -> None:
    """Stop socat and wait for it to remove its links."""
    pair.process.terminate()
    pair.process.wait(timeout=5)


@pytest.fixture
def socat(tmp_path: Path) -> Iterator[Callable[[], PtyPair]]:
    """Start socat pairs on demand; all are stopped after the test."""
    pairs: list[PtyPair] = []

    def start() -> PtyPair:
        pairs.append(start_socat(tmp_path))
        return pairs[-1]

    yield start
    for pair in pairs:
        stop_socat(pair)


@pytest.fixture
def ptys(socat: Callable[[], PtyPair]) -> PtyPair:
    """A running socat pair, stopped after the test."""
    return socat()


def write(path: Path, data: bytes) -> None:
    """Write bytes into one end of the pseudo-terminal pair, as a meter would."""
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


async def test_reader_delivers_telegrams_from_a_serial_port(ptys):
    """Readings arrive from the port; the corrupt telegram is one counted reject."""
    reader = P1Reader(P1Source(path=str(ptys.node), interval_s=0))
    sink = ListSink()
    task = asyncio.create_task(reader.run(sink, fixed_clock()))
    await wait_until(lambda: reader.port_open)

    try:
        write(ptys.meter, GOOD + BAD + GOOD_2)
        await wait_until(lambda: len(sink.readings) == 20 and sink.rejects)
    finally:
        task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=2)
    assert [r.reason for r in sink.rejects] == ["crc_mismatch"]
    assert reader.decoder.rejects == {"crc_mismatch": 1}
    assert reader.decoder.telegrams == 2
    assert sink.readings[0].sensor == "p1.import_t1"
    assert (sink.readings[0].value, sink.readings[10].value) == (0.034, 301.548)
    assert not reader.port_open


async def test_cancelling_a_reader_on_an_idle_port_is_prompt(ptys):
    """A reader waiting on a silent port stops within a read timeout."""
    reader = P1Reader(P1Source(path=str(ptys.node)))
    task = asyncio.create_task(reader.run(ListSink(), fixed_clock()))
    await wait_until(lambda: reader.port_open)

    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert time.monotonic() - started < 1.0


async def test_reading_an_idle_port_does_not_block_the_event_loop(ptys):
    """While the port is silent, a 10 ms ticker is never held up by a read."""
    reader = P1Reader(P1Source(path=str(ptys.node)))
    task = asyncio.create_task(reader.run(ListSink(), fixed_clock()))
    await wait_until(lambda: reader.port_open)
    gaps = []

    for _ in range(50):
        before = time.monotonic()
        await asyncio.sleep(0.01)
        gaps.append(time.monotonic() - before)
    task.cancel()

    assert max(gaps) < 0.75 * READ_TIMEOUT_S  # a blocking read would take all of it
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_lost_port_raises_sensor_unavailable(ptys):
    """When the other end of the line goes away, run raises SensorUnavailable."""
    reader = P1Reader(P1Source(path=str(ptys.node)))
    task = asyncio.create_task(reader.run(ListSink(), fixed_clock()))
    await wait_until(lambda: reader.port_open)

    ptys.process.terminate()

    with pytest.raises(SensorUnavailable):
        await asyncio.wait_for(task, timeout=5)


async def test_missing_device_raises_sensor_unavailable(tmp_path):
    """A serial device that does not exist raises SensorUnavailable."""
    reader = P1Reader(P1Source(path=str(tmp_path / "ttyUSB7")))

    with pytest.raises(SensorUnavailable, match="ttyUSB7"):
        await reader.run(ListSink(), fixed_clock())


async def test_file_is_read_to_its_end_then_run_returns(tmp_path):
    """A recording is decoded whole, its reject counted, and run returns."""
    path = tmp_path / "capture.txt"
    path.write_bytes(GOOD + BAD + GOOD_2)
    reader = P1Reader(P1Source(path=str(path), interval_s=0))
    sink = ListSink()

    await asyncio.wait_for(reader.run(sink, fixed_clock()), timeout=5)

    assert len(sink.readings) == 20
    assert [r.reason for r in sink.rejects] == ["crc_mismatch"]
    assert reader.decoder.telegrams == 2


async def test_file_without_telegram_times_takes_the_clock(tmp_path):
    """DSMR 2.2 values are stamped by the clock, flagged when it is untrusted."""
    path = tmp_path / "dsmr22.txt"
    path.write_bytes((DATA / "nl_dsmr22_iskra_mt382.txt").read_bytes())
    reader = P1Reader(P1Source(path=str(path), spec="v2_2"))
    sink = ListSink()

    await reader.run(sink, fixed_clock(synchronised=False))

    t1 = next(r for r in sink.readings if r.sensor == "p1.import_t1")
    assert (t1.ts, t1.clock_trusted) == (WALL_S, False)
    assert t1.mono_s is not None


async def test_silent_port_is_logged_once_and_so_is_its_return(ptys):
    """No telegram for SILENT_AFTER_S: one p1_silent; the next: p1_receiving."""
    now = {"mono": 0.0}
    clock = Clock(
        wall=lambda: WALL_S, mono=lambda: now["mono"], is_synchronised=lambda: True
    )
    reader = P1Reader(P1Source(path=str(ptys.node), interval_s=0))
    sink = ListSink()

    with capture_logs() as logs:
        task = asyncio.create_task(reader.run(sink, clock))
        await wait_until(lambda: reader.port_open)
        now["mono"] = SILENT_AFTER_S + 1
        await wait_until(lambda: any(e["event"] == "p1_silent" for e in logs))
        await asyncio.sleep(3 * READ_TIMEOUT_S)
        write(ptys.meter, GOOD)
        await wait_until(lambda: any(e["event"] == "p1_receiving" for e in logs))
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    port_events = {"p1_opened", "p1_silent", "p1_receiving", "p1_closed"}
    events = [e["event"] for e in logs if e["event"] in port_events]
    assert events == ["p1_opened", "p1_silent", "p1_receiving", "p1_closed"]


async def test_telegram_cut_by_a_lost_port_is_truncated_on_reopen(socat):
    """Half a telegram before the port is lost is not glued to the next bytes."""
    first = socat()
    reader = P1Reader(P1Source(path=str(first.node), interval_s=0))
    sink = ListSink()
    task = asyncio.create_task(reader.run(sink, fixed_clock()))
    await wait_until(lambda: reader.port_open)
    write(first.meter, GOOD[:300])
    await asyncio.sleep(3 * READ_TIMEOUT_S)
    stop_socat(first)
    with pytest.raises(SensorUnavailable):
        await asyncio.wait_for(task, timeout=5)
    second = socat()

    task = asyncio.create_task(reader.run(sink, fixed_clock()))
    try:
        await wait_until(lambda: reader.port_open)
        write(second.meter, GOOD[300:] + GOOD)
        await wait_until(lambda: len(sink.readings) == 10)
    finally:
        task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task
    assert [r.reason for r in sink.rejects] == ["truncated", "junk"]


SHARED_READER = (
    Path(__file__).parents[2] / ".." / "shared" / "data" / "dsmr-reader-telegrams"
)


def _telegram_files() -> list[Path]:
    files = sorted(DATA.glob("*.txt")) + sorted(EDGE.glob("*.txt"))
    if SHARED_READER.is_dir():  # CC BY-NC: read in place, never copied
        files += sorted(SHARED_READER.glob("*.txt"))
    return files


def _by_dialect() -> dict[str, bytes]:
    """Every recording, grouped into one stream per detected dialect."""
    streams: dict[str, bytes] = {}
    for path in _telegram_files():
        data = path.read_bytes()
        # A real meter ends each telegram with CRLF; some recordings stop at
        # the CRC, which over a live port would wait for the next telegram.
        streams[detect_spec(data)] = (
            streams.get(detect_spec(data), b"") + data + b"\r\n"
        )
    return streams


def _write_byte_by_byte(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
    try:
        for i in range(len(data)):
            os.write(fd, data[i : i + 1])
    finally:
        os.close(fd)


def _summary(out: list) -> list[tuple]:
    """What must agree: readings (stamp when the meter gave it) and rejects."""
    return [
        (o.sensor, o.value, o.ts if o.clock_trusted else None)
        if isinstance(o, Reading)
        else ("reject", o.reason)
        for o in out
    ]


async def test_every_recording_byte_by_byte_through_a_pty_matches_the_decoder(
    tmp_path,
):
    """Each shared telegram, written a byte at a time, reads as its file decodes."""
    for spec, stream in _by_dialect().items():
        folder = tmp_path / spec
        folder.mkdir()
        pair = start_socat(folder)
        try:
            sink, expected = await _read_through_pty(pair, spec, stream)
        finally:
            stop_socat(pair)

        got = _summary(sink.readings) + _summary(sink.rejects)
        assert sorted(got, key=repr) == sorted(_summary(expected), key=repr), spec


async def _read_through_pty(pair: PtyPair, spec: str, stream: bytes):
    """Write `stream` a byte at a time into the pty; return what was read."""
    reader = P1Reader(P1Source(path=str(pair.node), spec=spec, interval_s=0))
    sink = ListSink()
    expected = decode_file_bytes(stream, spec)
    clock = fixed_clock(synchronised=False)  # as STAMP: untrusted
    task = asyncio.create_task(reader.run(sink, clock))
    try:
        await wait_until(lambda: reader.port_open)
        await asyncio.to_thread(_write_byte_by_byte, pair.meter, stream)
        wanted = len(expected)
        await wait_until(lambda: len(sink.readings) + len(sink.rejects) >= wanted, 10)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return sink, expected


def decode_file_bytes(data: bytes, spec: str) -> list:
    """What the decoder makes of `data` as a live port would: no end of input."""
    return P1Decoder(spec=spec).feed(data, STAMP)


async def test_meter_clock_stuck_in_the_past_is_restamped_and_flagged(ptys):
    """With a synchronised system clock, a meter 3 years behind is restamped."""
    reader = P1Reader(P1Source(path=str(ptys.node), interval_s=0))
    sink = ListSink()
    task = asyncio.create_task(reader.run(sink, fixed_clock()))
    await wait_until(lambda: reader.port_open)

    with capture_logs() as logs:
        write(ptys.meter, GOOD)
        await wait_until(lambda: len(sink.readings) >= 8)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    t1 = next(r for r in sink.readings if r.sensor == "p1.import_t1")
    gas = next(r for r in sink.readings if r.sensor == "p1.gas")
    assert (t1.ts, t1.quality) == (WALL_S, Quality.ESTIMATED)
    assert t1.value == 0.034  # the value itself is the meter's
    assert WALL_S - gas.ts == 491.0  # 13:54:09 telegram, 13:45:58 gas capture
    assert [e["event"] for e in logs].count("p1_meter_clock_off") == 1
