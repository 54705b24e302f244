"""Block digests and hashes: what makes the ledger tamper-evident.

A block is one committed batch. Its header holds, for every chained table,
the SHA-256 of an encoding of the block's rows in that table (in key order;
CBOR, or a fixed-width packing for readings). Its hash covers height,
previous hash, commit time, those digests and the block's reading id and
stamp ranges, under a domain-separation tag. Editing, deleting or adding a row
changes a digest; editing a header breaks its hash and the next block's link.
"""

from __future__ import annotations

import hashlib
import math
import struct
from dataclasses import dataclass
from typing import Iterable, Sequence

import cbor2

BLOCK_TAG = b"koprogo-ledger-block-v1\x00"
GENESIS_PREV = bytes(32)


@dataclass(frozen=True)
class Chained:
    """One digest slot: rows of `table` (matching `where`) in `order`."""

    table: str
    columns: tuple[str, ...]
    order: str
    where: str = ""

    def select(self) -> str:
        """SQL that lists this slot's rows, block by block."""
        cols = ", ".join(("block",) + self.columns)
        where = f"WHERE {self.where}" if self.where else ""
        return f"SELECT {cols} FROM {self.table} {where} ORDER BY block, {self.order}"


_ROLLUP_COLUMNS = ("tier", "start_s", "sensor", "n", "total", "low", "high", "last")

# Every digest slot of a block header, in header order. Rollup tiers have a
# slot each because each tier is pruned on its own horizon.
CHAINED: dict[str, Chained] = {
    "sensors": Chained("sensors", ("id", "name", "kind", "unit"), "id"),
    "boots": Chained("boots", ("id", "boot_id"), "id"),
    "readings": Chained(
        "readings",
        ("id", "sensor", "ts_ms", "value", "delta", "quality", "boot", "mono_ms"),
        "id",
    ),
    "rollups_15m": Chained("rollups", _ROLLUP_COLUMNS, "start_s, sensor", "tier = 900"),
    "rollups_1h": Chained("rollups", _ROLLUP_COLUMNS, "start_s, sensor", "tier = 3600"),
    "rollups_1d": Chained(
        "rollups", _ROLLUP_COLUMNS, "start_s, sensor", "tier = 86400"
    ),
    "events": Chained("events", ("id", "ts_ms", "kind", "sensor", "detail"), "id"),
    "clock_fixes": Chained("clock_fixes", ("boot", "offset_ms"), "boot"),
    "prunes": Chained("prunes", ("id", "tbl", "below_block"), "id"),
}
TABLES: tuple[str, ...] = tuple(CHAINED)
ROLLUP_SLOT = {900: "rollups_15m", 3600: "rollups_1h", 86400: "rollups_1d"}
EMPTY_DIGEST = hashlib.sha256(cbor2.dumps([])).digest()


def empty_digest(slot: str) -> bytes:
    """Digest of a slot with no rows in a block."""
    return rows_digest([], slot)


def rows_digest(rows: Iterable[Sequence], slot: str = "") -> bytes:
    """Digest of one slot's rows in one block, each in its `columns` order."""
    if slot == "readings":
        return _readings_digest(rows)
    return hashlib.sha256(cbor2.dumps(list(rows))).digest()


# Readings are most of what is hashed, so they get a fixed-width encoding,
# several times faster to build than CBOR: id, sensor, stamp, value, delta
# (NaN for none), quality, boot (-1 for none), monotonic stamp (INT64_MIN for
# none). Stored values are finite, so NaN cannot stand for a real delta.
_READING = struct.Struct("<qqqddbqq")
_NO_INT = -(2**63)


def _readings_digest(rows: Iterable[Sequence]) -> bytes:
    pack, nan = _READING.pack, math.nan
    packed = b"".join(
        [
            pack(
                i,
                sensor,
                ts,
                value,
                nan if delta is None else delta,
                quality,
                -1 if boot is None else boot,
                _NO_INT if mono is None else mono,
            )
            for i, sensor, ts, value, delta, quality, boot, mono in rows
        ]
    )
    return hashlib.sha256(b"readings-v1" + packed).digest()


def pack_digests(digests: dict[str, bytes]) -> bytes:
    """Concatenate per-table digests in TABLES order."""
    return b"".join(digests.get(t, EMPTY_DIGEST) for t in TABLES)


def unpack_digests(packed: bytes) -> dict[str, bytes]:
    """Split a header's digests back into a table -> digest mapping."""
    return {t: packed[i * 32 : (i + 1) * 32] for i, t in enumerate(TABLES)}


def block_hash(
    height: int,
    prev: bytes,
    created_ms: int,
    digests: bytes,
    first_reading: int,
    n_readings: int,
    min_ts_ms: int | None,
    max_ts_ms: int | None,
) -> bytes:
    """Hash of a block header: every field of it but the hash itself."""
    header = cbor2.dumps(
        [
            height,
            prev,
            created_ms,
            digests,
            first_reading,
            n_readings,
            min_ts_ms,
            max_ts_ms,
        ]
    )
    return hashlib.sha256(BLOCK_TAG + header).digest()
