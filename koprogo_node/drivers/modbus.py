"""Modbus meters (RTU over RS-485, or TCP): registers in, readings out.

`ModbusPoller` is the source for one bus: a serial line or one TCP
connection, shared by every device configured on it. Each device is polled on
its own schedule, but requests go out one at a time with `frame_gap_ms` of
silence between frames, as RS-485 requires. Register maps come from profiles
(`modbus_profile`); decoding is pure and lives there.

A device that stops answering is retried with growing delays, marked stale
after `stale_after_s` (logged once) and retried for ever; its return is logged
once too. Only a bus that cannot be opened at all stops `run`.

Reject reasons (also counted per device in `devices_health`):

    not_available       the meter's "no value" marker (e.g. 0xFFFFFFFF)
    not_a_number        NaN or infinite float
    exception_response  the device answered with a Modbus exception
    short_response      fewer registers than asked for
    protocol            any other malformed answer

`no_answer` (timeout, lost connection) is counted but not rejected: it is the
absence of input, not bad input.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

from ..config.model import ModbusDevice, ModbusSource
from ..core.clock import Clock
from ..core.readings import Reading, Reject
from ..errors import DecodeError, SensorUnavailable
from . import modbus_profile
from .base import Sink
from .modbus_profile import Check, Group, ModbusProfile, decode_channel, decode_group

__all__ = ["DeviceHealth", "ModbusBus", "ModbusPoller", "scan"]

log = structlog.get_logger(__name__)

# pymodbus logs every failed connect and timeout at ERROR; here each becomes
# a counted, once-logged device state instead.
logging.getLogger("pymodbus").setLevel(logging.CRITICAL)

MAX_BACKOFF_S = 300.0
# A TCP gateway answers for a silent RTU device with these exception codes.
GATEWAY_NO_ANSWER = (0x0A, 0x0B)
# pymodbus renamed `slave=` to `device_id=` in 3.10; accept either release.
_READ_PARAMS = inspect.signature(AsyncModbusTcpClient.read_input_registers).parameters
_UNIT_KW = "device_id" if "device_id" in _READ_PARAMS else "slave"


@dataclass
class DeviceHealth:
    """Liveness of one device, for status display."""

    unit_id: int
    profile: str
    stale: bool = False
    polls: int = 0
    good_polls: int = 0
    last_good_ts: float | None = None
    errors: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return {
            "unit_id": self.unit_id,
            "profile": self.profile,
            "stale": self.stale,
            "polls": self.polls,
            "good_polls": self.good_polls,
            "last_good_ts": self.last_good_ts,
            "errors": dict(self.errors),
        }


class ModbusBus:
    """One serial line or TCP connection, carrying one request at a time."""

    def __init__(self, client: Any, label: str, frame_gap_s: float) -> None:
        self._client = client
        self.label = label
        self._gap_s = frame_gap_s
        self._lock = asyncio.Lock()
        self._quiet_until = 0.0

    @classmethod
    def connect_to(
        cls,
        transport: str,
        target: str,
        *,
        tcp_port: int = 502,
        baudrate: int = 9600,
        serial_format: str = "8N1",
        timeout_s: float = 1.0,
        frame_gap_ms: float = 5.0,
    ) -> ModbusBus:
        """Build (not open) the bus for a serial port or a TCP host."""
        if transport == "tcp":
            host, _, port = target.partition(":")
            client: Any = AsyncModbusTcpClient(
                host,
                port=int(port or tcp_port),
                timeout=timeout_s,
                retries=0,
                reconnect_delay=0,  # reconnection is ours, on the next request
            )
            label = f"{host}:{port or tcp_port}"
        else:
            bits, parity, stop = serial_format
            client = AsyncModbusSerialClient(
                target,
                baudrate=baudrate,
                bytesize=int(bits),
                parity=parity,
                stopbits=int(stop),
                timeout=timeout_s,
                retries=0,
                reconnect_delay=0,
            )
            label = target
        return cls(client, label, frame_gap_ms / 1000)

    @classmethod
    def from_config(cls, config: ModbusSource) -> ModbusBus:
        """Build the bus a source describes."""
        return cls.connect_to(
            config.transport,
            config.port if config.transport == "rtu" else config.host,
            tcp_port=config.tcp_port,
            baudrate=config.baudrate,
            serial_format=config.serial_format,
            timeout_s=config.timeout_s,
            frame_gap_ms=config.frame_gap_ms,
        )

    async def open(self) -> None:
        """Open the port or connection; SensorUnavailable when it cannot be."""
        try:
            opened = await self._client.connect()
        except (OSError, ModbusException) as exc:
            raise SensorUnavailable(
                f"cannot open Modbus bus {self.label}: {exc}"
            ) from exc
        if not opened:
            raise SensorUnavailable(f"cannot open Modbus bus {self.label}")

    def close(self) -> None:
        """Close the port or connection."""
        self._client.close()

    async def read(
        self, function: str, address: int, count: int, unit_id: int
    ) -> list[int]:
        """Read `count` registers; SensorUnavailable if silent, DecodeError if bad."""
        async with self._lock:
            delay = self._quiet_until - asyncio.get_running_loop().time()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                return await self._exchange(function, address, count, unit_id)
            finally:
                loop_time = asyncio.get_running_loop().time()
                self._quiet_until = loop_time + self._gap_s

    async def _exchange(
        self, function: str, address: int, count: int, unit_id: int
    ) -> list[int]:
        """One request and its answer, errors translated to ours."""
        where = f"unit {unit_id} at {address:#06x} on {self.label}"
        if not self._client.connected:
            await self.open()
        request = (
            self._client.read_input_registers
            if function == "input"
            else self._client.read_holding_registers
        )
        try:
            response = await request(address, count=count, **{_UNIT_KW: unit_id})
        except (ModbusIOException, ConnectionException, OSError) as exc:
            raise SensorUnavailable(f"no answer from {where}: {exc}") from exc
        except ModbusException as exc:
            raise DecodeError("protocol", f"{where}: {exc}") from exc
        return _registers(response, count, where)


def _registers(response: Any, count: int, where: str) -> list[int]:
    """The registers of an answer, or the error it stands for."""
    if response.isError():
        code = getattr(response, "exception_code", None)
        if code in GATEWAY_NO_ANSWER:
            raise SensorUnavailable(f"no answer from {where} (gateway code {code})")
        raise DecodeError("exception_response", f"{where}: exception code {code}")
    registers = list(getattr(response, "registers", []))
    if len(registers) != count:
        raise DecodeError("short_response", f"{where}: {len(registers)} of {count}")
    return registers


@dataclass
class _Device:
    """Runtime state of one configured device."""

    config: ModbusDevice
    profile: ModbusProfile
    health: DeviceHealth
    failures: int = 0
    last_answer_s: float = 0.0


class ModbusPoller:
    """The source for one Modbus bus and the devices on it.

    Profiles are loaded when the poller is built, so a wrong profile name is a
    ConfigError at start-up. `devices_health` maps device names to their
    `DeviceHealth`, for status display.
    """

    def __init__(self, config: ModbusSource, bus: ModbusBus | None = None) -> None:
        self.config = config
        self.name = config.name
        # The pymodbus client needs a running loop: made at the first run.
        self._bus = bus
        self._devices = [
            _Device(d, profile, DeviceHealth(d.unit_id, profile.name))
            for d in config.devices
            for profile in [modbus_profile.load(d.profile)]
        ]
        self.devices_health = {d.config.name: d.health for d in self._devices}

    async def run(self, sink: Sink, clock: Clock) -> None:
        """Poll every device into `sink` until cancelled."""
        if self._bus is None:
            self._bus = ModbusBus.from_config(self.config)
        await self._bus.open()
        log.info(
            "modbus_opened",
            source=self.name,
            bus=self._bus.label,
            devices=len(self._devices),
        )
        now = asyncio.get_running_loop().time()
        try:
            async with asyncio.TaskGroup() as group:
                for device in self._devices:
                    device.last_answer_s = now
                    group.create_task(self._poll_forever(device, sink, clock))
        finally:
            self._bus.close()
            log.info("modbus_closed", source=self.name, bus=self._bus.label)

    async def _poll_forever(self, device: _Device, sink: Sink, clock: Clock) -> None:
        """Poll one device on its schedule, backing off while it is silent."""
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            answered = await self._poll_once(device, sink, clock)
            self._note(device, answered, loop.time())
            delay = device.config.poll_s if answered else self._backoff_s(device)
            await asyncio.sleep(max(0.0, started + delay - loop.time()))

    async def _poll_once(self, device: _Device, sink: Sink, clock: Clock) -> bool:
        """Read every group of the device once; whether it answered at all."""
        device.health.polls += 1
        readings: list[Reading] = []
        answered = False
        for group in device.profile.groups:
            try:
                registers = await self._bus.read(
                    device.profile.function,
                    group.start,
                    group.count,
                    device.config.unit_id,
                )
            except SensorUnavailable as exc:
                device.health.errors["no_answer"] += 1
                log.debug(
                    "modbus_no_answer", device=self._prefix(device), error=str(exc)
                )
                break  # a silent device would only time out on the next group too
            except DecodeError as exc:
                answered = True
                self._reject(device, sink, exc.reason, exc.detail)
                continue
            answered = True
            readings.extend(self._readings(device, group, registers, sink, clock))
        if readings:
            device.health.good_polls += 1
            device.health.last_good_ts = readings[-1].ts
            await sink.put_many(readings)
        return answered

    def _readings(
        self,
        device: _Device,
        group: Group,
        registers: list[int],
        sink: Sink,
        clock: Clock,
    ) -> list[Reading]:
        """Turn one group's registers into readings, rejecting what is not a value."""
        stamp = clock.stamp()
        out = []
        for item in decode_group(group, registers, device.profile.word_order):
            sensor = f"{self._prefix(device)}.{item.channel.name}"
            if item.value is None:
                self._reject(device, sink, item.reason, f"raw {item.raw!r}", sensor)
                continue
            out.append(
                Reading(
                    sensor=sensor,
                    ts=stamp.ts,
                    value=item.value,
                    unit=item.channel.unit,
                    kind=item.channel.kind,
                    clock_trusted=stamp.trusted,
                    mono_s=stamp.mono_s,
                )
            )
        return out

    def _reject(
        self,
        device: _Device,
        sink: Sink,
        reason: str,
        detail: str,
        sensor: str | None = None,
    ) -> None:
        device.health.errors[reason] += 1
        sink.reject(
            Reject(source=self.name, reason=reason, detail=detail, sensor=sensor)
        )

    def _note(self, device: _Device, answered: bool, now_s: float) -> None:
        """Track silence; log the passage to stale and the return, once each."""
        if answered:
            if device.health.stale:
                log.info(
                    "modbus_device_back",
                    device=self._prefix(device),
                    offline_s=round(now_s - device.last_answer_s, 1),
                )
            device.health.stale = False
            device.failures = 0
            device.last_answer_s = now_s
            return
        device.failures += 1
        silent_s = now_s - device.last_answer_s
        if not device.health.stale and silent_s >= self.config.stale_after_s:
            device.health.stale = True
            log.warning(
                "modbus_device_stale",
                device=self._prefix(device),
                unit_id=device.config.unit_id,
                silent_s=round(silent_s, 1),
            )

    def _backoff_s(self, device: _Device) -> float:
        """Delay before retrying a silent device: doubling, capped."""
        poll_s = device.config.poll_s
        cap = max(poll_s, min(MAX_BACKOFF_S, self.config.stale_after_s))
        return min(cap, poll_s * 2 ** min(device.failures, 16))

    def _prefix(self, device: _Device) -> str:
        return f"{self.name}.{device.config.name}"


