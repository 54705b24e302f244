"""The writer: batches, rollups, restarts and the clock rule."""

import sqlite3

from koprogo_node.core.readings import Kind, Reading
from koprogo_node.ledger.verify import verify

from .conftest import T0, FakeClock, meter_series, write


def rows(data_dir, sql):
    con = sqlite3.connect(data_dir / "ledger.db")
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


async def test_readings_land_in_blocks_of_at_most_batch_rows(data_dir):
    """1,000 readings with batch_rows 100 make at least 10 verified blocks."""
    writer = await write(data_dir, meter_series(250), batch_rows=100)

    assert rows(data_dir, "SELECT count(*) FROM readings") == [(1000,)]
    assert writer.height >= 10
    assert rows(data_dir, "SELECT max(n_readings) FROM blocks") == [(100,)]
    assert verify(data_dir / "ledger.db").ok


async def test_counter_consumption_sums_into_rollups(data_dir):
    """Quarter rollups of a counter hold its consumption, never negative."""
    await write(data_dir, meter_series(120, sensors=1))

    quarters = rows(
        data_dir, "SELECT total FROM rollups WHERE tier = 900 ORDER BY start_s"
    )

    assert [q[0] for q in quarters] == [3.5] + [3.75] * 6  # 15 steps of 0.25


async def test_restart_continues_chain_ids_and_rollups(data_dir):
    """Two runs over one directory give one chain and the same rollups as one run."""
    series = meter_series(240, sensors=1)
    await write(data_dir, series[:100])
    await write(data_dir, series[100:])
    once = data_dir.parent / "once"
    once.mkdir()
    await write(once, series)

    sql = "SELECT tier, start_s, n, total, last FROM rollups ORDER BY 1, 2"
    assert rows(data_dir, sql) == rows(once, sql)
    assert rows(data_dir, "SELECT min(id), max(id), count(*) FROM readings") == [
        (1, 240, 240)
    ]
    assert verify(data_dir / "ledger.db").ok


async def test_untrusted_stamps_are_corrected_once_clock_is_trusted(data_dir):
    """Readings stamped by an unsynced clock get monotonic + offset afterwards."""
    clock = FakeClock(trusted=False, wall=T0)
    early = Reading(
        "b.t", 1_000_000_000.0, 20.0, "C", Kind.GAUGE, clock_trusted=False, mono_s=50.0
    )
    writer_one = await write(data_dir, [early], clock=clock)
    clock.trust_now = True
    clock.wall_s = T0
    later = Reading("b.t", T0, 21.0, "C", Kind.GAUGE)

    await write(data_dir, [later], clock=clock)

    offset_ms = rows(data_dir, "SELECT offset_ms FROM clock_fixes")[0][0]
    fixed = rows(
        data_dir, "SELECT ts_ms, quality FROM readings_effective WHERE value = 20.0"
    )
    assert writer_one.height == 1
    assert fixed == [(50_000 + offset_ms, 0)]
    assert verify(data_dir / "ledger.db").ok


async def test_bad_readings_are_counted_and_persisted(data_dir):
    """Rejected readings are counted by reason in the ledger's rejects table."""
    good = meter_series(3, sensors=1)
    dup = Reading(good[2].sensor, good[2].ts, 999.0, "kWh", Kind.COUNTER)
    nan = Reading(good[0].sensor, T0 + 999, float("nan"), "kWh", Kind.COUNTER)

    await write(data_dir, [*good, dup, nan])

    assert rows(data_dir, "SELECT reason, count FROM rejects ORDER BY reason") == [
        ("duplicate_timestamp", 1),
        ("not_a_number", 1),
    ]
    assert rows(data_dir, "SELECT count(*) FROM readings") == [(3,)]
