"""Migrating a ledger that holds data: backup first, all or nothing, clear refusal.

The shipped schema has no migration waiting, so these tests add a third one
to it: through the `migrations` argument in process, and as a "future"
release (a copy of the package with one more migration) for the daemon.
"""

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time

import pytest

from koprogo_node.config.model import LedgerConfig
from koprogo_node.daemon.node import EXTEND_START_S
from koprogo_node.daemon.sdnotify import Notifier
from koprogo_node.ledger import backup as backups
from koprogo_node.ledger.schema import (
    MIGRATIONS,
    SCHEMA_VERSION,
    MigrationFailed,
    migrate,
)
from koprogo_node.ledger.stats import IngestStats
from koprogo_node.ledger.verify import verify
from koprogo_node.ledger.writer import LedgerWriter

from ..daemon.conftest import log_events, write_config
from .conftest import FakeClock, meter_series, write
from .releases import CHECKOUT, future_tree

TABLES = ("blocks", "sensors", "boots", "readings", "rollups", "events", "prunes")
NOTES = (
    "ALTER TABLE readings ADD COLUMN note TEXT;\n"
    "CREATE TABLE sensor_notes (sensor INTEGER PRIMARY KEY, readings INTEGER);\n"
)


def count_by_sensor(conn):
    """A Python step: one row per sensor with its number of readings."""
    rows = conn.execute("SELECT sensor, count(*) FROM readings GROUP BY sensor")
    conn.executemany("INSERT INTO sensor_notes VALUES (?, ?)", rows.fetchall())


def snapshot(db):
    """The schema version and every row of the chained tables."""
    con = sqlite3.connect(db)
    try:
        return {
            "version": con.execute("PRAGMA user_version").fetchone()[0],
            **{
                t: con.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall()
                for t in TABLES
            },
        }
    finally:
        con.close()


def opened(data_dir, migrations):
    return LedgerWriter(
        data_dir, LedgerConfig(), FakeClock(), "boot-b", IngestStats(), migrations
    )


@pytest.fixture
async def ledger(data_dir):
    """A ledger at the shipped schema holding 800 readings in several blocks."""
    await write(data_dir, meter_series(200), batch_rows=100)
    return data_dir / "ledger.db"


async def test_backup_exists_and_verifies_before_the_migration_runs(data_dir, ledger):
    """The first migration step already finds a verified pre-migration copy."""
    seen = []

    def look(conn):
        folder = data_dir / "backups"
        seen.extend((p.name, verify(p).ok) for p in sorted(folder.glob("*.db")))

    writer = opened(data_dir, (*MIGRATIONS, look))
    await writer.open()
    await writer.close()

    assert 1 == len(seen)
    name, ok = seen[0]
    assert name.startswith(
        f"ledger-pre-migration-v{SCHEMA_VERSION}-v{SCHEMA_VERSION + 1}-"
    )
    assert ok


async def test_forward_migration_keeps_every_row_and_the_chain(data_dir, ledger):
    """SQL then a Python transform: same rows, a verified chain, version 3."""
    before = snapshot(ledger)

    writer = opened(data_dir, (*MIGRATIONS, NOTES, count_by_sensor))
    await writer.open()
    await writer.close()

    after = snapshot(ledger)
    assert SCHEMA_VERSION + 2 == after.pop("version")
    before.pop("version")
    assert [r[:9] for r in before.pop("readings")] == [
        r[:9] for r in after.pop("readings")
    ]
    assert before == after
    con = sqlite3.connect(ledger)
    assert [(1, 200), (2, 200), (3, 200), (4, 200)] == con.execute(
        "SELECT * FROM sensor_notes ORDER BY 1"
    ).fetchall()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "koprogo_node.cli",
            "ledger",
            "verify",
            "--data-dir",
            str(data_dir),
        ],
        capture_output=True,
        text=True,
        cwd=CHECKOUT,
    )
    assert 0 == done.returncode, done.stdout + done.stderr
    assert done.stdout.startswith("OK")


async def test_the_writer_logs_the_backup_then_the_migration(data_dir, ledger, capsys):
    """ledger_migration_backup comes before ledger_migrated, with the versions."""
    writer = opened(data_dir, (*MIGRATIONS, NOTES))
    await writer.open()
    await writer.close()

    out = capsys.readouterr()
    text = out.out + out.err
    assert text.index("ledger_migration_backup") < text.index("ledger_migrated")
    assert f"schema_to={SCHEMA_VERSION + 1}" in text


def failing_sql():
    return NOTES + "INSERT INTO no_such_table VALUES (1);\n"


def failing_step(conn):
    conn.execute("DELETE FROM readings WHERE id % 2 = 0")
    conn.execute("UPDATE blocks SET hash = zeroblob(32)")
    raise ValueError("meter table out of range")


