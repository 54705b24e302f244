"""The ledger's tables and their versioned migrations.

`PRAGMA user_version` holds the schema version. Each migration runs in its
own transaction, so a failed one leaves the previous working version.

Tables whose rows carry a `block` column are chained: each block's header
holds a digest of its rows in every such table (see chain.py). `sensor_state`
and `rejects` are operational caches, rebuilt or merely counted, not chained.
`aggregates` holds signed gossip messages: each row keeps the message's wire
bytes, whose signature (checked by `ledger verify`) makes an edit evident.

`readings` has no index besides its id: an index on time would cost about a
third more bytes written per reading on the SD card. Time ranges are found
through the blocks instead: each header keeps the stamp range of its
readings, and a block's readings are a contiguous id range (query.id_range).
"""

from __future__ import annotations

import sqlite3

MIGRATIONS: tuple[str, ...] = (
    # 1: first schema
    """
    CREATE TABLE blocks (
        height     INTEGER PRIMARY KEY,
        prev       BLOB NOT NULL,
        created_ms INTEGER NOT NULL,
        digests    BLOB NOT NULL,
        hash       BLOB NOT NULL,
        first_reading INTEGER NOT NULL,
        n_readings INTEGER NOT NULL,
        min_ts_ms  INTEGER,
        max_ts_ms  INTEGER
    );
    CREATE TABLE sensors (
        id     INTEGER PRIMARY KEY,
        block  INTEGER NOT NULL,
        name   TEXT NOT NULL UNIQUE,
        kind   TEXT NOT NULL,
        unit   TEXT NOT NULL
    );
    CREATE TABLE boots (
        id      INTEGER PRIMARY KEY,
        block   INTEGER NOT NULL,
        boot_id TEXT NOT NULL UNIQUE
    );
    CREATE TABLE readings (
        id      INTEGER PRIMARY KEY,
        block   INTEGER NOT NULL,
        sensor  INTEGER NOT NULL,
        ts_ms   INTEGER NOT NULL,
        value   REAL NOT NULL,
        delta   REAL,
        quality INTEGER NOT NULL,
        boot    INTEGER,
        mono_ms INTEGER
    );
    CREATE TABLE rollups (
        tier     INTEGER NOT NULL,
        start_s  INTEGER NOT NULL,
        sensor   INTEGER NOT NULL,
        block    INTEGER NOT NULL,
        n        INTEGER NOT NULL,
        total    REAL NOT NULL,
        low      REAL NOT NULL,
        high     REAL NOT NULL,
        last     REAL NOT NULL,
        PRIMARY KEY (tier, start_s, sensor)
    ) WITHOUT ROWID;
    CREATE TABLE events (
        id     INTEGER PRIMARY KEY,
        block  INTEGER NOT NULL,
        ts_ms  INTEGER NOT NULL,
        kind   TEXT NOT NULL,
        sensor TEXT,
        detail TEXT NOT NULL
    );
    CREATE TABLE clock_fixes (
        boot      INTEGER PRIMARY KEY,
        block     INTEGER NOT NULL,
        offset_ms INTEGER NOT NULL
    );
    CREATE TABLE prunes (
        id          INTEGER PRIMARY KEY,
        block       INTEGER NOT NULL,
        tbl         TEXT NOT NULL,
        below_block INTEGER NOT NULL
    );
    CREATE TABLE sensor_state (
        sensor   INTEGER PRIMARY KEY,
        last_ts_ms INTEGER NOT NULL,
        last_value REAL NOT NULL,
        baseline   REAL
    );
    CREATE TABLE rejects (
        source  TEXT NOT NULL,
        reason  TEXT NOT NULL,
        count   INTEGER NOT NULL,
        last_ms INTEGER NOT NULL,
        detail  TEXT NOT NULL,
        PRIMARY KEY (source, reason)
    );
    CREATE VIEW readings_effective AS
        SELECT r.id, r.block, r.sensor, s.name, s.kind, s.unit,
               CASE WHEN r.boot IS NOT NULL AND f.offset_ms IS NOT NULL
                    THEN r.mono_ms + f.offset_ms ELSE r.ts_ms END AS ts_ms,
               r.value, r.delta,
               CASE WHEN r.quality = 2 AND f.offset_ms IS NOT NULL
                    THEN 0 ELSE r.quality END AS quality
        FROM readings r
        JOIN sensors s ON s.id = r.sensor
        LEFT JOIN clock_fixes f ON f.boot = r.boot;
    """,
    # 2: aggregates exchanged with other buildings (our own and theirs)
    """
    CREATE TABLE aggregates (
        message_id  BLOB PRIMARY KEY,
        origin      BLOB NOT NULL,
        seq         INTEGER NOT NULL,
        tier        INTEGER NOT NULL,
        start_s     INTEGER NOT NULL,
        received_ms INTEGER NOT NULL,
        body        TEXT NOT NULL,
        wire        BLOB NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX aggregates_by_bucket ON aggregates (tier, start_s);
    CREATE INDEX aggregates_by_origin ON aggregates (origin, seq);
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the database to the latest schema; return the version found."""
    found = conn.execute("PRAGMA user_version").fetchone()[0]
    if found > SCHEMA_VERSION:
        raise sqlite3.DatabaseError(
            f"ledger schema {found} is newer than this program's {SCHEMA_VERSION}"
        )
    for version in range(found, SCHEMA_VERSION):
        _apply(conn, version + 1, MIGRATIONS[version])
    return found


def _apply(conn: sqlite3.Connection, version: int, script: str) -> None:
    statements = [s.strip() for s in script.split(";\n") if s.strip()]
    conn.execute("BEGIN IMMEDIATE")
    try:
        for statement in statements:
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {version}")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
