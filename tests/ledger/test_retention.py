"""Retention prunes each tier on its own horizon and the chain still verifies."""

import sqlite3

from koprogo_node.config.model import LedgerConfig, RetentionConfig
from koprogo_node.ledger.stats import IngestStats
from koprogo_node.ledger.verify import verify
from koprogo_node.ledger.writer import LedgerWriter

from .conftest import T0, FakeClock, meter_series

DAY_S = 86_400


async def run_batch(writer, readings):
    writer._pending.extend(readings)
    await writer.flush()
    await writer.settle()


async def test_raw_readings_past_horizon_are_pruned_and_chain_verifies(data_dir):
    """After two days, raw readings of day one go; rollups and the chain stay."""
    clock = FakeClock(wall=T0 + 3600)
    config = LedgerConfig(retention=RetentionConfig(raw_days=1))
    writer = LedgerWriter(data_dir, config, clock, "boot", IngestStats())
    await writer.open()
    await run_batch(writer, meter_series(120, start=T0, sensors=1))
    clock.wall_s = T0 + 2 * DAY_S + 3600
    writer._next_prune = 0  # housekeeping is hourly; make it due now

    await run_batch(writer, meter_series(60, start=T0 + 2 * DAY_S, sensors=1))
    await writer.close()

    con = sqlite3.connect(data_dir / "ledger.db")
    ids = con.execute("SELECT min(id), count(*) FROM readings").fetchone()
    prunes = con.execute("SELECT tbl, below_block FROM prunes").fetchall()
    quarters = con.execute("SELECT count(*) FROM rollups WHERE tier = 900").fetchone()
    con.close()
    assert ids == (121, 60)
    assert prunes == [("readings", 2)]
    assert quarters[0] >= 7  # day one's quarters outlive its raw readings
    verdict = verify(data_dir / "ledger.db")
    assert verdict.ok, verdict.line()
    assert verdict.readings == 60