@pytest.mark.parametrize(
    "extra, cause",
    [
        ((failing_sql(),), "no such table: no_such_table"),
        ((NOTES, failing_step), "ValueError: meter table out of range"),
    ],
    ids=["sql-error-midway", "python-step-raising"],
)
async def test_a_failed_migration_changes_nothing(data_dir, ledger, extra, cause):
    """Version and every row as before; the error names the migration and backup."""
    before = snapshot(ledger)

    with pytest.raises(MigrationFailed) as failed:
        await opened(data_dir, (*MIGRATIONS, *extra)).open()

    assert before == snapshot(ledger)
    message = str(failed.value)
    [copy] = (data_dir / "backups").glob("ledger-pre-migration-*.db")
    assert f"migration {SCHEMA_VERSION + len(extra)} failed" in message
    assert cause in message
    assert str(copy) in message
    assert f"still at schema {SCHEMA_VERSION} with every row" in message
    assert verify(ledger).ok
    writer = opened(data_dir, MIGRATIONS)  # the lock was let go, the file opens
    await writer.open()
    await writer.close()


@pytest.mark.parametrize(
    "statement, named",
    [
        ("VACUUM", "cannot VACUUM from within a transaction"),
        ("PRAGMA journal_mode=DELETE", "PRAGMA journal_mode"),
        ("PRAGMA foreign_keys=ON", "PRAGMA foreign_keys"),
        ("COMMIT", "COMMIT"),
        ("ATTACH DATABASE ':memory:' AS other", "ATTACH"),
    ],
)
def test_statements_that_escape_the_transaction_are_refused(tmp_path, statement, named):
    """The migration fails, named, and the table it made first is gone."""
    con = sqlite3.connect(tmp_path / "l.db", isolation_level=None)
    migrate(con)

    with pytest.raises(
        MigrationFailed, match=f"migration {SCHEMA_VERSION + 1}"
    ) as failed:
        migrate(con, (*MIGRATIONS, f"CREATE TABLE early (x);\n{statement};\n"))

    assert named in str(failed.value)
    assert SCHEMA_VERSION == con.execute("PRAGMA user_version").fetchone()[0]
    assert (
        []
        == con.execute("SELECT name FROM sqlite_master WHERE name = 'early'").fetchall()
    )


def test_a_python_step_cannot_commit_through_executescript(tmp_path):
    """executescript's implicit COMMIT is refused, so the step stays atomic."""
    con = sqlite3.connect(tmp_path / "l.db", isolation_level=None)
    migrate(con)

    def sneaky(conn):
        conn.executescript("CREATE TABLE early (x);")

    with pytest.raises(MigrationFailed, match="COMMIT cannot run inside"):
        migrate(con, (*MIGRATIONS, sneaky))

    assert (
        []
        == con.execute("SELECT name FROM sqlite_master WHERE name = 'early'").fetchall()
    )


def test_a_python_step_may_read_the_table_layout(tmp_path):
    """Read-only pragmas stay allowed: a transform can look before it moves."""
    con = sqlite3.connect(tmp_path / "l.db", isolation_level=None)
    migrate(con)

    def add_note_if_missing(conn):
        columns = {row[1] for row in conn.execute("PRAGMA table_info(readings)")}
        if "note" not in columns:
            conn.execute("ALTER TABLE readings ADD COLUMN note TEXT")

    found = migrate(con, (*MIGRATIONS, add_note_if_missing))

    assert SCHEMA_VERSION == found
    assert "note" in {row[1] for row in con.execute("PRAGMA table_info(readings)")}


KILLED_MIGRATION = """
import sqlite3, sys, time
from pathlib import Path
from koprogo_node.ledger.schema import MIGRATIONS, migrate

def slow(conn):
    conn.execute("DELETE FROM readings WHERE id % 2 = 0")
    conn.execute("UPDATE readings SET value = -1")
    Path(sys.argv[2]).write_text("inside")
    time.sleep(60)

conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA journal_mode=WAL")
conn.execute("PRAGMA cache_size=5")  # spill the changes to the -wal before commit
migrate(conn, (*MIGRATIONS, slow))
"""


async def test_a_process_killed_mid_migration_leaves_the_previous_version(
    data_dir, ledger, tmp_path
):
    """SIGKILL inside a slow Python step: the uncommitted frames are ignored."""
    before = snapshot(ledger)
    marker = tmp_path / "inside"
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_MIGRATION, str(ledger), str(marker)], cwd=CHECKOUT
    )
    deadline = time.monotonic() + 30
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    wal_bytes = ledger.with_name("ledger.db-wal").stat().st_size

    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()

    assert marker.exists()
    assert wal_bytes > 0  # the half-done migration really reached the disk
    assert before == snapshot(ledger)
    assert verify(ledger).ok
    writer = opened(data_dir, (*MIGRATIONS, NOTES))
    await writer.open()
    await writer.close()
    assert SCHEMA_VERSION + 1 == snapshot(ledger)["version"]


