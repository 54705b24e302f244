"""Read-side queries, shared by the web API and the CLI.

Functions take a plain sqlite3 connection (read-only); async callers run them
in a worker thread. Times are Unix milliseconds in and out.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from ..core.channels import SUMMED, family
from ..core.readings import Quality
from ..core.rollups import Bucket, Tier
from ..errors import LedgerCorrupt
from ..federation.identity import peer_id

STEPS = {"raw": None, "15m": Tier.QUARTER, "1h": Tier.HOUR, "1d": Tier.DAY}
QUALITY_NAMES = {q.value: q.name.lower() for q in Quality}


def open_reader(db_path: Path) -> sqlite3.Connection:
    """Open the ledger read-only; raise LedgerCorrupt if it is not one."""
    if not db_path.is_file():
        raise LedgerCorrupt(f"no ledger at {db_path}")
    try:
        conn = sqlite3.connect(
            f"file:{db_path}?mode=ro", uri=True, check_same_thread=False
        )
        conn.execute("SELECT 1 FROM blocks LIMIT 1").fetchall()
    except sqlite3.Error as exc:
        raise LedgerCorrupt(f"{db_path} is not a readable ledger: {exc}") from exc
    return conn


def id_range(conn: sqlite3.Connection, from_ms: int, to_ms: int) -> tuple[int, int]:
    """Reading ids that may hold stamps in [from_ms, to_ms), from block headers.

    Stamps corrected after a clock fix may fall outside their block's range;
    such readings are found by the full-range queries (export with no time
    bounds), not by time-bounded ones.
    """
    lo, hi = conn.execute(
        "SELECT min(first_reading), max(first_reading + n_readings - 1) FROM blocks"
        " WHERE n_readings > 0 AND max_ts_ms >= ? AND min_ts_ms < ?",
        (from_ms, to_ms),
    ).fetchone()
    return (lo, hi) if lo is not None else (0, -1)


def head(conn: sqlite3.Connection) -> dict:
    """Last block: height, commit time and hash."""
    row = conn.execute(
        "SELECT height, created_ms, hash FROM blocks ORDER BY height DESC LIMIT 1"
    ).fetchone()
    if row is None:
        return {"height": 0, "created_ms": None, "hash": None}
    return {"height": row[0], "created_ms": row[1], "hash": row[2].hex()}


def sensors(conn: sqlite3.Connection) -> list[dict]:
    """Every channel with its last committed value."""
    rows = conn.execute(
        "SELECT s.name, s.kind, s.unit, st.last_ts_ms, st.last_value"
        " FROM sensors s LEFT JOIN sensor_state st ON st.sensor = s.id ORDER BY s.name"
    )
    return [
        {"name": n, "kind": k, "unit": u, "last_ts_ms": ts, "last_value": v}
        for n, k, u, ts, v in rows
    ]


def sensor_names(conn: sqlite3.Connection) -> set[str]:
    """Names of every channel the ledger knows."""
    return {name for (name,) in conn.execute("SELECT name FROM sensors")}


def reject_counts(conn: sqlite3.Connection) -> list[dict]:
    """Refused input by source and reason, as persisted."""
    rows = conn.execute(
        "SELECT source, reason, count, last_ms, detail FROM rejects"
        " ORDER BY source, reason"
    )
    return [
        {"source": s, "reason": r, "count": c, "last_ms": t, "detail": d}
        for s, r, c, t, d in rows
    ]


def readings(
    conn: sqlite3.Connection,
    sensor: str,
    from_ms: int,
    to_ms: int,
    step: str = "raw",
    limit: int = 10_000,
) -> list[dict]:
    """Values of one channel in [from_ms, to_ms), raw or rolled up."""
    tier = STEPS[step]
    if tier is None:
        lo, hi = id_range(conn, from_ms, to_ms)
        rows = conn.execute(
            "SELECT ts_ms, value, delta, quality FROM readings_effective"
            " WHERE id BETWEEN ? AND ? AND name = ? AND ts_ms >= ? AND ts_ms < ?"
            " ORDER BY ts_ms LIMIT ?",
            (lo, hi, sensor, from_ms, to_ms, limit),
        )
        return [
            {"ts_ms": t, "value": v, "delta": d, "quality": QUALITY_NAMES.get(q, q)}
            for t, v, d, q in rows
        ]
    rows = conn.execute(
        "SELECT r.start_s, r.n, r.total, r.low, r.high, r.last, s.kind"
        " FROM rollups r JOIN sensors s ON s.id = r.sensor"
        " WHERE s.name = ? AND r.tier = ? AND r.start_s >= ? AND r.start_s < ?"
        " ORDER BY r.start_s LIMIT ?",
        (sensor, int(tier), from_ms // 1000, to_ms // 1000, limit),
    )
    return [_rollup_row(*row) for row in rows]


def _rollup_row(start_s, n, total, low, high, last, kind) -> dict:
    row = {"ts_ms": start_s * 1000, "n": n, "min": low, "max": high, "last": last}
    if kind == "counter":
        row["consumption"] = total
    else:
        row["mean"] = total / n if n else None
    return row


def family_series(
    conn: sqlite3.Connection,
    from_s: int,
    to_s: int,
    tier: Tier,
    open_buckets: list[Bucket] = (),
) -> dict[str, dict[int, float]]:
    """Per family, the building total per bucket (closed plus open buckets)."""
    names = dict(conn.execute("SELECT id, name FROM sensors"))
    series: dict[str, dict[int, float]] = {f: {} for f in SUMMED}
    rows = conn.execute(
        "SELECT sensor, start_s, total FROM rollups"
        " WHERE tier = ? AND start_s >= ? AND start_s < ?",
        (int(tier), from_s, to_s),
    ).fetchall()
    rows += [
        (b.sensor, b.start_s, b.total)
        for b in open_buckets
        if b.tier == tier and from_s <= b.start_s < to_s
    ]
    for sensor, start_s, total in rows:
        fam = family(names.get(sensor, ""))
        if fam in series:
            bucket = series[fam]
            bucket[start_s] = bucket.get(start_s, 0.0) + total
    return series


def data_time_ms(conn: sqlite3.Connection) -> int | None:
    """Stamp of the newest committed reading (the node's 'now' for its data)."""
    return conn.execute("SELECT max(last_ts_ms) FROM sensor_state").fetchone()[0]


def export_rows(
    conn: sqlite3.Connection,
    sensor_names: tuple[str, ...] = (),
    from_ms: int | None = None,
    to_ms: int | None = None,
) -> sqlite3.Cursor:
    """Stored readings in commit order: (id, block, sensor, kind, unit, ts_ms,
    value, delta, quality)."""
    where, params = ["1"], []
    if from_ms is not None or to_ms is not None:
        where.append("id BETWEEN ? AND ?")
        params += id_range(conn, from_ms or 0, to_ms or 2**62)
    if sensor_names:
        clause, names = _names_filter(sensor_names)
        where.append(clause)
        params += names
    if from_ms is not None:
        where.append("ts_ms >= ?")
        params.append(from_ms)
    if to_ms is not None:
        where.append("ts_ms < ?")
        params.append(to_ms)
    return conn.execute(
        "SELECT id, block, name, kind, unit, ts_ms, value, delta, quality"
        f" FROM readings_effective WHERE {' AND '.join(where)} ORDER BY id",
        params,
    )


_TAIL_COLUMNS = "id, block, name, kind, unit, ts_ms, value, delta, quality"


def latest_readings(
    conn: sqlite3.Connection, count: int, sensor_names: tuple[str, ...] = ()
) -> list[tuple]:
    """The last `count` stored readings (of these channels), oldest first."""
    where, params = _names_filter(sensor_names)
    rows = conn.execute(
        f"SELECT {_TAIL_COLUMNS} FROM readings_effective WHERE {where}"
        " ORDER BY id DESC LIMIT ?",
        (*params, count),
    ).fetchall()
    return rows[::-1]


def readings_between(
    conn: sqlite3.Connection,
    after_id: int,
    upto_id: int,
    sensor_names: tuple[str, ...] = (),
) -> list[tuple]:
    """Readings with ids in (after_id, upto_id] (of these channels)."""
    where, params = _names_filter(sensor_names)
    return conn.execute(
        f"SELECT {_TAIL_COLUMNS} FROM readings_effective"
        f" WHERE id > ? AND id <= ? AND {where} ORDER BY id",
        (after_id, upto_id, *params),
    ).fetchall()


def _names_filter(sensor_names: tuple[str, ...]) -> tuple[str, tuple]:
    if not sensor_names:
        return "1", ()
    return f"name IN ({','.join('?' * len(sensor_names))})", sensor_names


def last_reading_id(conn: sqlite3.Connection) -> int:
    """Highest stored reading id."""
    return conn.execute("SELECT coalesce(max(id), 0) FROM readings").fetchone()[0]


MAX_BUCKETS_PER_CALL = 96


def closed_buckets(
    conn: sqlite3.Connection, tier: Tier, after: int | None
) -> list[tuple[int, list[tuple[str, float]], dict[str, str]]]:
    """Closed buckets of `tier` from `after` on: (start_s, rows, units).

    Only sensors that add to a building total count. The newest bucket in
    the table is left out: a sensor whose next reading
    has not arrived yet has not closed it. With no `after`, only the newest
    complete bucket is returned (history is not published backwards).
    """
    summed = [
        i
        for i, name in conn.execute("SELECT id, name FROM sensors")
        if family(name) in SUMMED
    ]
    marks = ",".join("?" * len(summed))
    newest = conn.execute(
        f"SELECT max(start_s) FROM rollups WHERE tier = ? AND sensor IN ({marks})",
        (int(tier), *summed),
    ).fetchone()[0]
    if newest is None:
        return []
    low = newest - tier.value if after is None else after
    rows = conn.execute(
        "SELECT r.start_s, s.name, r.total, s.unit FROM rollups r"
        " JOIN sensors s ON s.id = r.sensor"
        f" WHERE r.tier = ? AND r.start_s >= ? AND r.start_s < ?"
        f" AND r.sensor IN ({marks}) ORDER BY r.start_s",
        (int(tier), low, newest, *summed),
    ).fetchall()
    buckets: dict[int, tuple[list, dict]] = {}
    for start_s, name, total, unit in rows:
        if start_s not in buckets and len(buckets) == MAX_BUCKETS_PER_CALL:
            break
        totals, units = buckets.setdefault(start_s, ([], {}))
        totals.append((name, total))
        fam = family(name)
        if fam is not None:
            units.setdefault(fam, unit)
    return [(start, totals, units) for start, (totals, units) in buckets.items()]


def aggregate_progress(conn: sqlite3.Connection, origin: bytes) -> dict:
    """Our last sequence number and last published bucket per tier."""
    seq = conn.execute(
        "SELECT max(seq) FROM aggregates WHERE origin = ?", (origin,)
    ).fetchone()[0]
    buckets = dict(
        conn.execute(
            "SELECT tier, max(start_s) FROM aggregates WHERE origin = ? GROUP BY tier",
            (origin,),
        )
    )
    return {"seq": seq or 0, "buckets": buckets}


def aggregates(
    conn: sqlite3.Connection, tier: Tier, from_s: int, limit: int = 2000
) -> list[tuple[bytes, int, str]]:
    """(origin, start_s, body JSON) of stored aggregates, newest first."""
    return conn.execute(
        "SELECT origin, start_s, body FROM aggregates"
        " WHERE tier = ? AND start_s >= ? ORDER BY start_s DESC LIMIT ?",
        (int(tier), from_s, limit),
    ).fetchall()


def aggregate_origins(conn: sqlite3.Connection) -> dict[str, dict]:
    """Per origin peer id: messages stored and when the last one arrived."""
    rows = conn.execute(
        "SELECT origin, count(*), max(received_ms) FROM aggregates GROUP BY origin"
    ).fetchall()
    return {
        peer_id(origin): {"messages": n, "last_message_s": last / 1000}
        for origin, n, last in rows
    }


def events(
    conn: sqlite3.Connection, kind_prefix: str, after_id: int = 0
) -> list[tuple[int, int, str, str | None, dict]]:
    """(id, ts_ms, kind, sensor, detail) of chained events, oldest first."""
    rows = conn.execute(
        "SELECT id, ts_ms, kind, sensor, detail FROM events"
        " WHERE kind LIKE ? AND id > ? ORDER BY id",
        (kind_prefix.replace("%", "") + "%", after_id),
    ).fetchall()
    return [
        (i, ts, kind, sensor, json.loads(detail))
        for i, ts, kind, sensor, detail in rows
    ]


def rollup_totals(
    conn: sqlite3.Connection, tier: Tier, from_s: int
) -> list[tuple[str, str, int, float]]:
    """(sensor name, unit, start_s, total) of closed buckets from `from_s` on."""
    return conn.execute(
        "SELECT s.name, s.unit, r.start_s, r.total FROM rollups r"
        " JOIN sensors s ON s.id = r.sensor"
        " WHERE r.tier = ? AND r.start_s >= ? ORDER BY s.name, r.start_s",
        (int(tier), from_s),
    ).fetchall()
