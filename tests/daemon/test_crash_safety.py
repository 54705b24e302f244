"""SIGKILL during ingest never costs a committed reading nor breaks the chain."""

import os
import random
import signal
import sqlite3
import time

from .conftest import cli, log_events, start_node, wait_for_event, write_config

KILLS = 20


def committed_blocks(log_path):
    return {
        e["height"]: (e["hash"], e["last_reading"])
        for e in log_events(log_path, "block_committed")
    }


def test_sigkill_at_random_moments_keeps_every_committed_reading(node_dir):
    """Twenty kills mid-ingest: verify passes and every reported block is intact."""
    config, data = node_dir
    rng = random.Random(20261203)
    reported = {}
    for attempt in range(KILLS):
        log_path = data.parent / f"run{attempt}.log"
        write_config(config, start_offset_s=attempt * 3600)
        proc = start_node(config, data, log_path)
        wait_for_event(log_path, "block_committed", readings=1)  # ingest is under way
        time.sleep(rng.uniform(0.0, 1.0))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        reported.update(committed_blocks(log_path))

        verdict = cli("ledger", "verify", "--data-dir", str(data))

        assert verdict.returncode == 0, verdict.stdout + verdict.stderr
        assert verdict.stdout.startswith("OK")
        _assert_reported_blocks_present(data / "ledger.db", reported)
    assert len(reported) > 2 * KILLS  # the kills really landed mid-ingest


def _assert_reported_blocks_present(db, reported):
    con = sqlite3.connect(db)
    try:
        stored = dict(con.execute("SELECT height, hash FROM blocks"))
        for height, (block_hash, last_reading) in reported.items():
            assert stored[height].hex() == block_hash
            count = con.execute(
                "SELECT count(*) FROM readings WHERE id <= ?", (last_reading,)
            ).fetchone()[0]
            assert count == last_reading
    finally:
        con.close()
