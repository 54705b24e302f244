"""What the writer keeps in memory between blocks, and how it is rebuilt.

Everything here can be recomputed from the database, which is what happens
at start and after a failed commit: the database is the only truth.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

from ..config.model import RetentionConfig
from ..core.ingest import Accepted, ChannelState, IngestRules
from ..core.readings import Kind, Reading
from ..core.rollups import Bucket, RollupBuilder, Tier, bucket_start
from .batch import Batch
from .chain import GENESIS_PREV, ROLLUP_SLOT
from .query import id_range

DAY_S = 86_400
# A sensor silent for longer than this restarts its open rollups empty.
RESTORE_HORIZON_S = DAY_S


@dataclass
class LedgerState:
    """Head of the chain, next ids, channel states and open rollups."""

    height: int = 0
    prev: bytes = GENESIS_PREV
    created_ms: int = 0
    next_reading: int = 1
    next_event: int = 1
    next_prune: int = 1
    sensors: dict[str, int] = field(default_factory=dict)
    boots: dict[str, int] = field(default_factory=dict)
    fixed_boots: set[int] = field(default_factory=set)
    pruned: dict[str, int] = field(default_factory=dict)
    rules: IngestRules = field(default_factory=IngestRules)
    rollups: RollupBuilder = field(default_factory=RollupBuilder)

    def new_batch(self) -> Batch:
        """Start the next block."""
        return Batch(
            height=self.height + 1, prev=self.prev, first_reading=self.next_reading
        )

    def advance(self, batch: Batch, created_ms: int) -> None:
        """Make sealed `batch` the head that the next block links to."""
        self.height = batch.height
        self.prev = batch.hash
        self.created_ms = created_ms
        for _, slot, below in batch.prunes:
            self.pruned[slot] = below

    def register_sensor(self, batch: Batch, reading: Reading) -> int:
        """Give the reading's new channel an id, stored with this batch."""
        new_id = len(self.sensors) + 1
        self.sensors[reading.sensor] = new_id
        batch.sensors.append((new_id, reading.sensor, str(reading.kind), reading.unit))
        return new_id

    def boot_row(self, batch: Batch, boot_id: str) -> int:
        """Return the row id of this boot, registering it if new."""
        found = self.boots.get(boot_id)
        if found is not None:
            return found
        new_id = len(self.boots) + 1
        self.boots[boot_id] = new_id
        batch.boots.append((new_id, boot_id))
        return new_id

    def add_reading(
        self, batch: Batch, sensor_id: int, verdict: Accepted, boot: int | None
    ) -> None:
        """Queue an accepted reading."""
        r = verdict.reading
        mono_ms = None if boot is None or r.mono_s is None else round(r.mono_s * 1000)
        batch.readings.append(
            (
                self.next_reading,
                sensor_id,
                round(r.ts * 1000),
                float(r.value),
                verdict.delta,
                verdict.quality.value,
                boot,
                mono_ms,
            )
        )
        self.next_reading += 1
        batch.touched[sensor_id] = r.sensor

    def save_channels(self, batch: Batch) -> None:
        """Queue the state of every channel the batch touched."""
        for sensor_id, name in batch.touched.items():
            channel = self.rules.channels[name]
            if channel.last_ts is not None:
                batch.sensor_state[sensor_id] = (
                    sensor_id,
                    round(channel.last_ts * 1000),
                    float(channel.last_value),
                    channel.baseline,
                )

    def add_event(
        self, batch: Batch, ts_ms: int, kind: str, sensor: str | None, detail: dict
    ) -> None:
        """Queue an event row."""
        batch.add_event(self.next_event, ts_ms, kind, sensor, detail)
        self.next_event += 1

    def prune_rows(self, cutoffs: dict[str, int]) -> list[tuple]:
        """Prune records for slots whose watermark moved; ids assigned here."""
        rows = []
        for slot, below in cutoffs.items():
            if below > self.pruned.get(slot, 1):  # nothing lies below block 1
                rows.append((self.next_prune, slot, below))
                self.next_prune += 1
        return rows


def retention_days(retention: RetentionConfig) -> dict[str, int]:
    """Horizon in days of each prunable slot (0: for ever)."""
    days = {
        900: retention.r15m_days,
        3600: retention.r1h_days,
        86400: retention.r1d_days,
    }
    slots = {ROLLUP_SLOT[tier]: d for tier, d in days.items()}
    return {"readings": retention.raw_days, **slots}


