"""The only writer of the ledger: batches readings into hash-chained blocks.

Readings wait in memory until `batch_rows` of them are pending or
`batch_ms` has passed; then one transaction stores them with their block
header. A reading is committed once its block is; `block_committed` is
logged (at DEBUG) with the block's height only after the COMMIT returned.
The database runs in WAL mode with synchronous=FULL, so a committed block
survives a power cut.

Opening a ledger that holds data in an older schema first takes a verified
backup (backup.py names it as pre-migration), then migrates. A migration
that fails leaves the file as it was and stops the writer from opening, so
nothing runs on a half-migrated ledger.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import aiosqlite
import structlog

from ..config.model import LedgerConfig
from ..core.clock import Clock
from ..core.ingest import Accepted, Refused
from ..core.readings import Kind, Quality, Reading
from ..errors import KoprogoError, LedgerError
from . import backup as backups
from .anchor import write_anchor
from .batch import Batch
from .lock import WriterLock
from .prune import delete_sql, prune_cutoffs
from .schema import MIGRATIONS, Migration, MigrationFailed, migrate, schema_version
from .state import LedgerState, load_state, retention_days
from .stats import IngestStats

log = structlog.get_logger(__name__)

PRUNE_EVERY_S = 3600.0
REJECTS_ONLY_EVERY_S = 60.0
YIELD_EVERY_READINGS = 1000
# While a backup or a migration delays opening, `keep_waiting` is called at
# most this often (the daemon then asks systemd for more start time).
KEEP_WAITING_EVERY_S = 10.0
SQLITE_OPS_PER_CHECK = 100_000
_OK, _COUNTER = Quality.OK, Kind.COUNTER
_INSERT_AGGREGATE = "INSERT OR IGNORE INTO aggregates VALUES (?, ?, ?, ?, ?, ?, ?, ?)"


class LedgerWriter:
    """Owns the write connection; feed it with `run(queue)`."""

    def __init__(
        self,
        data_dir: Path,
        config: LedgerConfig,
        clock: Clock,
        boot_id: str,
        stats: IngestStats,
        migrations: Sequence[Migration] = MIGRATIONS,
        keep_waiting: Callable[[], None] | None = None,
    ) -> None:
        self.path = data_dir / config.file
        self.migrations = migrations
        self.keep_waiting = keep_waiting
        self.config = config
        self.clock = clock
        self.boot_id = boot_id
        self.stats = stats
        self._lock = WriterLock(data_dir)
        self._db: aiosqlite.Connection | None = None
        self._state: LedgerState | None = None
        self._pending: list[Reading] = []
        self._pending_aggregates: list[tuple] = []
        self._pending_events: list[tuple] = []
        self._next_prune = 0.0
        self._stopping = False
        self._inflight: asyncio.Task | None = None

    async def open(self) -> None:
        """Take the writer lock, open the database, migrate, load state."""
        self._lock.acquire()
        try:
            found = await asyncio.to_thread(
                _prepare, self.path, self.migrations, self.keep_waiting
            )
            self._db = await aiosqlite.connect(self.path, isolation_level=None)
            await self._db.execute("PRAGMA synchronous=FULL")
            await self._db.execute("PRAGMA wal_autocheckpoint=4000")
            await self._reload()
        except sqlite3.Error as exc:
            self._lock.release()
            raise LedgerError(f"cannot open ledger {self.path}: {exc}") from exc
        except BaseException:
            self._lock.release()
            raise
        log.info(
            "ledger_opened", path=str(self.path), schema_from=found, height=self.height
        )

    async def close(self) -> None:
        """Commit what is pending and close."""
        if self._db is None:
            return
        if self._pending or self._pending_aggregates or self._pending_events:
            await self.flush()
        await self.settle()
        await self._db.close()
        self._db = None
        self._lock.release()
        log.info("ledger_closed", height=self.height)

    def add_aggregates(self, rows: list[tuple]) -> None:
        """Store signed aggregate messages with the next block.

        Each row is (message_id, origin, seq, tier, start_s, received_ms,
        body_json, wire); a message already stored is ignored.
        """
        self._pending_aggregates.extend(rows)

    def record_event(
        self, kind: str, sensor: str | None, detail: dict, ts_ms: int | None = None
    ) -> None:
        """Chain an event (an alert's transition, an admin action) in the next block."""
        if ts_ms is None:
            ts_ms = int(self.clock.stamp().ts * 1000)
        self._pending_events.append((ts_ms, kind, sensor, detail))

    def last_value(self, sensor: str) -> float | None:
        """The channel's last accepted value (committed, or about to be)."""
        channel = self._state.rules.channels.get(sensor) if self._state else None
        return None if channel is None else channel.last_value

    def open_buckets(self) -> list:
        """Rollup buckets not closed yet (committed readings only)."""
        return self._state.rollups.open_buckets() if self._state else []

    @property
    def height(self) -> int:
        """Height of the last committed block (0 when empty)."""
        return self._state.height if self._state else 0

    async def run(self, queue: asyncio.Queue[list[Reading] | None]) -> None:
        """Commit readings from `queue` in batches until a None arrives.

        Each item of the queue is a list of readings taken together.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.batch_ms / 1000
        while True:
            self._take_available(queue)
            if self._stopping:
                break
            remaining = deadline - loop.time()
            if len(self._pending) >= self.config.batch_rows or remaining <= 0:
                await self.flush()
                deadline = loop.time() + self.config.batch_ms / 1000
                continue
            try:
                item = await asyncio.wait_for(queue.get(), remaining)
            except TimeoutError:
                continue
            self._accept_item(item)
        await self.flush()
        await self.settle()

    def _take_available(self, queue: asyncio.Queue[list[Reading] | None]) -> None:
        while len(self._pending) < self.config.batch_rows and not self._stopping:
            try:
                item = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            self._accept_item(item)

    def _accept_item(self, item: list[Reading] | None) -> None:
        if item is None:
            self._stopping = True
        else:
            self._pending.extend(item)

    async def flush(self) -> int | None:
        """Seal pending readings (and due housekeeping) as the next block.

        The block's commit runs in the database thread while the next batch
        is built; it is awaited before the following commit starts, at
        `settle()`, and at close. A failed commit raises LedgerError and
        stops the writer: the daemon exits and systemd restarts it.
        """
        if self._db is None or self._state is None:
            raise LedgerError("ledger is not open")
        now = self.clock.stamp()
        prunes = await self._due_prunes(now.ts)
        batch = await self._build(self._pending, now.ts, prunes)
        self._pending = []
        if batch is None:
            await self.settle()
            return None
        created_ms = int(now.ts * 1000)
        batch.seal(created_ms)
        self._state.advance(batch, created_ms)
        await self.settle()
        self._inflight = asyncio.create_task(self._commit(batch, created_ms))
        return batch.height

    async def settle(self) -> None:
        """Wait for the block being committed, then report it committed."""
        task, self._inflight = self._inflight, None
        if task is None:
            return
        try:
            batch, created_ms = await task
        except sqlite3.Error as exc:
            log.error("ledger_commit_failed", error=str(exc))
            raise LedgerError(f"commit failed: {exc}") from exc
        self.stats.committed(len(batch.readings), batch.height, created_ms)
        write_anchor(self.path, batch.height, batch.hash)
        log.debug(
            "block_committed",
            height=batch.height,
            readings=len(batch.readings),
            last_reading=batch.first_reading + len(batch.readings) - 1,
            hash=batch.hash.hex(),
        )

    async def _due_prunes(self, now_s: float) -> list[tuple]:
        if now_s < self._next_prune:
            return []
        self._next_prune = now_s + PRUNE_EVERY_S
        days = retention_days(self.config.retention)
        cutoffs = await prune_cutoffs(self._db, days, now_s, self._state.height)
        return self._state.prune_rows(cutoffs)

    async def _build(
        self, readings: list[Reading], now_s: float, prunes: list
    ) -> Batch | None:
        batch = self._state.new_batch()
        for start in range(0, len(readings), YIELD_EVERY_READINGS):
            for reading in readings[start : start + YIELD_EVERY_READINGS]:
                self._add(batch, reading, now_s)
            # Let the loop drive the previous block's commit, which runs in
            # the database thread one statement at a time.
            await asyncio.sleep(0)
        self._state.save_channels(batch)
        self._fix_clock(batch, now_s)
        batch.prunes = prunes
        batch.aggregates, self._pending_aggregates = self._pending_aggregates, []
        events, self._pending_events = self._pending_events, []
        for ts_ms, kind, sensor, detail in events:
            self._state.add_event(batch, ts_ms, kind, sensor, detail)
        chained = batch.readings or batch.events or batch.prunes or batch.sensors
        chained = chained or batch.aggregates
        # Reject counts alone make a block at most once a minute, so a stream
        # of bad input does not write to the card at every flush.
        if not chained and now_s - self._state.created_ms / 1000 < REJECTS_ONLY_EVERY_S:
            return None
        batch.rejects = self.stats.unsaved_rejects()
        return batch if chained or batch.rejects else None

    async def _commit(self, batch: Batch, created_ms: int) -> tuple[Batch, int]:
        db = self._db
        await db.execute("BEGIN IMMEDIATE")
        try:
            await _insert_rows(db, batch)
            await self._delete_pruned(batch)
            await db.execute(
                "INSERT INTO blocks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    batch.height,
                    batch.prev,
                    created_ms,
                    batch.digests,
                    batch.hash,
                    batch.first_reading,
                    len(batch.readings),
                    *batch.stamp_range(),
                ),
            )
            if batch.sensor_state:
                await db.executemany(
                    "INSERT OR REPLACE INTO sensor_state VALUES (?, ?, ?, ?)",
                    list(batch.sensor_state.values()),
                )
            if batch.rejects:
                await db.executemany(_UPSERT_REJECT, batch.rejects)
            if batch.aggregates:
                await db.executemany(_INSERT_AGGREGATE, batch.aggregates)
            await db.execute("COMMIT")
        except BaseException:
            await db.execute("ROLLBACK")
            raise
        return batch, created_ms

    async def _delete_pruned(self, batch: Batch) -> None:
        for _, slot, below in batch.prunes:
            async with self._db.execute(
                "SELECT first_reading FROM blocks WHERE height = ?", (below,)
            ) as cursor:
                row = await cursor.fetchone()
            first_kept = row[0] if row else batch.first_reading
            await self._db.execute(*delete_sql(slot, below, first_kept))

    def _add(self, batch: Batch, reading: Reading, now_s: float) -> None:
        # The hot path: one call per reading, so lookups are kept local.
        state = self._state
        verdict = state.rules.check(reading, now_s)
        if verdict.__class__ is Refused:
            self.stats.reject(reading.sensor, verdict.reason, verdict.detail)
            return
        sensor_id = state.sensors.get(reading.sensor)
        if sensor_id is None:
            sensor_id = state.register_sensor(batch, reading)
        boot = None if reading.clock_trusted else state.boot_row(batch, self.boot_id)
        state.add_reading(batch, sensor_id, verdict, boot)
        if verdict.anomaly:
            self._note_anomaly(batch, verdict, now_s)
        if verdict.quality is _OK:
            amount = verdict.delta if reading.kind is _COUNTER else reading.value
            closed = state.rollups.add(sensor_id, reading.ts, amount, reading.value)
            for bucket in closed:
                batch.add_rollup(bucket)

    def _note_anomaly(self, batch: Batch, verdict: Accepted, now_s: float) -> None:
        reading = verdict.reading
        self.stats.reject(reading.sensor, verdict.anomaly, f"value {reading.value!r}")
        if verdict.anomaly in ("counter_reset", "counter_wrap"):
            self._state.add_event(
                batch,
                int(now_s * 1000),
                verdict.anomaly,
                reading.sensor,
                {"value": reading.value, "delta": verdict.delta, "ts": reading.ts},
            )

    def _fix_clock(self, batch: Batch, now_s: float) -> None:
        state = self._state
        boot = state.boots.get(self.boot_id)
        if boot is None or boot in state.fixed_boots or not self.clock.trusted:
            return
        offset_ms = round(self.clock.offset_s() * 1000)
        batch.clock_fixes.append((boot, offset_ms))
        state.fixed_boots.add(boot)
        state.add_event(
            batch, int(now_s * 1000), "clock_trusted", None, {"offset_ms": offset_ms}
        )
        log.info("clock_trusted", boot=self.boot_id, offset_ms=offset_ms)

    async def _reload(self) -> None:
        self._state = await asyncio.to_thread(_load, self.path)
        self.stats.restore(self._state.height, self._state.created_ms)


_UPSERT_REJECT = (
    "INSERT INTO rejects (source, reason, count, last_ms, detail)"
    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (source, reason) DO UPDATE SET"
    " count = count + excluded.count, last_ms = excluded.last_ms,"
    " detail = excluded.detail"
)


def _load(path: Path) -> LedgerState:
    """Read the writer's state through a connection of its own thread."""
    conn = sqlite3.connect(path)
    try:
        return load_state(conn)
    finally:
        conn.close()


def _prepare(
    path: Path,
    migrations: Sequence[Migration],
    keep_waiting: Callable[[], None] | None = None,
) -> int:
    """Switch the file to WAL, back it up if it needs migrating, migrate it.

    Returns the version found. Raises LedgerError, the file untouched, when
    no verified backup can be taken, and MigrationFailed when a migration
    fails.
    """
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        found, target = schema_version(conn), len(migrations)
        if found >= target:
            return migrate(conn, migrations)  # refuses a newer schema
        starting = _Throttled(keep_waiting)
        saved = _backup_before(path, found, target, starting) if found else None
        conn.set_progress_handler(starting, SQLITE_OPS_PER_CHECK)
        try:
            migrate(conn, migrations)
        except MigrationFailed as exc:
            raise _failed(path, exc, saved) from exc
        finally:
            conn.set_progress_handler(None, 0)
        log.info("ledger_migrated", path=str(path), schema_from=found, schema_to=target)
        return found
    finally:
        conn.close()


def _backup_before(
    path: Path, found: int, target: int, starting: _Throttled
) -> Path | None:
    """Take (or find, after a failed attempt) the copy to fall back on."""
    try:
        taken = backups.backup_before_migration(path, found, target, starting)
    except KoprogoError as exc:
        log.error(
            "ledger_migration_backup_failed",
            path=str(path),
            schema_from=found,
            schema_to=target,
            error=str(exc),
        )
        raise LedgerError(
            f"ledger {path} needs migrating from schema {found} to {target}, but"
            f" no verified backup could be taken first, so it was not touched: {exc}"
        ) from exc
    if taken is None:
        return None
    outcome, reused = taken
    log.info(
        "ledger_migration_backup",
        path=str(outcome.path),
        schema_from=found,
        schema_to=target,
        height=outcome.height,
        bytes=outcome.size_bytes,
        reused=reused,
    )
    return outcome.path


def _failed(path: Path, exc: MigrationFailed, saved: Path | None) -> MigrationFailed:
    """The error a failed migration ends the start with: what, where, what now."""
    log.error(
        "ledger_migration_failed",
        path=str(path),
        migration=exc.version,
        schema=exc.found,
        error=str(exc),
        backup=str(saved) if saved else None,
    )
    copy = f"; a verified copy taken before is {saved}" if saved else ""
    return MigrationFailed(
        f"cannot migrate ledger {path}: {exc}. Nothing was changed: it is still"
        f" at schema {exc.found} with every row{copy}. Run the previous release"
        " of koprogo-node on it, or report the error",
        version=exc.version,
        found=exc.found,
    )


class _Throttled:
    """Calls `keep_waiting` at most every KEEP_WAITING_EVERY_S.

    Called as a backup's progress and as SQLite's progress handler, whose
    zero return lets the statement go on.
    """

    def __init__(self, keep_waiting: Callable[[], None] | None) -> None:
        self._keep_waiting = keep_waiting
        self._next_s = 0.0

    def __call__(self, *_progress: int) -> int:
        now = time.monotonic()
        if self._keep_waiting is not None and now >= self._next_s:
            self._next_s = now + KEEP_WAITING_EVERY_S
            self._keep_waiting()
        return 0


async def _insert_rows(db: aiosqlite.Connection, batch: Batch) -> None:
    h = batch.height
    statements = (
        (
            f"INSERT INTO sensors (id, name, kind, unit, block)"
            f" VALUES (?, ?, ?, ?, {h})",
            batch.sensors,
        ),
        (f"INSERT INTO boots (id, boot_id, block) VALUES (?, ?, {h})", batch.boots),
        (
            "INSERT INTO readings (id, sensor, ts_ms, value, delta, quality, boot,"
            f" mono_ms, block) VALUES (?, ?, ?, ?, ?, ?, ?, ?, {h})",
            batch.readings,
        ),
        (
            "INSERT OR REPLACE INTO rollups (tier, start_s, sensor, n, total, low,"
            f" high, last, block) VALUES (?, ?, ?, ?, ?, ?, ?, ?, {h})",
            batch.rollups,
        ),
        (
            "INSERT INTO events (id, ts_ms, kind, sensor, detail, block)"
            f" VALUES (?, ?, ?, ?, ?, {h})",
            batch.events,
        ),
        (
            f"INSERT INTO clock_fixes (boot, offset_ms, block) VALUES (?, ?, {h})",
            batch.clock_fixes,
        ),
        (
            f"INSERT INTO prunes (id, tbl, below_block, block) VALUES (?, ?, ?, {h})",
            batch.prunes,
        ),
    )
    for sql, rows in statements:
        if rows:  # each statement is a round trip to the database thread
            await db.executemany(sql, rows)
