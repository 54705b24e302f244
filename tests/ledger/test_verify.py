"""Tamper evidence: edits, deletions, gaps and truncation name a block."""

import asyncio
import sqlite3

import pytest

from koprogo_node.config.model import LedgerConfig
from koprogo_node.errors import LedgerCorrupt
from koprogo_node.ledger.anchor import anchor_path
from koprogo_node.ledger.stats import IngestStats
from koprogo_node.ledger.verify import verify
from koprogo_node.ledger.writer import LedgerWriter

from .conftest import T0, FakeClock, meter_series, write


@pytest.fixture
async def ledger(data_dir):
    await write(data_dir, meter_series(500), batch_rows=200)
    return data_dir / "ledger.db"


def tamper(db, *statements):
    con = sqlite3.connect(db)
    for sql in statements:
        con.execute(sql)
    con.commit()
    con.close()


def test_clean_ledger_verifies(ledger):
    """An untouched ledger passes and counts its readings."""
    verdict = verify(ledger)

    assert verdict.ok
    assert verdict.readings == 2000


def test_edited_value_names_its_block(ledger):
    """Changing one stored value fails verification at that reading's block."""
    tamper(ledger, "UPDATE readings SET value = value + 1 WHERE id = 450")

    verdict = verify(ledger)

    assert not verdict.ok
    assert verdict.bad_block == 3
    assert "readings" in verdict.problem


def test_deleted_row_names_its_block(ledger):
    """Deleting one reading fails verification at its block."""
    tamper(ledger, "DELETE FROM readings WHERE id = 1999")

    assert verify(ledger).bad_block == 10


def test_edited_rollup_is_detected(ledger):
    """Rollups are chained too: editing one fails verification."""
    tamper(
        ledger,
        "UPDATE rollups SET total = total * 2 WHERE tier = 900"
        " AND start_s = (SELECT min(start_s) FROM rollups)",
    )

    assert not verify(ledger).ok


def test_removed_block_is_a_gap(ledger):
    """A missing block header is reported as missing."""
    tamper(ledger, "DELETE FROM blocks WHERE height = 4")

    verdict = verify(ledger)

    assert verdict.bad_block == 4
    assert "missing" in verdict.problem


def test_dropping_newest_blocks_is_caught_by_the_anchor(ledger):
    """Removing the last block and its rows is caught by the head anchor."""
    tamper(
        ledger,
        "DELETE FROM readings WHERE block = 10",
        "DELETE FROM rollups WHERE block = 10",
        "DELETE FROM blocks WHERE height = 10",
    )

    verdict = verify(ledger)

    assert verdict.bad_block == 10
    assert anchor_path(ledger).exists()


def test_truncated_file_fails_with_a_block(ledger):
    """A database cut short fails verification instead of raising."""
    size = ledger.stat().st_size
    with open(ledger, "r+b") as handle:
        handle.truncate(size // 2)

    verdict = verify(ledger)

    assert not verdict.ok
    assert verdict.bad_block is not None or "unreadable" in verdict.problem


def test_missing_file_is_unavailable(tmp_path):
    """Verifying a directory with no ledger raises LedgerCorrupt, not a verdict."""
    with pytest.raises(LedgerCorrupt, match="no ledger"):
        verify(tmp_path / "ledger.db")


def test_edited_stamp_range_in_header_is_detected(ledger):
    """Narrowing a block's stamp range (to hide readings) breaks its hash."""
    tamper(ledger, "UPDATE blocks SET min_ts_ms = 0, max_ts_ms = 1 WHERE height = 5")

    verdict = verify(ledger)

    assert verdict.bad_block == 5
    assert "altered" in verdict.problem


def test_missing_anchor_is_reported(ledger):
    """Deleting the head anchor is reported rather than trusted away."""
    anchor_path(ledger).unlink()

    verdict = verify(ledger)

    assert not verdict.ok
    assert "head anchor" in verdict.problem


async def test_verify_while_writing_sees_a_consistent_snapshot(data_dir):
    """Verifying between commits of a live writer never reports a false fault."""
    writer = LedgerWriter(
        data_dir, LedgerConfig(batch_rows=50), FakeClock(), "b", IngestStats()
    )
    await writer.open()
    verdicts = []
    for chunk in range(20):
        writer._pending.extend(meter_series(25, start=T0 + chunk * 3000))
        await writer.flush()
        verdicts.append(await asyncio.to_thread(verify, data_dir / "ledger.db"))
    await writer.close()

    assert all(v.ok for v in verdicts), [v.line() for v in verdicts if not v.ok]
