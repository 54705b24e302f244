"""A simulated building as a source, for the demo and for benchmarks.

Simulated time starts at `start` (or yesterday 00:00 in Brussels) and moves
`step_s` per tick; a tick comes every `step_s / speed` real seconds, paced on
the event loop's clock so that it does not drift. Simulated stamps are
trusted: they are the simulation's own clock, not the Pi's.

emit = "readings" puts readings straight into the sink, a tick at a time
(one `put_many` when the sink offers it). Each tick yields
`5 * lots + 2 + extra_gauges` readings (with speed 1 and step_s 1, that many
sensors at one reading a second), named, NN zero-padded to two digits or
three from 100 lots:

    {name}.lotNN.import_t1     kWh counter, tariff 1 (day)
    {name}.lotNN.import_t2     kWh counter, tariff 2 (night, weekend)
    {name}.lotNN.export_t1     kWh counter
    {name}.lotNN.export_t2     kWh counter
    {name}.lotNN.power_import  kW gauge, net import at that instant
    {name}.water               m3 counter, the building's water meter
    {name}.gas or {name}.heat  m3 or GJ counter, after `heating`
    {name}.gaugeNN             degC gauge, extra load (readings mode only)

emit = "p1" opens one pseudo-terminal per lot and one for the common parts
(whose telegram carries gas or heat on M-Bus channel 1 and water on channel
2) and writes each meter's telegram to it at every tick; the source puts
nothing into the sink. `device_paths` maps `lot01`.. and `common` to the
terminals' paths, for P1 readers to open; `wait_device_paths()` returns it as
soon as the terminals exist, before the first tick.
"""

from __future__ import annotations

import asyncio
import math
import os
import sys
import tty
from array import array
from datetime import datetime, timedelta

import structlog

from ..config.model import SimulatedSource
from ..core.clock import Clock
from ..core.readings import Kind, Reading
from ..errors import ConfigError, SensorUnavailable
from ..sim import (
    BRUSSELS,
    COMMON,
    Building,
    BuildingSnapshot,
    BuildingSpec,
    building_frames,
    encode_telegram,
    lot_key,
    room_temperature_c,
)
from ..sim.profile import (
    compute_year_profile,
    has_profile,
    keep_profile,
    profile_bytes,
)
from .base import Sink

log = structlog.get_logger(__name__)

# Further behind than this, the pacing starts again from now instead of
# firing a burst of late ticks.
_MAX_LAG_S = 1.0

_LOT_CHANNELS = (
    ("import_t1", "kWh", Kind.COUNTER),
    ("import_t2", "kWh", Kind.COUNTER),
    ("export_t1", "kWh", Kind.COUNTER),
    ("export_t2", "kWh", Kind.COUNTER),
    ("power_import", "kW", Kind.GAUGE),
)


def sensor_names(config: SimulatedSource) -> tuple[str, ...]:
    """Return the sensors of readings mode, in the order of each tick."""
    lots = [
        f"{config.name}.{lot_key(n, config.lots)}.{channel}"
        for n in range(1, config.lots + 1)
        for channel, _, _ in _LOT_CHANNELS
    ]
    width = max(2, len(str(config.extra_gauges)))
    gauges = [
        f"{config.name}.gauge{n:0{width}d}" for n in range(1, config.extra_gauges + 1)
    ]
    building = [f"{config.name}.water", f"{config.name}.{config.heating}"]

    return (*lots, *building, *gauges)


def start_time(config: SimulatedSource, now_ts: float) -> float:
    """Return the simulated start: `config.start`, or yesterday 00:00 local."""
    if config.start:
        start = _parse_start(config)
        if start.tzinfo is None:
            start = start.replace(tzinfo=BRUSSELS)
        return start.timestamp()
    today = datetime.fromtimestamp(now_ts, BRUSSELS).date()
    yesterday = today - timedelta(days=1)

    return datetime(
        yesterday.year, yesterday.month, yesterday.day, tzinfo=BRUSSELS
    ).timestamp()


def _parse_start(config: SimulatedSource) -> datetime:
    return _parse_time(config, "start")


def _parse_time(config: SimulatedSource, key: str) -> datetime:
    """Parse the ISO time in `key`; a time without zone is Brussels time."""
    text = getattr(config, key)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(
            f"{key} of source {config.name!r} must be an ISO date-time such as "
            f"2025-01-14T00:00, got {text!r}"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=BRUSSELS)


