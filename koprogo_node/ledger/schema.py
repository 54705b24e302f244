"""The ledger's tables and their versioned migrations.

`PRAGMA user_version` holds the schema version. Migration N takes version
N-1 to N; it is SQL text (statements separated by ";" at line ends) or a
callable given the connection, for data transforms SQL cannot express.
Every pending migration runs inside one transaction: whatever fails (an SQL
error, a Python step raising, the process killed), the file keeps the
version it had and every row, and the previous release can still open it.
Statements that cannot run inside a transaction, or would change the
connection or the file rather than the schema (BEGIN/COMMIT, ATTACH, most
PRAGMAs; VACUUM fails by itself), are refused while a migration runs.

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
from collections.abc import Callable, Sequence

from ..errors import LedgerError

# SQL text, or a Python step run on the connection inside the transaction.
Migration = str | Callable[[sqlite3.Connection], None]

# Pragmas that only read, plus one meant for use inside a transaction.
MIGRATION_PRAGMAS = frozenset(
    {
        "defer_foreign_keys",
        "foreign_key_check",
        "foreign_key_list",
        "index_info",
        "index_list",
        "index_xinfo",
        "integrity_check",
        "quick_check",
        "table_info",
        "table_xinfo",
    }
)

MIGRATIONS: tuple[Migration, ...] = (
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


class MigrationFailed(LedgerError):
    """Raised when a migration fails; the database keeps the version it had."""

    def __init__(self, message: str, *, version: int, found: int) -> None:
        super().__init__(message)
        self.version = version
        self.found = found


def schema_version(conn: sqlite3.Connection) -> int:
    """The version recorded in the file (0 for a new, empty one)."""
    return conn.execute("PRAGMA user_version").fetchone()[0]


def migrate(
    conn: sqlite3.Connection, migrations: Sequence[Migration] = MIGRATIONS
) -> int:
    """Bring the database to the latest schema; return the version found.

    `conn` must be in autocommit mode (isolation_level=None). Raises
    sqlite3.DatabaseError for a schema newer than `migrations`, and
    MigrationFailed, naming the migration, when one fails.
    """
    found = schema_version(conn)
    target = len(migrations)
    if found > target:
        raise sqlite3.DatabaseError(
            f"ledger schema {found} is newer than this program's {target}"
        )
    if found == target:
        return found
    refused: list[str] = []
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.set_authorizer(_guard(refused))
        for version in range(found + 1, target + 1):
            _apply(conn, version, found, migrations[version - 1], refused)
        conn.set_authorizer(None)
        conn.execute(f"PRAGMA user_version = {target}")
        conn.execute("COMMIT")
    except BaseException:
        conn.set_authorizer(None)
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return found


def _apply(
    conn: sqlite3.Connection,
    version: int,
    found: int,
    migration: Migration,
    refused: list[str],
) -> None:
    """Run one migration inside the open transaction, or raise MigrationFailed."""
    try:
        if callable(migration):
            migration(conn)
        else:
            for statement in _statements(migration):
                conn.execute(statement)
    except Exception as exc:
        why = (
            f"{refused[-1]} cannot run inside a migration's transaction"
            if refused
            else f"{type(exc).__name__}: {exc}"
        )
        raise MigrationFailed(
            f"migration {version} failed ({why})", version=version, found=found
        ) from exc
    # SQLite rolls back by itself on some errors (a full disk, for one); a
    # step that swallowed such an error would leave the rest in autocommit.
    if not conn.in_transaction:
        raise MigrationFailed(
            f"migration {version} ended its transaction", version=version, found=found
        )


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";\n") if s.strip()]


def _guard(refused: list[str]) -> Callable[..., int]:
    """An authorizer refusing what would escape or break the transaction."""

    def check(action: int, arg1, arg2, _db, _trigger) -> int:
        if action == sqlite3.SQLITE_TRANSACTION:
            refused.append(arg1 or "a transaction statement")
        elif action in (sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH):
            refused.append("ATTACH" if action == sqlite3.SQLITE_ATTACH else "DETACH")
        elif action == sqlite3.SQLITE_PRAGMA and arg1 not in MIGRATION_PRAGMAS:
            refused.append(f"PRAGMA {arg1}")
        else:
            return sqlite3.SQLITE_OK
        return sqlite3.SQLITE_DENY

    return check
