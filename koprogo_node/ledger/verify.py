"""`ledger verify`: recompute every digest and hash, report the first bad block."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ..errors import LedgerCorrupt
from ..federation.envelope import authentic, message_id
from .anchor import read_anchor
from .chain import (
    CHAINED,
    GENESIS_PREV,
    block_hash,
    empty_digest,
    rows_digest,
    unpack_digests,
)
from .prune import is_pruned


@dataclass(frozen=True)
class Verdict:
    """Outcome of a verification."""

    ok: bool
    blocks: int
    readings: int
    bad_block: int | None = None
    problem: str = ""

    def line(self) -> str:
        """One line for a terminal."""
        if self.ok:
            return f"OK: {self.blocks} blocks, {self.readings} readings verified"
        where = f"block {self.bad_block}" if self.bad_block is not None else "ledger"
        return f"FAIL: {where}: {self.problem}"


class _Bad(Exception):
    def __init__(self, block: int | None, problem: str) -> None:
        super().__init__(problem)
        self.block = block
        self.problem = problem


def verify(db_path: Path) -> Verdict:
    """Check the ledger at `db_path` against its chain and its anchor.

    Safe while the daemon writes: the anchor is read first, then every query
    runs in one read transaction, a snapshot at least as new as the anchor.
    Raises LedgerCorrupt when there is no ledger file to check.
    """
    if not db_path.is_file():
        raise LedgerCorrupt(f"no ledger at {db_path}")
    anchor = read_anchor(db_path)
    try:
        conn = sqlite3.connect(
            f"file:{db_path}?mode=ro", uri=True, isolation_level=None
        )
    except sqlite3.Error as exc:
        return Verdict(False, 0, 0, None, f"cannot open: {exc}")
    headers: list[tuple] = []
    try:
        conn.execute("BEGIN")
        headers = _headers(conn)
        return _verify(conn, headers, anchor)
    except _Bad as bad:
        return Verdict(False, len(headers), 0, bad.block, bad.problem)
    finally:
        conn.close()


def _verify(
    conn: sqlite3.Connection, headers: list[tuple], anchor: tuple[int, str] | None
) -> Verdict:
    pruned = _pruned(conn)
    checks = [lambda: _check_links(headers), lambda: _check_anchor(anchor, headers)]
    checks.append(lambda: _check_aggregates(conn))
    checks += [
        lambda slot=slot: _check_slot(conn, slot, headers, pruned) for slot in CHAINED
    ]
    problems = []
    for check in checks:
        try:
            check()
        except _Bad as bad:
            problems.append(bad)
    if problems:
        raise min(problems, key=lambda bad: bad.block or 0)
    return Verdict(True, len(headers), _count_readings(headers, pruned))


def _headers(conn: sqlite3.Connection) -> list[tuple]:
    try:
        return conn.execute(
            "SELECT height, prev, created_ms, digests, hash, first_reading,"
            " n_readings, min_ts_ms, max_ts_ms FROM blocks ORDER BY height"
        ).fetchall()
    except sqlite3.DatabaseError as exc:
        raise _Bad(None, f"block headers unreadable: {exc}") from exc


def _check_links(headers: list[tuple]) -> None:
    prev = GENESIS_PREV
    for expected, header in enumerate(headers, start=1):
        height, stored_prev, created_ms, digests, stored, *ranges = header
        if height != expected:
            raise _Bad(expected, f"missing (next block found is {height})")
        if stored_prev != prev:
            raise _Bad(height, "does not link to the previous block's hash")
        if block_hash(height, stored_prev, created_ms, digests, *ranges) != stored:
            raise _Bad(height, "header was altered (hash mismatch)")
        prev = stored


def _pruned(conn: sqlite3.Connection) -> dict[str, int]:
    try:
        return dict(
            conn.execute("SELECT tbl, max(below_block) FROM prunes GROUP BY tbl")
        )
    except sqlite3.DatabaseError as exc:
        raise _Bad(None, f"prune records unreadable: {exc}") from exc


def _check_slot(
    conn: sqlite3.Connection, slot: str, headers: list[tuple], pruned: dict[str, int]
) -> None:
    header_of = {h[0]: h for h in headers}
    seen = set()
    current = None
    try:
        for block, rows in _grouped(conn.execute(CHAINED[slot].select())):
            current = block
            if block not in header_of:
                raise _Bad(block, f"{slot} rows belong to no block")
            seen.add(block)
            if not is_pruned(pruned, slot, block):
                _check_block_rows(slot, header_of[block], rows)
    except sqlite3.DatabaseError as exc:
        block = (current or 0) + 1 if current is not None else 1
        raise _Bad(block, f"{slot} unreadable: {exc}") from exc
    for height, header in header_of.items():
        expected = unpack_digests(header[3])[slot]
        if height in seen or is_pruned(pruned, slot, height):
            continue
        if expected != empty_digest(slot):
            raise _Bad(height, f"{slot} rows are missing")


def _check_block_rows(slot: str, header: tuple, rows: list[tuple]) -> None:
    if rows_digest(rows, slot) != unpack_digests(header[3])[slot]:
        raise _Bad(header[0], f"{slot} do not match the block (edited or deleted)")
    if slot == "readings":
        _check_reading_ranges(header, rows)


def _check_reading_ranges(header: tuple, rows: list[tuple]) -> None:
    """The header's id and stamp ranges must be those of its readings."""
    height, *_, first_reading, n_readings, min_ts_ms, max_ts_ms = header
    stamps = [row[2] for row in rows]
    found = (rows[0][0], len(rows), min(stamps), max(stamps))
    if found != (first_reading, n_readings, min_ts_ms, max_ts_ms):
        raise _Bad(height, "header's reading ranges do not match its readings")