class SimulatedBuilding:
    """Source that plays a simulated building, as readings or P1 telegrams."""

    def __init__(self, config: SimulatedSource) -> None:
        self.name = config.name
        self.config = config
        for key in ("start", "resume"):
            if getattr(config, key):
                _parse_time(config, key)  # fail at start-up, not at the first run
        self._ports: dict[str, PtyPort] = {}
        self._ready = asyncio.Event()
        self._dropping = False
        self.ticks = 0

    @property
    def device_paths(self) -> dict[str, str]:
        """Pseudo-terminal paths by meter (`lot01`.., `common`) while running."""
        if not self._ready.is_set():
            return {}
        return {key: port.path for key, port in self._ports.items()}

    async def wait_device_paths(self) -> dict[str, str]:
        """Wait until the pseudo-terminals exist and return their paths."""
        await self._ready.wait()
        return self.device_paths

    @property
    def dropped(self) -> dict[str, int]:
        """Telegrams dropped by meter because nobody read its terminal."""
        return {key: port.dropped for key, port in self._ports.items()}

    async def run(self, sink: Sink, clock: Clock) -> None:
        """Play the building until cancelled."""
        start_ts = start_time(self.config, clock.stamp().ts)
        first_year = datetime.fromtimestamp(start_ts, BRUSSELS).year
        await load_profiles((first_year, first_year + 1))
        building = Building(
            BuildingSpec(
                lots=self.config.lots,
                seed=self.config.seed,
                start_ts=start_ts,
                water_leak_l_per_h=self.config.water_leak_l_per_h,
                water_leak_start_h=self.config.water_leak_start_h,
            )
        )
        if self.config.emit == "readings":
            await self._emit_readings(building, sink)
        else:
            await self._emit_telegrams(building)

    async def _emit_readings(self, building: Building, sink: Sink) -> None:
        channels = list(zip(sensor_names(self.config), _units(self.config)))
        ticker = _Ticker(self.config.step_s / self.config.speed)
        first = _first_tick(self.config, building.spec.start_ts)
        while True:
            tick = first + await ticker.next()
            ts = building.spec.start_ts + tick * self.config.step_s
            values = _values(building.advance(ts), self.config)
            await _deliver(
                sink,
                [
                    Reading(name, ts, value, unit, kind)
                    for (name, (unit, kind)), value in zip(channels, values)
                ],
            )
            self.ticks += 1

    async def _emit_telegrams(self, building: Building) -> None:
        lots = self.config.lots
        keys = [lot_key(n, lots) for n in range(1, lots + 1)]
        self._ports = _open_ports([*keys, COMMON])
        self._dropping = False
        try:
            self._ready.set()
            log.info("sim_p1_ready", source=self.name, ports=len(self._ports))
            ticker = _Ticker(self.config.step_s / self.config.speed)
            first = _first_tick(self.config, building.spec.start_ts)
            while True:
                tick = first + await ticker.next()
                ts = building.spec.start_ts + tick * self.config.step_s
                self._send_all(building.advance(ts))
                self.ticks += 1
        finally:
            self._ready.clear()
            for port in self._ports.values():
                port.close()

    def _send_all(self, snapshot: BuildingSnapshot) -> None:
        frames = building_frames(snapshot, self.config.seed, self.config.heating)
        for key, frame in frames.items():
            port = self._ports[key]
            if not port.send(encode_telegram(frame)) and not self._dropping:
                # Once per run: the usual cause, no reader on any port, would
                # otherwise log one line per meter.
                self._dropping = True
                log.info("sim_p1_dropping", source=self.name, meter=key, path=port.path)


async def _deliver(sink: Sink, readings: list[Reading]) -> None:
    """Hand over one tick's readings, as one item if the sink takes batches."""
    put_many = getattr(sink, "put_many", None)
    if put_many is not None:
        await put_many(readings)
        return
    for reading in readings:
        await sink.put(reading)


# Run in a child Python: writes each year's profile as native doubles.
_PROFILE_CHILD = """
import sys
from koprogo_node.sim.profile import compute_year_profile
for year in sys.argv[1:]:
    sys.stdout.buffer.write(compute_year_profile(int(year)).tobytes())
"""


async def load_profiles(years: tuple[int, ...]) -> None:
    """Compute the years' load profiles in a child process.

    demandlib needs pandas, which would add some 40 MB to the daemon for
    good; a child process that exits takes that memory with it. Should the
    child fail, the profiles are computed here, off the loop. A later year
    is computed in this process, should a run ever get that far.
    """
    missing = [year for year in years if not has_profile(year)]
    if not missing:
        return
    try:
        raw = await _run_profile_child(missing)
    except (OSError, RuntimeError) as exc:
        log.info("sim_profile_in_process", reason=str(exc))
        for year in missing:
            keep_profile(year, await asyncio.to_thread(compute_year_profile, year))
        return
    offset = 0
    for year in missing:
        keep_profile(year, array("d", raw[offset : offset + profile_bytes(year)]))
        offset += profile_bytes(year)


