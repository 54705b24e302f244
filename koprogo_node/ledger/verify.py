"""`ledger verify`: recompute every digest and hash, report the first bad block."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from .anchor import read_anchor
from .chain import CHAINED, GENESIS_PREV, block_hash, rows_digest, unpack_digests
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
    """Check the ledger at `db_path` against its chain and its anchor."""
    if not db_path.is_file():
        return Verdict(False, 0, 0, None, f"no ledger at {db_path}")
    try:
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        return Verdict(False, 0, 0, None, f"cannot open: {exc}")
    try:
        return _verify(conn, db_path)
    except _Bad as bad:
        return Verdict(False, 0, 0, bad.block, bad.problem)
    finally:
        conn.close()


def _verify(conn: sqlite3.Connection, db_path: Path) -> Verdict:
    headers = _headers(conn)
    pruned = _pruned(conn)
    checks = [lambda: _check_links(headers), lambda: _check_anchor(db_path, headers)]
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
            " n_readings FROM blocks ORDER BY height"
        ).fetchall()
    except sqlite3.DatabaseError as exc:
        raise _Bad(None, f"block headers unreadable: {exc}") from exc


def _check_links(headers: list[tuple]) -> None:
    prev = GENESIS_PREV
    for expected, (height, stored_prev, created_ms, digests, stored, *_) in enumerate(
        headers, start=1
    ):
        if height != expected:
            raise _Bad(expected, f"missing (next block found is {height})")
        if stored_prev != prev:
            raise _Bad(height, "does not link to the previous block's hash")
        if block_hash(height, stored_prev, created_ms, digests) != stored:
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
    by_height = {h[0]: unpack_digests(h[3])[slot] for h in headers}
    seen = set()
    current = None
    try:
        for block, rows in _grouped(conn.execute(CHAINED[slot].select())):
            current = block
            if block not in by_height:
                raise _Bad(block, f"{slot} rows belong to no block")
            seen.add(block)
            if (
                not is_pruned(pruned, slot, block)
                and rows_digest(rows) != by_height[block]
            ):
                raise _Bad(block, f"{slot} do not match the block (edited or deleted)")
    except sqlite3.DatabaseError as exc:
        block = (current or 0) + 1 if current is not None else 1
        raise _Bad(block, f"{slot} unreadable: {exc}") from exc
    empty = rows_digest([])
    for height, digest in by_height.items():
        if (
            height not in seen
            and digest != empty
            and not is_pruned(pruned, slot, height)
        ):
            raise _Bad(height, f"{slot} rows are missing")


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


def _check_anchor(db_path: Path, headers: list[tuple]) -> None:
    anchor = read_anchor(db_path)
    if anchor is None:
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