def _grouped(cursor: sqlite3.Cursor) -> Iterator[tuple[int, list[tuple]]]:
    block, rows = None, []
    for row in cursor:
        if row[0] != block:
            if block is not None:
                yield block, rows
            block, rows = row[0], []
        rows.append(row[1:])
    if block is not None:
        yield block, rows


def _count_readings(headers: list[tuple], pruned: dict[str, int]) -> int:
    return sum(h[6] for h in headers if not is_pruned(pruned, "readings", h[0]))


def _check_anchor(anchor: tuple[int, str] | None, headers: list[tuple]) -> None:
    if anchor is None:
        if headers:
            raise _Bad(
                len(headers),
                "the head anchor (ledger.db.head) is missing, so the newest blocks"
                " cannot be checked",
            )
        return
    height, hash_hex = anchor
    if height < 0:
        raise _Bad(None, "head anchor file is unreadable")
    if height > len(headers):
        raise _Bad(
            len(headers) + 1,
            f"missing: the head anchor names block {height}, the ledger ends at "
            f"{len(headers)}",
        )
    if height and headers[height - 1][4].hex() != hash_hex:
        raise _Bad(height, "differs from the head anchor")


def _check_aggregates(conn: sqlite3.Connection) -> None:
    """Each stored gossip message still carries its origin's valid signature."""
    rows = conn.execute(
        "SELECT message_id, origin, seq, start_s, body, wire FROM aggregates"
    )
    for msg_id, origin, seq, start_s, body, wire in rows:
        envelope = authentic(wire)
        if isinstance(envelope, str) or message_id(wire) != msg_id:
            raise _Bad(None, f"aggregate {msg_id.hex()[:16]} is not authentic")
        signed = (envelope.origin, envelope.seq, envelope.body)
        if signed != (origin, seq, _json_or_none(body)) or _start(envelope) != start_s:
            raise _Bad(None, f"aggregate {msg_id.hex()[:16]} was edited")


def _json_or_none(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return None


def _start(envelope) -> object:
    return envelope.body.get("start") if isinstance(envelope.body, dict) else None