async def scan(
    transport: str,
    target: str,
    unit_ids: Iterable[int] = range(1, 248),
    *,
    tcp_port: int = 502,
    baudrate: int = 9600,
    serial_format: str = "8N1",
    timeout_s: float = 0.3,
    frame_gap_ms: float = 5.0,
    profiles: Sequence[ModbusProfile] | None = None,
) -> list[dict[str, Any]]:
    """List the devices answering on a bus and guess their model (best effort).

    Args:
        transport: "rtu" (serial port) or "tcp".
        target: the serial device (e.g. /dev/ttyUSB0), or a host, optionally
            "host:port".
        unit_ids: the unit ids to probe; a silent id costs `timeout_s`.
        tcp_port: the port when `target` names none.
        baudrate, serial_format: serial settings, for rtu ("8N1", "8E1", ...).
        timeout_s: how long to wait for each answer.
        frame_gap_ms: silence between frames.
        profiles: the models to try; default every profile in sensors/modbus/.

    Returns:
        One dict per answering unit id, in probing order:
        `{"unit_id": 3, "models": ["abb-b23", "abb-b24"], "also_matches":
        ["abb-b21"]}`. `models` holds the profiles passing the most
        identification checks (ties are kept: some maps are shared);
        it is empty when the device answers but matches no profile.

    Raises:
        SensorUnavailable: the port or host cannot be opened.
    """
    candidates = list(profiles) if profiles is not None else modbus_profile.load_all()
    bus = ModbusBus.connect_to(
        transport,
        target,
        tcp_port=tcp_port,
        baudrate=baudrate,
        serial_format=serial_format,
        timeout_s=timeout_s,
        frame_gap_ms=frame_gap_ms,
    )
    await bus.open()
    found = []
    try:
        for unit_id in unit_ids:
            result = await _identify(bus, unit_id, candidates)
            if result is not None:
                found.append(result)
                log.info("modbus_scan_found", unit_id=unit_id, models=result["models"])
    finally:
        bus.close()
    return found


