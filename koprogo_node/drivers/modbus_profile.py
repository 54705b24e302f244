"""Modbus meter profiles and the register codec: pure, no I/O.

A profile (`sensors/modbus/<name>.toml`) tells which registers hold which
channel, how to read them (function, word order, type, scale) and which raw
values mean "not available". This module turns the file into typed values and
registers into engineering values, so decoding runs in tests with plain lists.

Byte order inside a 16-bit register is always big-endian (the Modbus rule);
only the order of the words in a multi-register value varies by vendor.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..core.readings import Kind
from ..errors import ConfigError
from .profiles import Profile, list_profiles, load_profile

# type -> (registers, struct code of the big-endian value)
TYPES: dict[str, tuple[int, str]] = {
    "int16": (1, "h"),
    "uint16": (1, "H"),
    "int32": (2, "i"),
    "uint32": (2, "I"),
    "int64": (4, "q"),
    "uint64": (4, "Q"),
    "float32": (2, "f"),
    "float64": (4, "d"),
}
FUNCTIONS = ("input", "holding")
WORD_ORDERS = ("big", "little")
MAX_GROUP_REGISTERS = 125  # the protocol's limit for one read request


@dataclass(frozen=True, slots=True)
class Channel:
    """One value in the register map."""

    name: str
    address: int
    type: str
    unit: str
    kind: Kind
    scale: float = 1.0
    not_available: frozenset[int] = frozenset()

    @property
    def words(self) -> int:
        """Registers the value spans."""
        return TYPES[self.type][0]


@dataclass(frozen=True, slots=True)
class Group:
    """A contiguous block of registers read in one request."""

    start: int
    count: int
    channels: tuple[Channel, ...]


@dataclass(frozen=True, slots=True)
class Check:
    """A plausibility test used to recognise a model while scanning."""

    channel: Channel
    min: float = -math.inf
    max: float = math.inf


@dataclass(frozen=True, slots=True)
class ModbusProfile:
    """A meter model's register map, validated."""

    name: str
    title: str
    function: str
    word_order: str
    groups: tuple[Group, ...]
    identify: tuple[Check, ...]

    @property
    def channels(self) -> tuple[Channel, ...]:
        """Every channel, in group order."""
        return tuple(c for g in self.groups for c in g.channels)


@dataclass(frozen=True, slots=True)
class Decoded:
    """One channel's value from a group, or why it has none."""

    channel: Channel
    value: float | None
    reason: str = ""
    raw: int | float | None = None


def load(name: str) -> ModbusProfile:
    """The Modbus profile `name`; ConfigError when absent or invalid."""
    return parse(load_profile("modbus", name))


def load_all() -> list[ModbusProfile]:
    """Every Modbus profile, sorted by name."""
    return [parse(p) for p in list_profiles("modbus")]


def parse(profile: Profile) -> ModbusProfile:
    """Validate a profile file's body; ConfigError names the file and the fix."""
    where = f"profile {profile.path}"
    body = _table(profile.body.get("modbus"), f"{where}: [modbus]")
    function = _choice(body.get("function", "input"), FUNCTIONS, f"{where}: function")
    order = _choice(body.get("word_order", "big"), WORD_ORDERS, f"{where}: word_order")
    defaults = _codes_by_type(body.get("not_available", {}), where)
    channels = [_channel(c, defaults, where) for c in _tables(body, "channels", where)]
    groups = _groups(_tables(body, "groups", where), channels, where)
    by_name = {c.name: c for c in channels}
    checks = tuple(_check(c, by_name, where) for c in body.get("identify", []))
    return ModbusProfile(
        name=profile.name,
        title=profile.title,
        function=function,
        word_order=order,
        groups=groups,
        identify=checks,
    )


def decode_value(words: Sequence[int], type_: str, word_order: str) -> int | float:
    """Return the raw number held by `words` (no scaling)."""
    size, code = TYPES[type_]
    if len(words) != size:
        raise ValueError(f"{type_} needs {size} registers, got {len(words)}")
    ordered = words if word_order == "big" else list(reversed(words))
    return struct.unpack(">" + code, struct.pack(f">{size}H", *ordered))[0]


def encode_value(value: float, type_: str, word_order: str) -> list[int]:
    """Return the registers holding the raw number `value` (inverse of decode)."""
    size, code = TYPES[type_]
    raw = value if code in "fd" else int(value)
    words = list(struct.unpack(f">{size}H", struct.pack(">" + code, raw)))
    return words if word_order == "big" else list(reversed(words))


def encode_reading(value: float, channel: Channel, word_order: str) -> list[int]:
    """Return the registers a meter shows for engineering value `value`."""
    if channel.type.startswith("float"):
        return encode_value(value / channel.scale, channel.type, word_order)
    return encode_value(round(value / channel.scale), channel.type, word_order)