async def test_a_new_ledger_is_created_without_a_backup(data_dir):
    """Nothing to lose, nothing copied: no backups folder appears."""
    writer = opened(data_dir, (*MIGRATIONS, NOTES))
    await writer.open()
    await writer.close()

    assert not (data_dir / "backups").exists()
    assert SCHEMA_VERSION + 1 == snapshot(data_dir / "ledger.db")["version"]


async def test_a_ledger_that_does_not_verify_is_not_migrated(data_dir, ledger):
    """No verified copy, no migration: the file stays as it is, no copy is left."""
    con = sqlite3.connect(ledger)
    con.execute("UPDATE readings SET value = value + 1 WHERE id = 7")
    con.commit()
    con.close()
    before = snapshot(ledger)

    with pytest.raises(Exception, match="no verified backup could be taken") as refused:
        await opened(data_dir, (*MIGRATIONS, NOTES)).open()

    assert "the ledger does not verify" in str(refused.value)
    assert before == snapshot(ledger)
    assert [] == list((data_dir / "backups").glob("*.db"))


async def test_a_restart_after_a_failed_migration_takes_no_second_copy(
    data_dir, ledger
):
    """The copy of the same head is reused, so a restart loop cannot fill the card."""
    for _ in range(3):
        with pytest.raises(MigrationFailed):
            await opened(data_dir, (*MIGRATIONS, failing_sql())).open()

    assert 1 == len(list((data_dir / "backups").glob("*.db")))


async def test_pre_migration_backups_are_exempt_from_keep(data_dir, ledger):
    """--keep prunes the nightly copies only, not the one in the old schema."""
    writer = opened(data_dir, (*MIGRATIONS, NOTES))
    await writer.open()
    await writer.close()
    for _ in range(3):
        dest = backups.default_backup_path(data_dir, "ledger.db")
        backups.backup(ledger, dest)
        time.sleep(1.05)  # default names carry the second

    removed = backups.prune_default_backups(data_dir, "ledger.db", keep=1)

    left = sorted(p.name for p in (data_dir / "backups").glob("*.db"))
    assert 2 == len(removed)
    assert 2 == len(left)
    assert 1 == sum(name.startswith("ledger-pre-migration-") for name in left)


async def test_systemd_is_asked_for_more_start_time(
    data_dir, ledger, tmp_path, monkeypatch
):
    """A long backup or migration extends the start timeout instead of dying."""
    address = tmp_path / "notify"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(address))
    listener.settimeout(5)
    monkeypatch.setenv("NOTIFY_SOCKET", str(address))

    writer = opened(data_dir, (*MIGRATIONS, NOTES))
    writer.keep_waiting = lambda: Notifier().extend_start(EXTEND_START_S)
    await writer.open()
    await writer.close()

    assert b"EXTEND_TIMEOUT_USEC=60000000" == listener.recv(256)
    listener.close()


FAILING_RELEASE = """
def _broken_transform(conn):
    conn.execute("DELETE FROM readings")
    raise RuntimeError("lot table missing")


MIGRATIONS = (*MIGRATIONS, _broken_transform)
"""


async def test_the_daemon_refuses_to_start_on_a_failed_migration(
    data_dir, ledger, tmp_path
):
    """Exit 3, one clear line naming migration and backup, no traceback."""
    before = snapshot(ledger)
    release = future_tree(tmp_path / "future", FAILING_RELEASE)
    config = write_config(tmp_path / "node.toml")

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "koprogo_node.cli",
            "run",
            "--config",
            str(config),
            "--data-dir",
            str(data_dir),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,  # not the checkout, whose package would come first
        env={**os.environ, "PYTHONPATH": str(release)},
        timeout=120,
    )

    [copy] = (data_dir / "backups").glob("ledger-pre-migration-v2-v3-*.db")
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert 3 == done.returncode
    assert "Traceback" not in done.stderr
    assert 1 == len(errors)
    assert f"migration {SCHEMA_VERSION + 1} failed" in errors[0]
    assert "RuntimeError: lot table missing" in errors[0]
    assert str(copy) in errors[0]
    assert "Nothing was changed" in errors[0]
    failed_log = tmp_path / "stderr.log"
    failed_log.write_text(done.stderr)
    [event] = log_events(failed_log, "ledger_migration_failed")
    assert (SCHEMA_VERSION + 1, str(copy)) == (event["migration"], event["backup"])
    assert before == snapshot(ledger)
