"""Retention: which blocks' rows fall out of each tier, and deleting them."""

from __future__ import annotations

import aiosqlite

from .chain import ROLLUP_SLOT

_TIER_OF_SLOT = {slot: tier for tier, slot in ROLLUP_SLOT.items()}


async def prune_cutoffs(
    db: aiosqlite.Connection, days: dict[str, int], now_s: float, head: int
) -> dict[str, int]:
    """Per slot, the first block to keep: blocks below it are past horizon."""
    cutoffs = {}
    for slot, horizon_days in days.items():
        if horizon_days <= 0:
            continue
        cutoff_ms = int((now_s - horizon_days * 86_400) * 1000)
        async with db.execute(
            "SELECT min(height) FROM blocks WHERE created_ms >= ?", (cutoff_ms,)
        ) as cursor:
            (keep_from,) = await cursor.fetchone()
        cutoffs[slot] = keep_from if keep_from is not None else head + 1
    return cutoffs


def delete_sql(slot: str, below: int, first_kept_reading: int) -> tuple[str, tuple]:
    """The DELETE that drops `slot`'s rows of blocks below `below`."""
    if slot == "readings":
        return "DELETE FROM readings WHERE id < ?", (first_kept_reading,)
    return "DELETE FROM rollups WHERE tier = ? AND block < ?", (
        _TIER_OF_SLOT[slot],
        below,
    )


def is_pruned(pruned: dict[str, int], slot: str, height: int) -> bool:
    """Whether `slot`'s rows of block `height` were dropped by retention."""
    return height < pruned.get(slot, 0)
