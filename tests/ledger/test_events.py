"""Events recorded by other parts of the node are chained like readings."""

import asyncio
import sqlite3

from koprogo_node.config.model import LedgerConfig
from koprogo_node.ledger import query
from koprogo_node.ledger.stats import IngestStats
from koprogo_node.ledger.verify import verify
from koprogo_node.ledger.writer import LedgerWriter

from .conftest import FakeClock


async def record(data_dir, events):
    writer = LedgerWriter(
        data_dir, LedgerConfig(batch_ms=50), FakeClock(), "boot-a", IngestStats()
    )
    await writer.open()
    queue = asyncio.Queue()
    task = asyncio.create_task(writer.run(queue))
    for kind, sensor, detail in events:
        writer.record_event(kind, sensor, detail, ts_ms=1_000)
    await queue.put(None)
    await task
    await writer.close()


async def test_recorded_events_are_read_back_in_order(data_dir):
    await record(
        data_dir,
        [
            ("alert_opened", "sim.common.water", {"id": "a1", "litres_per_hour": 40}),
            ("other", None, {}),
            ("alert_resolved", "sim.common.water", {"id": "a1"}),
        ],
    )
    conn = query.open_reader(data_dir / "ledger.db")
    found = query.events(conn, "alert_")
    conn.close()

    assert [(kind, detail["id"]) for _, _, kind, _, detail in found] == [
        ("alert_opened", "a1"),
        ("alert_resolved", "a1"),
    ]
    assert found[0][3] == "sim.common.water"
    assert verify(data_dir / "ledger.db").ok


async def test_an_edited_event_is_caught_by_verify(data_dir):
    await record(data_dir, [("alert_opened", "w", {"id": "a1"})])
    con = sqlite3.connect(data_dir / "ledger.db")
    con.execute('UPDATE events SET detail = \'{"id":"a2"}\'')
    con.commit()
    con.close()

    assert not verify(data_dir / "ledger.db").ok