def decode_channel(words: Sequence[int], channel: Channel, word_order: str) -> Decoded:
    """Scale one channel's registers, rejecting markers, NaN and infinity."""
    unsigned = decode_value(words, _unsigned_type(channel), word_order)
    if unsigned in channel.not_available:
        return Decoded(channel, None, "not_available", unsigned)
    raw = decode_value(words, channel.type, word_order)
    value = raw * channel.scale
    if not math.isfinite(value):
        return Decoded(channel, None, "not_a_number", raw)
    return Decoded(channel, value, raw=raw)


def decode_group(
    group: Group, registers: Sequence[int], word_order: str
) -> list[Decoded]:
    """Decode every channel of `group` from the registers read for it."""
    if len(registers) != group.count:
        raise ValueError(f"group needs {group.count} registers, got {len(registers)}")
    out = []
    for channel in group.channels:
        offset = channel.address - group.start
        words = registers[offset : offset + channel.words]
        out.append(decode_channel(words, channel, word_order))
    return out


def _unsigned_type(channel: Channel) -> str:
    return "uint" + str(16 * channel.words)


def _channel(
    raw: dict[str, Any], defaults: dict[str, frozenset[int]], where: str
) -> Channel:
    """Build one channel entry."""
    name = raw.get("name", "")
    here = f"{where}: channel {name!r}"
    if not name:
        raise ConfigError(f"{where}: every [[modbus.channels]] needs a name")
    type_ = _choice(raw.get("type", ""), tuple(TYPES), f"{here}: type")
    kind = _choice(raw.get("kind", "gauge"), ("counter", "gauge"), f"{here}: kind")
    address = raw.get("address")
    if not isinstance(address, int) or not 0 <= address <= 0xFFFF:
        raise ConfigError(f"{here}: address must be an integer 0-65535")
    codes = raw.get("not_available")
    markers = _codes(codes, here) if codes is not None else defaults.get(type_)
    return Channel(
        name=name,
        address=address,
        type=type_,
        unit=str(raw.get("unit", "")),
        kind=Kind(kind),
        scale=float(raw.get("scale", 1.0)),
        not_available=markers or frozenset(),
    )


def _groups(
    raw: list[dict[str, Any]], channels: list[Channel], where: str
) -> tuple[Group, ...]:
    """Assign each channel to the group holding all its registers."""
    spans = []
    for entry in raw:
        start, count = entry.get("start"), entry.get("count")
        if not isinstance(start, int) or not isinstance(count, int):
            raise ConfigError(f"{where}: each group needs integer start and count")
        if not 1 <= count <= MAX_GROUP_REGISTERS:
            raise ConfigError(f"{where}: group at {start:#06x}: count must be 1-125")
        spans.append((start, count, []))
    for channel in channels:
        home = next((s for s in spans if _holds(s[0], s[1], channel)), None)
        if home is None:
            raise ConfigError(
                f"{where}: channel {channel.name!r} at {channel.address:#06x} "
                "lies in no [[modbus.groups]] block; add or widen one"
            )
        home[2].append(channel)
    return tuple(Group(s, c, tuple(chs)) for s, c, chs in spans if chs)


def _holds(start: int, count: int, channel: Channel) -> bool:
    return start <= channel.address and channel.address + channel.words <= start + count


def _check(raw: dict[str, Any], channels: dict[str, Channel], where: str) -> Check:
    name = raw.get("channel", "")
    if name not in channels:
        raise ConfigError(f"{where}: identify names unknown channel {name!r}")
    return Check(
        channel=channels[name],
        min=float(raw.get("min", -math.inf)),
        max=float(raw.get("max", math.inf)),
    )


def _codes_by_type(raw: Any, where: str) -> dict[str, frozenset[int]]:
    table = _table(raw, f"{where}: [modbus.not_available]")
    for type_ in table:
        _choice(type_, tuple(TYPES), f"{where}: [modbus.not_available] key")
    return {t: _codes(v, f"{where}: not_available.{t}") for t, v in table.items()}


def _codes(raw: Any, where: str) -> frozenset[int]:
    """Read markers given as integers or hex strings (TOML stops at 2**63)."""
    items = raw if isinstance(raw, list) else [raw]
    try:
        return frozenset(i if isinstance(i, int) else int(str(i), 0) for i in items)
    except ValueError as exc:
        raise ConfigError(f"{where}: not_available must be integers") from exc


def _table(raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a table")
    return raw


def _tables(body: dict[str, Any], key: str, where: str) -> list[dict[str, Any]]:
    raw = body.get(key)
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{where}: needs at least one [[modbus.{key}]] entry")
    return raw


def _choice(value: Any, choices: tuple[str, ...], where: str) -> str:
    if value not in choices:
        raise ConfigError(f"{where} must be one of {', '.join(choices)}, got {value!r}")
    return value
