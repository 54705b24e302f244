"""P1 port (DSMR / e-MUCS): telegram bytes in, readings out.

`P1Decoder` is pure (no I/O, no clock): it cuts a byte stream into telegrams,
checks their CRC, parses them with dsmr_parser and maps them to readings
through the table in `p1_channels`. `p1_reader.P1Reader` is the source the
daemon runs: it reads a serial port, or a file of recorded telegrams, into a
decoder.

A telegram runs from "/" to "!", followed by its CRC (1-4 hex digits, CRC-16
over "/" to "!") and a line end. Reject reasons:

    junk            bytes outside any telegram (whitespace alone is ignored)
    truncated       a telegram with no "!": a new "/" came first, or the input
                    ended
    oversize        no "!" within MAX_TELEGRAM_BYTES; the bytes are dropped
    crc_mismatch    the CRC does not match the telegram
    crc_missing     a bare "!" where the dialect requires a CRC
    decrypt_failed  an encrypted frame that the key does not open
    unparsable      the parser failed on a telegram whose CRC was right
    no_timestamp    neither the telegram nor the caller gave a time
    bad_timestamp   an impossible time on the telegram or on one value
    not_a_number    a value that is missing, unreadable, NaN or infinite

A CRC that is present is always checked, even in dialects that do not
require one.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterable

import structlog
from dsmr_parser import telegram_specifications as specs
from dsmr_parser.parsers import TelegramParser
from dsmr_parser.value_types import timestamp as meter_time

from ..config.model import P1Source
from ..core.clock import Stamp
from ..core.readings import Kind, Reading, Reject
from ..errors import ConfigError, SensorUnavailable
from .p1_channels import (
    CHANNEL_NAMES,
    DEFAULT_CHANNELS,
    MBUS_CHANNELS,
    MBUS_READING_FIELDS,
    MBUS_TYPE_FIELDS,
    METER_CHANNELS,
    MbusChannel,
    MeterChannel,
)
from .p1_crc import crc16
from .p1_framing import MAX_TELEGRAM_BYTES, CipherFramer, Frame, Framer

__all__ = ["MAX_TELEGRAM_BYTES", "P1Decoder", "crc16", "decode_file"]

log = structlog.get_logger(__name__)

# The parser logs every line it cannot read, with a traceback, at ERROR; each
# of those already becomes a counted Reject here.
logging.getLogger("dsmr_parser").setLevel(logging.CRITICAL)

Output = Reading | Reject

FILE_CHUNK_BYTES = 64 * 1024

SPECS: dict[str, dict[str, Any]] = {
    "belgium": specs.BELGIUM_FLUVIUS,
    "v5": specs.V5,
    "v4": specs.V4,
    "v3": specs.V3,
    "v2_2": specs.V2_2,
    "luxembourg": specs.LUXEMBOURG_SMARTY,
    "sweden": specs.SWEDEN,
    # The parser's Sagemcom T210-D-R entry expects encrypted frames; meters
    # that send plain telegrams are parsed with the same objects.
    "austria": {**specs.SAGEMCOM_T210_D_R, "general_global_cipher": False},
    "iskra_ie": specs.ISKRA_IE,
    "eon_hungary": specs.EON_HUNGARY,
    "easymeter": specs.Q3D,
}
# XXX(#3): Austrian T210-D-R meters can send encrypted frames too, but with a
# per-meter authentication key P1Source has no field for; add one, then
# "austria" here.
_ENCRYPTED_SPECS = ("luxembourg",)

_METER_TIME = re.compile(r"^\d-\d:1\.0\.0\(([^)]*)\)", re.MULTILINE)
_MBUS_READING_LINE = re.compile(r"^\d-[1-9]:24\.(?:2\.[13]|3\.0)\(")
_CHANNEL_LINES = {
    c.name: re.compile(rf"^{re.escape(c.obis)}[(*].*$", re.MULTILINE)
    for c in METER_CHANNELS
}
_LOWERCASE_DST_FLAG = re.compile(r"\((\d{12})([sw])\)")
_EPOCH = date(1970, 1, 1)


@dataclass(frozen=True, slots=True)
class _When:
    """The instant a value is stamped with, and how far it can be trusted."""

    ts: float
    trusted: bool = True
    mono_s: float | None = None


class P1Decoder:
    """Turns P1 bytes into readings; pure, incremental and never raising.

    `telegrams`, `skipped` and `rejects` (a Counter by reason) are for status
    display. M-Bus readings and the month's peak carry their own capture
    time; they are emitted (or rejected) only when that time or the value
    changes, since meters repeat them in every telegram. M-Bus meters are
    named by type in channel order: gas, gas_2, water, heat.
    """

    def __init__(
        self,
        spec: str = "belgium",
        prefix: str = "p1",
        channels: tuple[str, ...] = (),
        interval_s: float = 0.0,
        decryption_key: str = "",
    ) -> None:
        if spec not in SPECS:
            valid = ", ".join(SPECS)
            raise ConfigError(f"p1 spec {spec!r} is unknown; valid specs: {valid}")
        if interval_s < 0:
            raise ConfigError(f"p1 interval_s must be >= 0, got {interval_s!r}")
        self.spec = spec
        self.prefix = prefix
        self.interval_s = interval_s
        self.telegrams = 0
        self.skipped = 0
        self.rejects: Counter[str] = Counter()
        self._selected = _select_channels(channels)
        self._meter_channels = tuple(
            c for c in METER_CHANNELS if c.name in self._selected
        )
        self._parser = TelegramParser(SPECS[spec], apply_checksum_validation=False)
        self._crc_required = bool(SPECS[spec]["checksum_support"])
        self._framer = Framer(prefix)
        self._cipher = _cipher_for(spec, prefix, decryption_key)
        self._last_own: dict[str, tuple[datetime | None, str]] = {}
        self._last_bucket: int | None = None

    @classmethod
    def from_config(cls, config: P1Source) -> P1Decoder:
        """Build the decoder a `[[sources]]` entry of type p1 describes."""
        return cls(
            spec=config.spec,
            prefix=config.name,
            channels=tuple(config.channels),
            interval_s=config.interval_s,
            decryption_key=config.decryption_key,
        )

    def feed(self, data: bytes, stamp: Stamp | None = None) -> list[Output]:
        """Add bytes; return the readings and rejects of completed telegrams.

        `stamp` times telegrams that carry no timestamp of their own.
        """
        if self._cipher is None:
            return self._decode_all(self._framer.push(data), stamp)
        return self._decode_all(self._open_frames(self._cipher, data), stamp)

    def flush(self, stamp: Stamp | None = None) -> list[Output]:
        """End of input: decode a last telegram missing its line end."""
        leftover = self._cipher.finish() if self._cipher is not None else []
        return self._decode_all([*leftover, *self._framer.finish()], stamp)

    def _open_frames(self, cipher: CipherFramer, data: bytes) -> list[Frame | Reject]:
        """Decrypt frames and cut the plain telegrams out of them."""
        pieces: list[Frame | Reject] = []
        for plain in cipher.push(data):
            if isinstance(plain, Reject):
                pieces.append(plain)
            else:
                pieces.extend(self._framer.push(plain))
        return pieces

    def _decode_all(
        self, pieces: Iterable[Frame | Reject], stamp: Stamp | None
    ) -> list[Output]:
        """Decode the framed telegrams, passing rejects through and counting them."""
        out: list[Output] = []
        for piece in pieces:
            if isinstance(piece, Reject):
                out.append(piece)
            else:
                out.extend(self._decode(piece, stamp))
        self.rejects.update(r.reason for r in out if isinstance(r, Reject))
        return out

    def _decode(self, frame: Frame, stamp: Stamp | None) -> list[Output]:
        """Check, time, parse and map one telegram."""
        crc_problem = self._check_crc(frame)
        if crc_problem is not None:
            return [crc_problem]
        text = _normalised_text(frame.body)
        when = self._telegram_time(text, stamp)
        if isinstance(when, _When) and self._skip(when.ts):
            self.skipped += 1
            return []
        try:
            telegram, bad_lines = self._parse(text)
            out = self._map(telegram, text, when, bad_lines)
        # A parser bug on one telegram must not stop the stream.
        except Exception as exc:  # noqa: BLE001
            return [self._reject("unparsable", f"{type(exc).__name__}: {exc}")]
        self.telegrams += 1
        return out

    def _check_crc(self, frame: Frame) -> Reject | None:
        """Return a reject when the CRC is wrong, or missing where required."""
        if not frame.crc:
            if not self._crc_required:
                return None
            detail = f"the {self.spec} dialect requires a CRC after '!'"
            return self._reject("crc_missing", detail)
        computed = crc16(frame.body)
        if computed == int(frame.crc, 16):
            return None
        expected = frame.crc.decode("ascii")
        detail = f"expected {expected}, computed {computed:04X}"
        return self._reject("crc_mismatch", detail)

    def _telegram_time(self, text: str, stamp: Stamp | None) -> _When | Reject:
        """Return the telegram's own time, else the caller's stamp."""
        match = _METER_TIME.search(text)
        if match is None:
            if stamp is None:
                detail = "the telegram has no time and no clock stamp was given"
                return self._reject("no_timestamp", detail)
            return _When(stamp.ts, stamp.trusted, stamp.mono_s)
        moment = meter_time(match.group(1))
        if moment is None:
            return self._reject("bad_timestamp", f"telegram time {match.group(0)}")
        return _When(moment.timestamp())

    def _skip(self, ts: float) -> bool:
        """Keep one telegram per interval_s, on a grid of telegram times."""
        if self.interval_s <= 0:
            return False
        bucket = math.floor(ts / self.interval_s)
        if bucket == self._last_bucket:
            return True
        self._last_bucket = bucket
        return False

    def _parse(self, text: str) -> tuple[Any, list[str]]:
        """Parse, dropping lines that make the whole parse fail."""
        try:
            return self._parser.parse(text), []
        # The parser lets a non-numeric value escape as a decimal error and
        # loses the telegram; find the lines at fault and parse the rest.
        except (ArithmeticError, ValueError, TypeError, IndexError):
            lines = _logical_lines(text)
            bad = [line for line in lines if not self._line_parses(line)]
            good = "".join(line for line in lines if line not in bad)
            return self._parser.parse(good), bad

    def _line_parses(self, line: str) -> bool:
        """Return whether the parser accepts this line on its own."""
        try:
            self._parser.parse(line)
        except Exception:  # noqa: BLE001 - any failure marks the line bad
            return False
        return True

    def _map(
        self, telegram: Any, text: str, when: _When | Reject, bad_lines: list[str]
    ) -> list[Output]:
        """Turn a parsed telegram into readings and rejects."""
        out: list[Output] = [] if isinstance(when, _When) else [when]
        stamp = when if isinstance(when, _When) else None
        for channel in self._meter_channels:
            out.extend(self._meter_value(telegram, text, channel, stamp))
        out.extend(self._mbus_values(telegram))
        for line in bad_lines:
            if _MBUS_READING_LINE.match(line):
                out.append(self._reject("not_a_number", line.strip()))
        return out

    def _meter_value(
        self, telegram: Any, text: str, channel: MeterChannel, when: _When | None
    ) -> list[Output]:
        """Map one electricity channel of the telegram."""
        found = getattr(telegram, channel.field, None)
        if found is None:
            return self._unreadable(text, channel)
        unit = found.unit or channel.unit
        if channel.own_stamp:
            return self._own_stamped(channel.name, found, unit, channel.kind)
        if when is None:
            return []  # the telegram-level reject already says why
        return [self._reading(channel.name, found.value, unit, channel.kind, when)]

    def _unreadable(self, text: str, channel: MeterChannel) -> list[Output]:
        """Report a line the parser skipped because its value is malformed."""
        match = _CHANNEL_LINES[channel.name].search(text)
        if match is None:
            return []
        sensor = self._sensor(channel.name)
        return [self._reject("not_a_number", match.group(0).strip(), sensor)]

    def _mbus_values(self, telegram: Any) -> list[Output]:
        """Map the M-Bus devices, numbering several of one type."""
        out: list[Output] = []
        count: Counter[str] = Counter()
        devices = getattr(telegram, "MBUS_DEVICES", None) or []
        for device in sorted(devices, key=lambda d: d.channel_id):
            channel = _mbus_channel(device)
            found = _mbus_reading(device)
            if channel is None or found is None or _is_placeholder(found):
                continue
            count[channel.name] += 1
            if channel.name not in self._selected:
                continue
            number = count[channel.name]
            name = channel.name if number == 1 else f"{channel.name}_{number}"
            unit = found.unit or channel.unit
            out.extend(self._own_stamped(name, found, unit, channel.kind))
        return out

    def _own_stamped(
        self, name: str, found: Any, unit: str, kind: Kind
    ) -> list[Output]:
        """Emit a value stamped with its own capture time, once per change."""
        sensor = self._sensor(name)
        key = (found.datetime, str(found.value))
        if self._last_own.get(sensor) == key:
            return []
        self._last_own[sensor] = key
        if found.datetime is None:
            return [self._reject("bad_timestamp", "impossible capture time", sensor)]
        when = _When(found.datetime.timestamp())
        return [self._reading(name, found.value, unit, kind, when)]

    def _reading(
        self, name: str, raw: object, unit: str, kind: Kind, when: _When
    ) -> Output:
        """Build a reading, or a reject when the value is not a number."""
        sensor = self._sensor(name)
        value = _finite(raw)
        if value is None:
            return self._reject("not_a_number", f"value {raw!r}", sensor)
        return Reading(
            sensor=sensor,
            ts=when.ts,
            value=value,
            unit=unit,
            kind=kind,
            clock_trusted=when.trusted,
            mono_s=when.mono_s,
        )

    def _sensor(self, name: str) -> str:
        return f"{self.prefix}.{name}"

    def _reject(self, reason: str, detail: str, sensor: str | None = None) -> Reject:
        return Reject(source=self.prefix, reason=reason, detail=detail, sensor=sensor)


def _select_channels(channels: tuple[str, ...]) -> frozenset[str]:
    """Return the channel names to emit, refusing unknown ones."""
    unknown = [name for name in channels if name not in CHANNEL_NAMES]
    if unknown:
        valid = ", ".join(CHANNEL_NAMES)
        raise ConfigError(
            f"p1 channels: unknown {', '.join(map(repr, unknown))}; valid: {valid}"
        )
    return frozenset(channels or DEFAULT_CHANNELS)


def _cipher_for(spec: str, source: str, key_hex: str) -> CipherFramer | None:
    """Return the frame opener for an encrypted meter, or None."""
    if not key_hex:
        return None
    if spec not in _ENCRYPTED_SPECS:
        raise ConfigError(
            f"p1 decryption_key is only used with spec = {_ENCRYPTED_SPECS[0]!r}; "
            f"remove it or change spec (got {spec!r})"
        )
    try:
        key = bytes.fromhex(key_hex)
    except ValueError:
        key = b""
    if len(key) != 16:
        raise ConfigError("p1 decryption_key must be 32 hex digits (a 128-bit key)")
    # Every Smarty meter uses the same published authentication key.
    auth_key = bytes.fromhex(specs.MSN["authentication_key"])
    return CipherFramer(source, key, auth_key)


def _normalised_text(body: bytes) -> str:
    """Decode a telegram so every line ends in CRLF, as the parser expects.

    Landis+Gyr E350 (DSMR 4.0) writes the summer/winter flag in lower case,
    which the parser would take for an impossible time.
    """
    text = body.decode("latin-1").replace("\r\n", "\n").replace("\n", "\r\n")
    text = _LOWERCASE_DST_FLAG.sub(lambda m: f"({m[1]}{m[2].upper()})", text)
    return text + "\r\n"


def _logical_lines(text: str) -> list[str]:
    """Split into lines, keeping DSMR 2.2 continuation lines with their line."""
    lines: list[str] = []
    for line in text.splitlines(keepends=True):
        if line.startswith("(") and lines:
            lines[-1] += line
        else:
            lines.append(line)
    return lines


def _mbus_channel(device: Any) -> MbusChannel | None:
    """Return the channel an M-Bus device's type maps to, if any."""
    for field in MBUS_TYPE_FIELDS:
        found = getattr(device, field, None)
        if found is None:
            continue
        try:
            device_type = int(found.value)
        except (TypeError, ValueError):
            return None
        return next((c for c in MBUS_CHANNELS if device_type in c.device_types), None)
    return None


