"""Versioned migrations: forward from nothing, refusal of a newer schema."""

import sqlite3

import pytest

from koprogo_node.ledger.schema import SCHEMA_VERSION, migrate


def test_migrate_brings_empty_file_to_latest(tmp_path):
    """An empty database ends at the latest version with every table."""
    con = sqlite3.connect(tmp_path / "l.db", isolation_level=None)

    found = migrate(con)

    version = con.execute("PRAGMA user_version").fetchone()[0]
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master")}
    assert (found, version) == (0, SCHEMA_VERSION)
    assert {"blocks", "readings", "rollups", "events", "sensors"} <= tables


def test_migrate_twice_changes_nothing(tmp_path):
    """Migrating an up-to-date database is a no-op."""
    con = sqlite3.connect(tmp_path / "l.db", isolation_level=None)
    migrate(con)

    assert migrate(con) == SCHEMA_VERSION


def test_newer_schema_is_refused(tmp_path):
    """A database from a newer release is refused rather than misread."""
    con = sqlite3.connect(tmp_path / "l.db", isolation_level=None)
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")

    with pytest.raises(sqlite3.DatabaseError, match="newer than this program"):
        migrate(con)
