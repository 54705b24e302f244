"""The running node: ledger writer, sources, web server, systemd, signals."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import structlog

from ..config.model import Config, P1Source
from ..core.clock import Clock
from ..core.readings import Reading
from ..drivers.base import Source
from ..drivers.registry import build_source
from ..errors import FederationUnavailable, LedgerError, WebUnavailable
from ..federation.identity import NodeKey

if TYPE_CHECKING:
    from ..detect.service import DetectionService
    from ..federation.service import FederationService
from ..ledger.stats import IngestStats
from ..ledger.writer import LedgerWriter
from ..web.control_socket import remove_socket, socket_path
from .runfile import write_run_file
from .sdnotify import Notifier
from .sink import IngestSink
from .supervisor import SourceHealth, supervise
from .systime import boot_id, system_clock
from .taps import Taps

log = structlog.get_logger(__name__)
# Asked of systemd each time the ledger reports a slow start as progressing.
EXTEND_START_S = 60


@dataclass
class NodeView:
    """What the web API and status may read of a running node."""

    config: Config
    data_dir: Path
    db_path: Path
    clock: Clock
    stats: IngestStats
    writer: LedgerWriter
    queue: asyncio.Queue
    health: dict[str, SourceHealth] = field(default_factory=dict)
    latest: dict[str, Reading] = field(default_factory=dict)
    sources: dict[str, Source] = field(default_factory=dict)
    started_s: float = field(default_factory=time.time)
    peer_id: str = ""
    control_socket: Path | None = None
    taps: Taps = field(default_factory=Taps)
    federation: FederationService | None = None
    detection: DetectionService | None = None
    # The pending first-admin code, shown on the login page to a browser on
    # the node itself (a kiosk screen, an SSH tunnel), never to the network.
    setup_code: str | None = None


class Node:
    """Owns every task of the daemon; `run` returns after a clean shutdown."""

    def __init__(
        self,
        config: Config,
        data_dir: Path,
        clock: Clock | None = None,
        wall: Callable[[], float] = time.time,
        config_path: Path | None = None,
    ) -> None:
        self.config = config
        self.config_path = config_path  # recorded so the CLI reads the same file
        self.data_dir = data_dir
        self.clock = clock or system_clock(config.time.trust)
        self.wall = wall  # real time for gossip, even when `clock` is simulated
        self.stats = IngestStats()
        self.notifier = Notifier()
        self.writer = LedgerWriter(
            data_dir,
            config.ledger,
            self.clock,
            boot_id(),
            self.stats,
            # A backup or a migration before opening: not stuck, only slow
            # (systemd's start timeout is 90 s by default).
            keep_waiting=lambda: self.notifier.extend_start(EXTEND_START_S),
        )
        # Built now, so that a driver's configuration error stops the node
        # before it opens anything.
        self.sources = [build_source(c) for c in config.sources]
        self.stop_event = asyncio.Event()
        self.view: NodeView | None = None
        self.web_url: str | None = None
        self.identity: NodeKey | None = None
        self._source_tasks: list[asyncio.Task] = []

    async def run(self, duration_s: float | None = None) -> None:
        """Run until SIGTERM/SIGINT, `stop()` or `duration_s` seconds."""
        if self.config.federation.enabled:  # before anything is opened
            from ..federation.service import read_roster_file

            read_roster_file(self.config, self.data_dir)
        await self._open_ledger()
        queue: asyncio.Queue[list[Reading] | None] = asyncio.Queue(
            self.config.ingest.queue_size
        )
        self.view = NodeView(
            self.config,
            self.data_dir,
            self.writer.path,
            self.clock,
            self.stats,
            self.writer,
            queue,
            peer_id=self.identity.peer_id,
            control_socket=socket_path(self.config.control.socket, self.data_dir),
        )
        writer_task = asyncio.create_task(self.writer.run(queue), name="ledger")
        web_runner = federation = None
        try:
            web_runner = await self._start_web()
            federation = self.view.federation = await self._start_federation()
            self.view.detection = await self._start_detection()
            for source in self.sources:
                self.add_source(source)
            self._install_signals()
            write_run_file(
                self.data_dir,
                self.config,
                self.web_url,
                self.view.control_socket,
                self.config_path,
            )
            self.notifier.ready()
            log.info(
                "node_started",
                sources=len(self.sources),
                web=self.web_url,
                peer_id=self.identity.peer_id,
            )
            await self._wait(writer_task, duration_s)
        finally:
            if federation is not None:
                await federation.stop()
            await self._shutdown(queue, writer_task, web_runner)

    async def _open_ledger(self) -> None:
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LedgerError(
                f"cannot use data directory {self.data_dir}: {exc.strerror}"
            ) from exc
        # Before the ledger opens: a key problem must not leave it open.
        self.identity = NodeKey.load_or_create(self.data_dir)
        await self.writer.open()

    def add_source(self, source: Source) -> None:
        """Start supervising one more source (also used by composite sources)."""
        view = self.view
        health = view.health.setdefault(source.name, SourceHealth(source.name))
        view.sources[source.name] = source
        if hasattr(source, "observe"):  # publishes the node's readings (MQTT)
            source.observe(view.latest, self.config.node.building_id)
        topic = self.config.alerts.mqtt_topic
        if hasattr(source, "observe_alerts") and view.detection and topic:
            building = self.config.node.building_id
            source.observe_alerts(
                view.detection.feed, topic.format(building_id=building)
            )
        sink = IngestSink(
            view.queue,
            self.stats,
            health,
            view.latest,
            self.writer.last_value,
            view.taps,
        )
        task = asyncio.create_task(
            supervise(source, sink, self.clock, health), name=f"source:{source.name}"
        )
        self._source_tasks.append(task)
        if hasattr(source, "wait_device_paths"):
            self._source_tasks.append(
                asyncio.create_task(self._read_devices(source), name="devices")
            )

    async def _read_devices(self, source) -> None:
        """Attach a P1 reader to each terminal a simulated building opens."""
        from ..drivers.p1_reader import P1Reader  # dsmr_parser: ~15 MB, load if used

        paths = await source.wait_device_paths()
        for key, path in sorted(paths.items()):
            meter = P1Source(name=f"{source.name}.{key}", path=path, interval_s=0.0)
            self.add_source(P1Reader(meter))

    def stop(self) -> None:
        """Ask the node to shut down cleanly."""
        self.stop_event.set()

    async def _wait(self, writer_task: asyncio.Task, duration_s: float | None) -> None:
        waits = [asyncio.create_task(self.stop_event.wait()), writer_task]
        watchdog = asyncio.create_task(self._watchdog())
        try:
            done, _ = await asyncio.wait(
                waits, timeout=duration_s, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            watchdog.cancel()
            waits[0].cancel()
        if writer_task in done:
            writer_task.result()  # the ledger failed: raise its error

    async def _watchdog(self) -> None:
        if self.notifier.watchdog_s is None:
            return
        while True:
            self.notifier.watchdog()
            await asyncio.sleep(self.notifier.watchdog_s / 2)

    async def _shutdown(self, queue, writer_task, web_runner) -> None:
        self.notifier.stopping()
        log.info("node_stopping", pending=queue.qsize())
        for task in self._source_tasks:
            task.cancel()
        await asyncio.gather(*self._source_tasks, return_exceptions=True)
        if not writer_task.done():
            await queue.put(None)  # the writer commits what is queued, then ends
            await writer_task
        await self.writer.close()
        if web_runner is not None:
            self.view.taps.end_all()  # or open `readings tail`s hold the server
            await web_runner.cleanup()
            remove_socket(self.view.control_socket)
        log.info(
            "node_stopped",
            height=self.writer.height,
            committed=self.stats.committed_total,
        )

    async def _start_web(self):
        """The dashboard on TCP when enabled; the CLI's control socket always."""
        from ..web.app import start_web

        if self.config.web.enabled:
            self._print_setup_code()
        try:
            runner, self.web_url = await start_web(self.view, self.config)
        except OSError as exc:
            web = self.config.web
            reason = exc.strerror or exc
            raise WebUnavailable(
                f"cannot serve the dashboard on {web.host}:{web.port}: {reason}"
                " (choose another port: web.port, or --port for the demo;"
                " or set web.enabled = false)"
            ) from exc
        return runner

    def _print_setup_code(self) -> None:
        from ..web.auth import ensure_setup_code, show_on_console

        code = ensure_setup_code(self.data_dir)
        self.view.setup_code = code
        if code is None:
            return
        # No admin yet: the code is the only way to make the first one.
        print(
            f"koprogo-node: no dashboard admin yet. One-time setup code: {code}"
            " (enter it on the dashboard's first page)",
            file=sys.stderr,
            flush=True,
        )
        console = show_on_console(code, self.config.web.port)
        log.info("setup_code_printed", console=str(console) if console else None)

    async def _start_detection(self) -> DetectionService | None:
        if not self.config.alerts.enabled:
            return None
        from ..detect.service import DetectionService
        from ..web import settings_api

        service = DetectionService(self.config, self.data_dir, self.writer, self.clock)
        await service.start()
        # Tariffs, thresholds and meters an admin changed on the dashboard.
        saved = settings_api.load(self.data_dir)
        settings_api.apply(service, saved.values)
        settings_api.apply_meters(service, saved)
        service.on_change = self._start_webhooks()
        task = asyncio.create_task(service.run(), name="detect")
        task.add_done_callback(_report_failure)
        self._source_tasks.append(task)
        return service

    def _start_webhooks(self) -> Callable[[str, dict], None] | None:
        """Deliver alert changes to the configured webhooks; return the feeder."""
        hooks = self.config.webhooks
        if not hooks.urls:
            return None
        from ..web.webhooks import Outbox, WebhookSender

        outbox = Outbox(self.data_dir / "webhooks.db")
        sender = WebhookSender(outbox, hooks.urls, hooks.secret)
        task = asyncio.create_task(sender.run(), name="webhooks")
        task.add_done_callback(_report_failure)
        # What was not delivered stays in the file for the next start.
        task.add_done_callback(lambda _: outbox.close())
        self._source_tasks.append(task)

        pending: set[asyncio.Task] = set()  # held so none is collected mid-way

        def feed(kind: str, alert: dict) -> None:
            event = {"event": kind, "alert": alert}
            queued = asyncio.get_running_loop().create_task(sender.enqueue(event))
            pending.add(queued)
            queued.add_done_callback(pending.discard)

        return feed

    async def _start_federation(self) -> FederationService | None:
        fed = self.config.federation
        if not fed.enabled:
            return None
        from ..federation.service import FederationService

        service = FederationService(
            self.config, self.data_dir, self.identity, self.writer, self.wall
        )
        try:
            await service.start()
        except FederationUnavailable:
            await service.stop()
            raise
        return service

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)


def _report_failure(task: asyncio.Task) -> None:
    """Log a background service that stopped on an error (once, with the cause)."""
    if not task.cancelled() and task.exception() is not None:
        error = task.exception()
        log.error(
            "service_failed", task=task.get_name(), error=repr(error), exc_info=error
        )
