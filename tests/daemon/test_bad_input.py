"""Bad input through the whole node: counted by reason, neighbours kept."""

import json
from pathlib import Path

from .conftest import cli, log_events, start_node, wait_for_event

TELEGRAMS = Path(__file__).parents[1] / "data" / "dsmr_parser-telegrams"
CSV = """timestamp,value
2026-01-01 00:00:00,100
2026-01-01 00:05:00,101
2026-01-01 00:10:00,NaN
2026-01-01 00:15:00,abc
2026-01-01 00:02:00,102
2026-01-01 00:05:00,105
2026-01-01 00:20:00,100.5
2026-01-01 00:25:00,103
"""


def test_each_kind_of_bad_input_is_counted_and_the_rest_stored(tmp_path):
    """CRC, NaN, text, order, duplicate and backwards counter: counted, not fatal."""
    stream = tmp_path / "p1.txt"
    stream.write_bytes(
        (TELEGRAMS / "be_fluvius_emucs171_gas_water.txt").read_bytes()
        + (
            TELEGRAMS / "edge-cases/be_fluvius_emucs171__line_removed_crc_invalid.txt"
        ).read_bytes()
        + (TELEGRAMS / "be_fluvius_emucs171_alt_gas_water.txt").read_bytes()
    )
    series = tmp_path / "water.csv"
    series.write_text(CSV)
    config = tmp_path / "node.toml"
    config.write_text(f"""
[time]
trust = "always"
[ledger]
batch_ms = 100
[web]
enabled = false
[log]
level = "debug"
format = "json"
[[sources]]
type = "p1"
name = "p1"
path = "{stream}"
interval_s = 0
[[sources]]
type = "csv"
name = "csv"
path = "{series}"
sensor = "water"
unit = "m3"
kind = "counter"
speed = 0
""")
    data, log_path = tmp_path / "data", tmp_path / "node.log"
    proc = start_node(config, data, log_path)
    wait_for_event(log_path, "source_finished")
    wait_for_event(log_path, "block_committed", readings=1)
    proc.terminate()
    assert proc.wait(timeout=20) == 0

    report = json.loads(cli("status", "--json", "--data-dir", str(data)).stdout)
    exported = cli("ledger", "export", "--format", "jsonl", "--data-dir", str(data))

    reasons = {(r["source"], r["reason"]): r["count"] for r in report["rejects"]}
    assert reasons[("p1", "crc_mismatch")] == 1
    assert reasons[("csv.water", "not_a_number")] == 2
    assert reasons[("csv.water", "out_of_order")] == 1
    assert reasons[("csv.water", "duplicate_timestamp")] == 1
    assert reasons[("csv.water", "counter_backwards")] == 1
    rows = [json.loads(line) for line in exported.stdout.splitlines()]
    water = [(r["value"], r["delta"]) for r in rows if r["sensor"] == "csv.water"]
    assert water == [(100.0, 0.0), (101.0, 1.0), (100.5, 0.0), (103.0, 2.0)]
    imports = sorted(r["value"] for r in rows if r["sensor"] == "p1.import_t1")
    assert len(imports) == 2  # the telegrams on both sides of the bad one
    warned = [
        e["reason"]
        for e in log_events(log_path, "input_rejected")
        if e["level"] == "warning"
    ]
    assert warned.count("not_a_number") == 1  # once per transition, then DEBUG
