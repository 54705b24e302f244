"""Shared inputs and helpers of the P1 decoder tests."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from koprogo_node.core.clock import Stamp
from koprogo_node.core.readings import Reading, Reject
from koprogo_node.drivers.p1 import (
    P1Decoder,
    crc16,
)

PARSER_DATA = Path(__file__).parents[1] / "data" / "dsmr_parser-telegrams"
SHARED_DATA = Path(__file__).parents[2] / ".." / "shared" / "data"
READER_DATA = SHARED_DATA / "dsmr-reader-telegrams"
STAMP = Stamp(ts=1_700_000_000.0, trusted=False, mono_s=42.0)


def utc(text: str) -> float:
    """Return the Unix time of a UTC 'YYYY-MM-DD HH:MM:SS'."""
    moment = datetime.fromisoformat(text).replace(tzinfo=timezone.utc)
    return moment.timestamp()


def parser_file(name: str) -> bytes:
    """Read a file of the dsmr_parser set (copied into tests/data)."""
    return (PARSER_DATA / name).read_bytes()


def reader_file(name: str) -> bytes:
    """Read a file of the dsmr-reader set in place, or skip."""
    if not READER_DATA.is_dir():
        pytest.skip(
            "../shared/data/dsmr-reader-telegrams is absent: its CC BY-NC "
            "telegrams are read in place and never copied into this repository"
        )
    return (READER_DATA / name).read_bytes()


def load(dataset: str, name: str) -> bytes:
    """Read a data file from the named set."""
    return parser_file(name) if dataset == "dsmr_parser" else reader_file(name)


def readings(out: list[Reading | Reject]) -> list[Reading]:
    """Keep the readings of a decoder's output."""
    return [r for r in out if isinstance(r, Reading)]


def rejects(out: list[Reading | Reject]) -> list[Reject]:
    """Keep the rejects of a decoder's output."""
    return [r for r in out if isinstance(r, Reject)]


def by_sensor(out: list[Reading | Reject]) -> dict[str, tuple[float, str, float]]:
    """Map each sensor to its (value, unit, ts)."""
    return {r.sensor: (r.value, r.unit, r.ts) for r in readings(out)}


def spec_of(name: str) -> str:
    """Guess a data file's dialect from its name."""
    by_prefix = {
        "be": "belgium",
        "at": "austria",
        "ie": "iskra_ie",
        "hu": "eon_hungary",
        "de": "easymeter",
        "lu": "luxembourg",
        "se": "sweden",
    }
    if "dsmr22" in name or "dsmr30" in name:
        return "v2_2"
    return by_prefix.get(name[:2], "v5")


def decode(data: bytes, stamp: Stamp | None = None, **options) -> list:
    """Feed all of `data` to a fresh decoder, then flush."""
    decoder = P1Decoder(**options)
    return decoder.feed(data, stamp) + decoder.flush(stamp)


def with_line(telegram: bytes, old: bytes, new: bytes) -> bytes:
    """Replace a line of a telegram and give it a matching CRC again."""
    body = telegram[: telegram.index(b"!") + 1]
    assert old in body
    body = body.replace(old, new)
    return body + b"%04X\r\n" % crc16(body)