async def _run_profile_child(years: list[int]) -> bytes:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _PROFILE_CHILD,
        *map(str, years),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        out, err = await child.communicate()
    except asyncio.CancelledError:
        child.kill()
        await child.wait()
        raise
    if child.returncode != 0:
        last_line = err.decode(errors="replace").strip().splitlines()[-1:]
        raise RuntimeError(f"profile process failed: {last_line}")
    expected = sum(profile_bytes(year) for year in years)
    if len(out) != expected:
        raise RuntimeError(f"profile process wrote {len(out)} bytes, not {expected}")

    return out


def _units(config: SimulatedSource) -> list[tuple[str, Kind]]:
    lot = [(unit, kind) for _, unit, kind in _LOT_CHANNELS] * config.lots
    heating_unit = "GJ" if config.heating == "heat" else "m3"
    gauges = [("degC", Kind.GAUGE)] * config.extra_gauges
    return [*lot, ("m3", Kind.COUNTER), (heating_unit, Kind.COUNTER), *gauges]


def _values(snapshot: BuildingSnapshot, config: SimulatedSource) -> list[float]:
    """Return one value per sensor name, registers at a meter's resolution."""
    values: list[float] = []
    for meter in snapshot.lots:
        values += (
            round(meter.import_kwh[0], 3),
            round(meter.import_kwh[1], 3),
            round(meter.export_kwh[0], 3),
            round(meter.export_kwh[1], 3),
            round(meter.power_import_kw, 3),
        )
    heating = snapshot.heat_gj if config.heating == "heat" else snapshot.gas_m3
    values += (round(snapshot.water_m3, 3), round(heating, 3))
    values += (
        round(room_temperature_c(config.seed, n, snapshot.ts), 2)
        for n in range(1, config.extra_gauges + 1)
    )
    return values


def _first_tick(config: SimulatedSource, start_ts: float) -> int:
    """Index of the first tick to emit: 0, or the first at or after `resume`.

    The meters are simulated from `start` all the same, so a run resumed
    after an earlier one continues its registers instead of rewinding them.
    """
    if not config.resume:
        return 0
    resume_ts = _parse_time(config, "resume").timestamp()
    return max(0, math.ceil((resume_ts - start_ts) / config.step_s))


class _Ticker:
    """Paces ticks `interval_s` apart on the loop's clock, without drift."""

    def __init__(self, interval_s: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._interval_s = interval_s
        self._origin = self._loop.time()
        self._count = 0

    async def next(self) -> int:
        """Wait for the next tick and return its number; tick 0 is now."""
        due = self._origin + self._count * self._interval_s
        lag_s = self._loop.time() - due
        if lag_s > _MAX_LAG_S:
            self._origin += lag_s
            due += lag_s
        # Even when already due, sleep(0) lets other tasks run.
        await asyncio.sleep(max(0.0, due - self._loop.time()))
        self._count += 1
        return self._count - 1


def _open_ports(keys: list[str]) -> dict[str, PtyPort]:
    ports: dict[str, PtyPort] = {}
    try:
        for key in keys:
            ports[key] = PtyPort()
    except OSError as exc:
        for port in ports.values():
            port.close()
        raise SensorUnavailable(f"cannot open a pseudo-terminal: {exc}") from exc
    return ports


class PtyPort:
    """A pseudo-terminal that one simulated meter writes its telegrams to.

    Writes never block. A telegram the kernel takes only in part waits here
    and goes first next time; a telegram that finds one still waiting is
    dropped and counted. So nothing piles up beyond the kernel's own buffer
    and one telegram, and a reader never sees half a telegram.
    """

    def __init__(self) -> None:
        self._master, self._slave = os.openpty()
        try:
            tty.setraw(self._slave)  # bytes as sent: no CRLF mapping, no echo
            os.set_blocking(self._master, False)
            self.path = os.ttyname(self._slave)
        except OSError:
            self.close()
            raise
        self._pending = b""
        self.sent = 0
        self.dropped = 0

    def send(self, telegram: bytes) -> bool:
        """Queue one telegram; return False if it was dropped."""
        if self._pending and not self._flush():
            self.dropped += 1
            return False
        self._pending = telegram
        self._flush()
        self.sent += 1
        return True

    def _flush(self) -> bool:
        try:
            written = os.write(self._master, self._pending)
        except BlockingIOError:
            return False
        except OSError as exc:
            raise SensorUnavailable(f"cannot write to {self.path}: {exc}") from exc
        self._pending = self._pending[written:]
        return not self._pending

    def close(self) -> None:
        """Close both ends; a reader still attached sees the line hang up."""
        fds, self._master, self._slave = (self._master, self._slave), -1, -1
        for fd in fds:
            if fd >= 0:
                os.close(fd)
