"""Aggregates exchanged with other buildings: stored with a block, verified."""

import asyncio
import json
import sqlite3

from koprogo_node.config.model import LedgerConfig
from koprogo_node.federation.envelope import message_id, seal
from koprogo_node.federation.identity import NodeKey
from koprogo_node.ledger import query
from koprogo_node.ledger.schema import MIGRATIONS, SCHEMA_VERSION, migrate
from koprogo_node.ledger.stats import IngestStats
from koprogo_node.ledger.verify import verify
from koprogo_node.ledger.writer import LedgerWriter

from .conftest import T0, FakeClock, meter_series

BODY = {
    "tier": "hour",
    "start": 1_780_012_800,
    "values": {"water": {"unit": "m3", "per_lot": 0.012, "per_m2": None}},
    "meta": {"decade": 1970, "lots_band": "10-19", "region": "10xx", "heating": "gas"},
}


def aggregate_row(key, seq, body=BODY):
    wire = seal(key, "koprogo/aggregates/v1/hour", seq, T0, body)
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return (message_id(wire), key.public_key, seq, 3600, body["start"], 1, text, wire)


async def store(data_dir, rows):
    writer = LedgerWriter(
        data_dir, LedgerConfig(batch_ms=50), FakeClock(), "boot-a", IngestStats()
    )
    await writer.open()
    queue = asyncio.Queue()
    task = asyncio.create_task(writer.run(queue))
    await queue.put(meter_series(3))
    writer.add_aggregates(rows)
    await queue.put(None)
    await task
    await writer.close()


async def test_stored_aggregates_are_read_back_and_verify(data_dir, tmp_path):
    key = NodeKey.load_or_create(tmp_path, "remote")
    rows = [aggregate_row(key, 1), aggregate_row(key, 2)]
    await store(data_dir, rows + rows[:1])  # a repeat is ignored

    conn = query.open_reader(data_dir / "ledger.db")
    stored = query.aggregates(conn, 3600, 0)
    progress = query.aggregate_progress(conn, key.public_key)
    conn.close()

    assert len(stored) == 2
    assert json.loads(stored[0][2]) == BODY
    assert progress == {"seq": 2, "buckets": {3600: BODY["start"]}}
    assert verify(data_dir / "ledger.db").ok


async def test_an_edited_aggregate_fails_verification(data_dir, tmp_path):
    key = NodeKey.load_or_create(tmp_path, "remote")
    await store(data_dir, [aggregate_row(key, 1)])
    con = sqlite3.connect(data_dir / "ledger.db")
    con.execute("UPDATE aggregates SET body = replace(body, '0.012', '0.001')")
    con.commit()
    con.close()

    verdict = verify(data_dir / "ledger.db")

    assert not verdict.ok
    assert "was edited" in verdict.problem


async def test_a_forged_signature_fails_verification(data_dir, tmp_path):
    key = NodeKey.load_or_create(tmp_path, "remote")
    row = aggregate_row(key, 1)
    forged = row[7][:-3] + bytes(b ^ 1 for b in row[7][-3:])
    await store(data_dir, [(message_id(forged), *row[1:7], forged)])

    verdict = verify(data_dir / "ledger.db")

    assert not verdict.ok
    assert "is not authentic" in verdict.problem


def test_a_version_1_ledger_is_migrated_with_its_data(tmp_path):
    con = sqlite3.connect(tmp_path / "ledger.db", isolation_level=None)
    con.executescript(MIGRATIONS[0] + "; PRAGMA user_version = 1;")
    con.execute("INSERT INTO boots VALUES (1, 1, 'b')")

    found = migrate(con)

    assert (found, SCHEMA_VERSION) == (1, 2)
    assert con.execute("SELECT count(*) FROM aggregates").fetchone() == (0,)
    assert con.execute("SELECT boot_id FROM boots").fetchone() == ("b",)