async def _identify(
    bus: ModbusBus, unit_id: int, profiles: Sequence[ModbusProfile]
) -> dict[str, Any] | None:
    """Score every profile against one unit id; None when the id is silent."""
    probe = _Probe(bus, unit_id)
    scores = {}
    for profile in profiles:
        if not profile.identify:
            continue
        passed = [await probe.passes(profile, check) for check in profile.identify]
        if probe.silent:
            return None
        if all(passed):
            scores[profile.name] = len(passed)
    if not probe.answered:
        return None
    best = max(scores.values(), default=0)
    ranked = sorted(scores, key=lambda name: (-scores[name], name))
    return {
        "unit_id": unit_id,
        "models": [n for n in ranked if scores[n] == best],
        "also_matches": [n for n in ranked if scores[n] < best],
    }


class _Probe:
    """Reads for identification, each register range asked once."""

    def __init__(self, bus: ModbusBus, unit_id: int) -> None:
        self._bus = bus
        self._unit_id = unit_id
        self._cache: dict[tuple[str, int, int], list[int] | None] = {}
        self.answered = False
        self.silent = False  # the very first request went unanswered

    async def passes(self, profile: ModbusProfile, check: Check) -> bool:
        """Whether the device's value for `check` is readable and plausible."""
        channel = check.channel
        words = await self._read(profile.function, channel.address, channel.words)
        if words is None:
            return False
        item = decode_channel(words, channel, profile.word_order)
        return item.value is not None and check.min <= item.value <= check.max

    async def _read(self, function: str, address: int, count: int) -> list[int] | None:
        key = (function, address, count)
        if key not in self._cache:
            self._cache[key] = await self._fetch(function, address, count)
        return self._cache[key]

    async def _fetch(self, function: str, address: int, count: int) -> list[int] | None:
        if self.silent:
            return None
        try:
            words = await self._bus.read(function, address, count, self._unit_id)
        except SensorUnavailable:
            self.silent = not self.answered
            return None
        except DecodeError:
            self.answered = True
            return None
        self.answered = True
        return words
