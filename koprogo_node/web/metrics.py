"""Prometheus metrics at GET /metrics, read from the NodeView at scrape time.

A private registry keeps the library's process and platform collectors (and
any other module's metrics) out of the node's exposition; nothing is counted
twice because every value is read from the counters the node already keeps.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Callable, Iterator

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector

ALERT_STATES = ("open", "acknowledged", "resolved")
SOURCE_STATES = ("starting", "running", "failing", "finished")


class NodeCollector(Collector):
    """Turns the NodeView into metric families on every scrape."""

    def __init__(self, get_view: Callable[[], object]) -> None:
        self.get_view = get_view

    def collect(self) -> Iterator[Metric]:
        """Yield every family, each from the view's current state."""
        view = self.get_view()
        yield from _ingest(view)
        yield from _ledger(view)
        yield from _federation(view.federation)
        yield _alerts(view.detection)
        yield _sources(view.health)


def registry_for(get_view: Callable[[], object]) -> CollectorRegistry:
    """A registry holding only the node's collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NodeCollector(get_view))
    return registry


def add_routes(app: web.Application, view_key: web.AppKey) -> None:
    """Serve the exposition of `app[view_key]` at GET /metrics."""
    registry = registry_for(lambda: app[view_key])

    async def metrics(request: web.Request) -> web.Response:
        body = generate_latest(registry)
        response = web.Response(body=body)
        # generate_latest writes the classic text format, whatever LATEST says.
        response.headers["Content-Type"] = CONTENT_TYPE_PLAIN_0_0_4
        return response

    app.add_routes([web.get("/metrics", metrics)])


def _ingest(view) -> Iterator[Metric]:
    yield CounterMetricFamily(
        "koprogo_readings_ingested",
        "Readings committed to the ledger since the daemon started",
        value=view.stats.committed_total,
    )
    rejects = CounterMetricFamily(
        "koprogo_rejects",
        "Input refused since the daemon started, by reason",
        labels=["reason"],
    )
    for reason, count in sorted(view.stats.rejects_by_reason().items()):
        rejects.add_metric([reason], count)
    yield rejects
    yield GaugeMetricFamily(
        "koprogo_ingest_queue_depth",
        "Readings waiting for the ledger writer",
        value=view.queue.qsize(),
    )


def _ledger(view) -> Iterator[Metric]:
    yield GaugeMetricFamily(
        "koprogo_ledger_size_bytes",
        "Ledger database plus its write-ahead log, on disk",
        value=ledger_bytes(Path(view.db_path)),
    )
    yield GaugeMetricFamily(
        "koprogo_ledger_height", "Height of the newest block", value=view.stats.height
    )


def ledger_bytes(db_path: Path) -> int:
    """Size of the database and its write-ahead log; 0 for what is missing."""
    total = 0
    for path in (db_path, db_path.with_name(db_path.name + "-wal")):
        try:
            total += path.stat().st_size
        except OSError:
            pass
    return total


def _federation(service) -> Iterator[Metric]:
    summary = service.summary() if service is not None else {}
    yield GaugeMetricFamily(
        "koprogo_peers_connected",
        "Federation peers with an open connection",
        value=summary.get("connected", 0),
    )
    yield CounterMetricFamily(
        "koprogo_aggregates_published",
        "Aggregates this node published to the federation since it started",
        value=summary.get("published", 0),
    )


def _alerts(detection) -> Metric:
    alerts = detection.book.alerts.values() if detection is not None else ()
    counts = Counter(alert.state for alert in alerts)
    family = GaugeMetricFamily(
        "koprogo_alerts", "Alerts known to the detector, by state", labels=["state"]
    )
    # Every known state is exported, at 0 too, so alert rules see no gaps.
    for state in sorted(set(ALERT_STATES) | set(counts)):
        family.add_metric([state], counts.get(state, 0))
    return family


def _sources(health: dict) -> Metric:
    family = GaugeMetricFamily(
        "koprogo_source_state",
        "1 for the state each source is in, 0 for the others",
        labels=["source", "state"],
    )
    for name in sorted(health):
        current = health[name].state
        for state in sorted(set(SOURCE_STATES) | {current}):
            family.add_metric([name, state], 1 if state == current else 0)
    return family