def _mbus_reading(device: Any) -> Any:
    """Return the device's reading, whichever DSMR version named it."""
    for field in MBUS_READING_FIELDS:
        found = getattr(device, field, None)
        if found is not None:
            return found
    return None


def _is_placeholder(found: Any) -> bool:
    """An M-Bus slot with no meter reports a reading at the epoch."""
    moment = found.datetime
    return moment is not None and moment.date() == _EPOCH


def _finite(raw: object) -> float | None:
    """Return a parsed value as a float, or None unless a finite number."""
    if not isinstance(raw, (Decimal, int)) or isinstance(raw, bool):
        return None
    value = float(raw)
    return value if math.isfinite(value) else None


def decode_file(
    path: str | Path,
    *,
    spec: str = "belgium",
    prefix: str = "p1",
    channels: tuple[str, ...] = (),
    stamp: Stamp | None = None,
) -> list[Output]:
    """Decode a file of recorded telegrams (blocking; for the CLI and tests)."""
    decoder = P1Decoder(spec=spec, prefix=prefix, channels=channels)
    out: list[Output] = []
    try:
        with open(path, "rb") as file:
            while chunk := file.read(FILE_CHUNK_BYTES):
                out.extend(decoder.feed(chunk, stamp))
    except OSError as exc:
        raise SensorUnavailable(f"cannot read {path}: {exc}") from exc
    return out + decoder.flush(stamp)
