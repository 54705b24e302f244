"""DS18B20 temperature probes through the kernel's 1-Wire sysfs files.

The kernel's w1_therm driver exposes each probe as `28-xxxxxxxxxxxx/w1_slave`:

    72 01 4b 46 7f ff 0e 10 57 : crc=57 YES
    72 01 4b 46 7f ff 0e 10 57 t=23125

The first line carries the kernel's CRC check of the scratchpad; "NO" means
the read was garbled (a long cable, a loose contact) and is rejected. 85.000
degC is the probe's power-on value, returned when a conversion did not run:
rejected too, as is the -127 / 0 of a probe that vanished mid-read.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import structlog

from ..config.model import OneWireSource
from ..core.clock import Clock, Stamp
from ..core.readings import Kind, Reading, Reject
from ..errors import SensorUnavailable
from .base import Sink

log = structlog.get_logger(__name__)

FAMILY_DS18B20 = "28-"
POWER_ON_MILLI_C = 85_000
_CRC_LINE = re.compile(r"crc=[0-9a-f]{2} (YES|NO)\s*$")
_TEMP = re.compile(r"t=(-?\d+)\s*$")


def parse_w1_slave(text: str) -> int | str:
    """Milli-degrees from a w1_slave file, or the reason it is unusable."""
    lines = text.strip().splitlines()
    if len(lines) != 2:
        return "truncated"
    crc = _CRC_LINE.search(lines[0])
    temp = _TEMP.search(lines[1])
    if crc is None or temp is None:
        return "unparsable"
    if crc.group(1) != "YES":
        return "crc_mismatch"
    milli = int(temp.group(1))
    if milli == POWER_ON_MILLI_C:
        return "power_on_value"
    if milli <= -55_000 or milli > 125_000:
        return "out_of_range"
    return milli


class OneWireThermometers:
    """The source for every DS18B20 probe on the bus."""

    def __init__(self, config: OneWireSource) -> None:
        self.name = config.name
        self.config = config

    async def run(self, sink: Sink, clock: Clock) -> None:
        """Read every probe each interval until cancelled."""
        while True:
            stamp = clock.stamp()
            outputs = await asyncio.to_thread(self.read_all, stamp)
            readings = [o for o in outputs if isinstance(o, Reading)]
            for reject in (o for o in outputs if isinstance(o, Reject)):
                sink.reject(reject)
            await sink.put_many(readings)
            await asyncio.sleep(self.config.interval_s)

    def read_all(self, stamp: Stamp) -> list[Reading | Reject]:
        """Read each probe once (blocking: sysfs reads take ~750 ms each)."""
        root = Path(self.config.devices_dir)
        if not root.is_dir():
            raise SensorUnavailable(f"no 1-Wire bus at {root} (is w1-gpio loaded?)")
        try:
            probes = sorted(root.glob(f"{FAMILY_DS18B20}*"))
        except OSError as exc:
            raise SensorUnavailable(f"cannot list {root}: {exc}") from exc
        return [self._read_probe(probe, stamp) for probe in probes]

    def _read_probe(self, probe: Path, stamp: Stamp) -> Reading | Reject:
        sensor = f"{self.name}.{probe.name}"
        try:
            text = (probe / "w1_slave").read_text(errors="replace")
        except OSError as exc:
            return Reject(self.name, "unreadable", str(exc), sensor)
        result = parse_w1_slave(text)
        if isinstance(result, str):
            return Reject(self.name, result, text.strip()[-60:], sensor)
        return Reading(
            sensor,
            stamp.ts,
            result / 1000,
            "degC",
            Kind.GAUGE,
            clock_trusted=stamp.trusted,
            mono_s=stamp.mono_s,
        )
