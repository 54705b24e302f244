"""Encode P1 telegrams as a Belgian Fluvius e-MUCS 1.7.1 meter sends them.

A telegram is Latin-1 text with CRLF line ends: a `/` header line, an empty
line, one COSEM object per line, then `!`, the CRC-16/ARC of every byte from
`/` up to and including `!` as four upper-case hex digits, and CRLF. Times
are Brussels wall time, `YYMMDDhhmmss` followed by S (summer) or W (winter),
which also tells the two 02:00-03:00 hours of the autumn change apart.

Registers wrap around at their width, as a meter's display does: a gas
register of 99999.999 m3 goes on at 00000.000.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..drivers.p1_crc import crc16
from .belgium import BRUSSELS

HEADER = "FLU5\\253769484_A"
VERSION = "50217"

MBUS_GAS = 3
MBUS_HEAT = 4
MBUS_WATER = 7


@dataclass(frozen=True, kw_only=True)
class MbusValue:
    """A meter on an M-Bus channel of the electricity meter (gas, water, heat)."""

    channel: int
    device_type: int
    equipment_id: str
    ts: float
    value: float
    unit: str


@dataclass(frozen=True, kw_only=True)
class Frame:
    """The values of one telegram; powers in kW, energies in kWh."""

    ts: float
    equipment_id: str
    import_kwh: tuple[float, float]  # (tariff 1 day, tariff 2 night)
    export_kwh: tuple[float, float]
    tariff: int
    avg_demand_kw: float
    month_peak_kw: float
    month_peak_ts: float
    power_import_kw: float
    power_export_kw: float
    phase_import_kw: tuple[float, float, float]
    phase_export_kw: tuple[float, float, float]
    voltage_v: tuple[float, float, float]
    current_a: tuple[float, float, float]
    mbus: tuple[MbusValue, ...] = ()


def encode_telegram(frame: Frame) -> bytes:
    """Return the complete telegram for `frame`, CRC and final CRLF included."""
    lines = [
        f"/{HEADER}",
        "",
        f"0-0:96.1.4({VERSION})",
        f"0-0:96.1.1({_hex_id(frame.equipment_id)})",
        f"0-0:1.0.0({p1_time(frame.ts)})",
        f"1-0:1.8.1({_kwh(frame.import_kwh[0])})",
        f"1-0:1.8.2({_kwh(frame.import_kwh[1])})",
        f"1-0:2.8.1({_kwh(frame.export_kwh[0])})",
        f"1-0:2.8.2({_kwh(frame.export_kwh[1])})",
        f"0-0:96.14.0({frame.tariff:04d})",
        f"1-0:1.4.0({_kw(frame.avg_demand_kw)})",
        f"1-0:1.6.0({p1_time(frame.month_peak_ts)})({_kw(frame.month_peak_kw)})",
        f"1-0:1.7.0({_kw(frame.power_import_kw)})",
        f"1-0:2.7.0({_kw(frame.power_export_kw)})",
        *_phase_lines(frame),
        "0-0:96.3.10(1)",
        "0-0:17.0.0(999.9*kW)",
        "1-0:31.4.0(999*A)",
        "0-0:96.13.0()",
        *(line for device in frame.mbus for line in _mbus_lines(device)),
        "!",
    ]
    body = "\r\n".join(lines).encode("latin-1")

    return body + f"{crc16_arc(body):04X}\r\n".encode("ascii")


def p1_time(ts: float) -> str:
    """Return a Unix time as a P1 timestamp, e.g. `200512135409S`."""
    local = datetime.fromtimestamp(int(ts), BRUSSELS)
    return local.strftime("%y%m%d%H%M%S") + ("S" if local.dst() else "W")


def _phase_lines(frame: Frame) -> list[str]:
    lines = []
    for phase, code in enumerate((21, 41, 61)):
        lines.append(f"1-0:{code}.7.0({_kw(frame.phase_import_kw[phase])})")
    for phase, code in enumerate((22, 42, 62)):
        lines.append(f"1-0:{code}.7.0({_kw(frame.phase_export_kw[phase])})")
    for phase, code in enumerate((32, 52, 72)):
        lines.append(f"1-0:{code}.7.0({_fixed(frame.voltage_v[phase], 3, 1)}*V)")
    for phase, code in enumerate((31, 51, 71)):
        lines.append(f"1-0:{code}.7.0({_fixed(frame.current_a[phase], 3, 2)}*A)")
    return lines


def _mbus_lines(device: MbusValue) -> list[str]:
    """Return an M-Bus device's lines; gas is stamped 24.2.3, others 24.2.1."""
    n = device.channel
    reading_obis = "24.2.3" if device.device_type == MBUS_GAS else "24.2.1"
    lines = [
        f"0-{n}:24.1.0({device.device_type:03d})",
        f"0-{n}:96.1.1({_hex_id(device.equipment_id)})",
    ]
    if device.device_type == MBUS_GAS:
        lines.append(f"0-{n}:24.4.0(1)")  # valve open
    lines.append(
        f"0-{n}:{reading_obis}({p1_time(device.ts)})"
        f"({_fixed(device.value, 5, 3)}*{device.unit})"
    )
    return lines


def _hex_id(equipment_id: str) -> str:
    """Meters send their serial as the hex of its ASCII characters."""
    return equipment_id.encode("ascii").hex().upper()


def _kwh(value: float) -> str:
    return f"{_fixed(value, 6, 3)}*kWh"


def _kw(value: float) -> str:
    return f"{_fixed(value, 2, 3)}*kW"


def _fixed(value: float, digits: int, decimals: int) -> str:
    """Format with zero padding to `digits` integer digits, wrapping over."""
    if value < 0:
        raise ValueError(f"meter registers are never negative, got {value!r}")
    scale = 10**decimals
    units = round(value * scale) % (10**digits * scale)
    whole, fraction = divmod(units, scale)

    return f"{whole:0{digits}d}.{fraction:0{decimals}d}"


def crc16_arc(data: bytes) -> int:
    """Return the CRC-16/ARC of `data` (poly 0xA001 reflected, init 0)."""
    return crc16(data)