def load_state(conn: sqlite3.Connection) -> LedgerState:
    """Rebuild the writer's memory from the database."""
    state = LedgerState()
    _load_head(conn, state)
    _load_ids(conn, state)
    _load_channels(conn, state)
    _load_rollups(conn, state)
    return state


def _load_head(conn: sqlite3.Connection, state: LedgerState) -> None:
    row = conn.execute(
        "SELECT height, hash, created_ms FROM blocks ORDER BY height DESC LIMIT 1"
    ).fetchone()
    if row:
        state.height, state.prev, state.created_ms = row


def _load_ids(conn: sqlite3.Connection, state: LedgerState) -> None:
    last_block = conn.execute(
        "SELECT first_reading + n_readings FROM blocks ORDER BY height DESC LIMIT 1"
    ).fetchone()
    state.next_reading = last_block[0] if last_block else 1
    state.next_event = _max(conn, "SELECT max(id) FROM events") + 1
    state.next_prune = _max(conn, "SELECT max(id) FROM prunes") + 1
    state.sensors = dict(conn.execute("SELECT name, id FROM sensors"))
    state.boots = dict(conn.execute("SELECT boot_id, id FROM boots"))
    state.fixed_boots = {b for (b,) in conn.execute("SELECT boot FROM clock_fixes")}
    state.pruned = dict(
        conn.execute("SELECT tbl, max(below_block) FROM prunes GROUP BY tbl")
    )


def _max(conn: sqlite3.Connection, sql: str) -> int:
    return conn.execute(sql).fetchone()[0] or 0


def _load_channels(conn: sqlite3.Connection, state: LedgerState) -> None:
    rows = conn.execute(
        "SELECT s.name, s.kind, s.unit, st.last_ts_ms, st.baseline, st.last_value"
        " FROM sensors s LEFT JOIN sensor_state st ON st.sensor = s.id"
    )
    for name, kind, unit, last_ts_ms, baseline, last_value in rows:
        last_ts = None if last_ts_ms is None else last_ts_ms / 1000
        state.rules.restore(
            name, ChannelState(Kind(kind), unit, last_ts, baseline, last_value)
        )


def _load_rollups(conn: sqlite3.Connection, state: LedgerState) -> None:
    """Rebuild open buckets: days from hours, hours from quarters, quarters raw."""
    rows = conn.execute("SELECT sensor, last_ts_ms FROM sensor_state").fetchall()
    if not rows:
        return
    newest = max(ts for _, ts in rows) / 1000
    quarters = {}
    for sensor, last_ts_ms in rows:
        last_ts = last_ts_ms / 1000
        if newest - last_ts <= RESTORE_HORIZON_S:
            _restore_closed(conn, state.rollups, sensor, last_ts)
            quarters[sensor] = bucket_start(last_ts, Tier.QUARTER) * 1000
    if quarters:
        _restore_open_quarters(conn, state.rollups, quarters)


def _restore_closed(
    conn: sqlite3.Connection, builder: RollupBuilder, sensor: int, last_ts: float
) -> None:
    quarter = bucket_start(last_ts, Tier.QUARTER)
    hour = bucket_start(last_ts, Tier.HOUR)
    day = bucket_start(last_ts, Tier.DAY)
    for tier, upper, start, end in (
        (Tier.HOUR, Tier.DAY, day, hour),
        (Tier.QUARTER, Tier.HOUR, hour, quarter),
    ):
        for start_s, *agg in conn.execute(
            "SELECT start_s, n, total, low, high, last FROM rollups WHERE tier = ?"
            " AND sensor = ? AND start_s >= ? AND start_s < ? ORDER BY start_s",
            (int(tier), sensor, start, end),
        ):
            builder.restore(Bucket(upper, bucket_start(start_s, upper), sensor, *agg))


def _restore_open_quarters(
    conn: sqlite3.Connection, builder: RollupBuilder, quarters: dict[int, int]
) -> None:
    lo, hi = id_range(conn, min(quarters.values()), 2**62)
    rows = conn.execute(
        "SELECT sensor, ts_ms, value, delta FROM readings WHERE id BETWEEN ? AND ?"
        " AND ts_ms >= ? AND quality = 0 AND boot IS NULL ORDER BY id",
        (lo, hi, min(quarters.values())),
    )
    for sensor, ts_ms, value, delta in rows:
        if ts_ms >= quarters.get(sensor, ts_ms + 1):
            amount = value if delta is None else delta
            builder.add(sensor, ts_ms / 1000, amount, value)
