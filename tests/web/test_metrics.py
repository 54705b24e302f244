"""Prometheus metrics read from the node's view at scrape time."""

import asyncio
from pathlib import Path
from types import SimpleNamespace

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from koprogo_node.config import load
from koprogo_node.daemon.node import Node
from koprogo_node.web.metrics import add_routes

VIEW = web.AppKey("view", object)


class FakeStats:
    committed_total = 1234
    height = 17

    def rejects_by_reason(self) -> dict:
        return {"out_of_range": 3, "bad_crc": 1}


def fake_view(tmp_path: Path, **changes) -> SimpleNamespace:
    """A view with every field the collector reads, and known values."""
    db_path = tmp_path / "ledger.db"
    db_path.write_bytes(b"x" * 1000)
    db_path.with_name("ledger.db-wal").write_bytes(b"y" * 24)
    queue = asyncio.Queue()
    queue.put_nowait([])
    queue.put_nowait([])
    alerts = {
        "a": SimpleNamespace(state="open"),
        "b": SimpleNamespace(state="resolved"),
        "c": SimpleNamespace(state="resolved"),
    }
    view = SimpleNamespace(
        db_path=db_path,
        stats=FakeStats(),
        queue=queue,
        federation=SimpleNamespace(summary=lambda: {"connected": 2, "published": 9}),
        detection=SimpleNamespace(book=SimpleNamespace(alerts=alerts)),
        health={
            "p1": SimpleNamespace(state="running"),
            "modbus": SimpleNamespace(state="failing"),
        },
    )
    vars(view).update(changes)
    return view


async def scrape(view) -> tuple[int, str, dict]:
    """GET /metrics from an app serving `view`; status, type and samples."""
    app = web.Application()
    app[VIEW] = view
    add_routes(app, VIEW)
    async with TestClient(TestServer(app)) as client:
        answer = await client.get("/metrics")
        text = await answer.text()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    return answer.status, answer.headers["Content-Type"], samples


async def test_fake_view_values_are_exported(tmp_path):
    """Each metric carries the value the view holds."""
    status, content_type, samples = await scrape(fake_view(tmp_path))

    assert 200 == status
    assert content_type.startswith("text/plain; version=0.0.4")
    assert 1234 == samples[("koprogo_readings_ingested_total", ())]
    assert 3 == samples[("koprogo_rejects_total", (("reason", "out_of_range"),))]
    assert 1 == samples[("koprogo_rejects_total", (("reason", "bad_crc"),))]
    assert 1024 == samples[("koprogo_ledger_size_bytes", ())]
    assert 17 == samples[("koprogo_ledger_height", ())]
    assert 2 == samples[("koprogo_peers_connected", ())]
    assert 9 == samples[("koprogo_aggregates_published_total", ())]
    assert 2 == samples[("koprogo_ingest_queue_depth", ())]


async def test_alerts_are_counted_by_state_with_zeros(tmp_path):
    """Every alert state appears, those with no alert at 0."""
    _, _, samples = await scrape(fake_view(tmp_path))

    by_state = {
        dict(labels)["state"]: value
        for (name, labels), value in samples.items()
        if name == "koprogo_alerts"
    }

    assert {"open": 1, "acknowledged": 0, "resolved": 2} == by_state


async def test_source_states_are_one_hot(tmp_path):
    """Each source has 1 for its current state and 0 for the others."""
    _, _, samples = await scrape(fake_view(tmp_path))

    ones = {
        labels
        for (name, labels), value in samples.items()
        if name == "koprogo_source_state" and value == 1
    }

    assert {
        (("source", "modbus"), ("state", "failing")),
        (("source", "p1"), ("state", "running")),
    } == ones
    assert 8 == sum(1 for name, _ in samples if name == "koprogo_source_state")


async def test_metrics_follow_the_view_between_scrapes(tmp_path):
    """Values are read at scrape time, not when the route is added."""
    view = fake_view(tmp_path)
    app = web.Application()
    app[VIEW] = view
    add_routes(app, VIEW)

    async with TestClient(TestServer(app)) as client:
        view.stats.committed_total = 5000
        text = await (await client.get("/metrics")).text()

    assert "koprogo_readings_ingested_total 5000.0" in text


async def test_node_without_federation_or_detection(tmp_path):
    """A node with both off exports zeros rather than failing."""
    view = fake_view(tmp_path, federation=None, detection=None, health={})

    status, _, samples = await scrape(view)

    assert 200 == status
    assert 0 == samples[("koprogo_peers_connected", ())]
    assert 0 == samples[("koprogo_alerts", (("state", "open"),))]


CONFIG = """
[time]
trust = "always"
[ledger]
batch_ms = 200
[web]
enabled = false
[[sources]]
type = "simulated"
name = "sim"
lots = 4
speed = 600.0
step_s = 10.0
emit = "readings"
"""


async def test_live_node_scrape_parses_and_counts_readings(tmp_path):
    """A running node's view scrapes into valid exposition with real counts."""
    config_path = tmp_path / "node.toml"
    config_path.write_text(CONFIG)
    node = Node(load(config_path), tmp_path / "data")
    running = asyncio.create_task(node.run(duration_s=30))
    try:
        await _wait_for_commits(node)
        _, _, samples = await scrape(node.view)
    finally:
        node.stop()
        await running

    assert samples[("koprogo_readings_ingested_total", ())] > 0
    assert samples[("koprogo_ledger_height", ())] >= 1
    assert samples[("koprogo_ledger_size_bytes", ())] > 0
    assert (
        1
        == samples[("koprogo_source_state", (("source", "sim"), ("state", "running")))]
    )


async def _wait_for_commits(node: Node) -> None:
    for _ in range(200):
        if node.view is not None and node.view.stats.committed_total > 0:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the node committed nothing in 10 s")
