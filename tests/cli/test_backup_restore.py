"""ledger backup and ledger restore, run as commands against real daemons."""

import hashlib
import json
import shutil
import sqlite3
import time
from datetime import datetime
from pathlib import Path

import pytest

from koprogo_node.ledger.verify import verify

from ..daemon.conftest import cli, log_events, start_node, wait_for_event, write_config

MONTH_S = 30 * 86400


@pytest.fixture(scope="module")
def stopped_node(tmp_path_factory):
    """A data directory whose ledger a real daemon wrote, then stopped."""
    root = tmp_path_factory.mktemp("stopped")
    config, data, log_path = root / "node.toml", root / "data", root / "node.log"
    write_config(config, speed=600.0)
    proc = start_node(config, data, log_path)
    wait_for_event(log_path, "block_committed", height=3)
    proc.terminate()
    assert proc.wait(timeout=20) == 0
    return data


@pytest.fixture(scope="module")
def good_backup(stopped_node, tmp_path_factory):
    """A backup of `stopped_node`, with its anchor beside it."""
    path = tmp_path_factory.mktemp("backups") / "good.db"
    made = cli("ledger", "backup", "--data-dir", str(stopped_node), "--to", str(path))
    assert made.returncode == 0, made.stderr
    return path


def test_backup_taken_while_the_daemon_writes_restores_to_its_height(tmp_path):
    """The daemon commits during the backup; the copy restores and verifies."""
    config = write_config(
        tmp_path / "node.toml", speed=20_000.0, start_offset_s=-MONTH_S
    )
    data, log_path = tmp_path / "data", tmp_path / "node.log"
    backup_file, restored = tmp_path / "b.bak", tmp_path / "restored"
    proc = start_node(config, data, log_path)
    try:
        before = wait_for_event(log_path, "block_committed", height=5)["height"]
        started = time.time()
        made = cli(
            "ledger",
            "backup",
            "--data-dir",
            str(data),
            "--to",
            str(backup_file),
            "--json",
        )
        finished = time.time()
        report = json.loads(made.stdout)
        wait_for_event(log_path, "block_committed", height=report["height"] + 2)
    finally:
        proc.terminate()
        assert proc.wait(timeout=20) == 0

    back = cli(
        "ledger", "restore", "--data-dir", str(restored), str(backup_file), "--json"
    )
    checked = cli("ledger", "verify", "--data-dir", str(restored))

    assert made.returncode == 0, made.stderr
    assert report["verify"]["ok"] and report["height"] >= before
    assert _commits_between(log_path, started, finished), "daemon paused during backup"
    assert back.returncode == 0, back.stderr
    assert json.loads(back.stdout)["height"] == report["height"]
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.startswith(f"OK: {report['height']} blocks")
    live = _readings_up_to(data / "ledger.db", report["height"])
    assert live[0] > 0
    assert _readings_up_to(restored / "ledger.db", report["height"]) == live
    assert _max_block(restored / "ledger.db") == report["height"]
    assert _max_block(data / "ledger.db") > report["height"]


def test_default_backup_lands_in_the_data_directory(stopped_node):
    """Without --to, the copy is a timestamped file under DATA_DIR/backups."""
    made = cli("ledger", "backup", "--data-dir", str(stopped_node), "--json")

    report = json.loads(made.stdout)
    path = Path(report["path"])
    assert made.returncode == 0, made.stderr
    assert path.parent == stopped_node / "backups"
    assert path.name.startswith("ledger-") and path.suffix == ".db"
    assert path.stat().st_size == report["bytes"]
    assert verify(path).ok
    assert report["height"] == verify(stopped_node / "ledger.db").blocks


def test_restore_is_refused_while_a_daemon_runs_on_the_directory(tmp_path, good_backup):
    """Exit 3 with one line naming the daemon; its ledger is left alone."""
    config = write_config(tmp_path / "node.toml", speed=600.0)
    data, log_path = tmp_path / "data", tmp_path / "node.log"
    proc = start_node(config, data, log_path)
    try:
        wait_for_event(log_path, "block_committed", height=2)
        refused = cli("ledger", "restore", "--data-dir", str(data), str(good_backup))
        after = wait_for_event(log_path, "block_committed", height=4)
        still_running = proc.poll() is None
    finally:
        proc.terminate()
        assert proc.wait(timeout=20) == 0

    assert refused.returncode == 3
    assert refused.stderr.startswith("error: ") and "pid" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert still_running and after["height"] >= 4
    assert not list(data.glob("*before-restore*"))
    assert verify(data / "ledger.db").ok


@pytest.mark.parametrize("damage", ["edited_reading", "truncated", "not_sqlite"])
def test_a_damaged_backup_is_refused_and_the_ledger_untouched(
    tmp_path, stopped_node, good_backup, damage
):
    """Exit 1 with one line; the current ledger's bytes do not change."""
    target = tmp_path / "data"
    shutil.copytree(stopped_node, target)
    bad = tmp_path / "bad.db"
    shutil.copy(good_backup, bad)
    shutil.copy(good_backup.with_name("good.db.head"), tmp_path / "bad.db.head")
    DAMAGE[damage](bad)
    before = _digest(target / "ledger.db")

    refused = cli("ledger", "restore", "--data-dir", str(target), str(bad))

    assert refused.returncode == 1, refused.stderr
    assert refused.stderr.startswith("error: ") and "not touched" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert _digest(target / "ledger.db") == before
    assert not list(target.glob("*before-restore*"))
    assert not list(target.glob(".*restoring"))


def test_restore_over_a_ledger_keeps_the_old_one_aside(tmp_path, good_backup):
    """The replaced ledger, -wal included, is renamed aside and still verifies."""
    config = write_config(tmp_path / "node.toml", speed=600.0)
    data, log_path = tmp_path / "data", tmp_path / "node.log"
    proc = start_node(config, data, log_path)
    wait_for_event(log_path, "block_committed", height=3)
    proc.kill()  # no clean close: the newest blocks are still in the -wal
    proc.wait(timeout=20)
    wal_bytes = (data / "ledger.db-wal").stat().st_size
    old_head = _head_hash(data / "ledger.db")

    done = cli("ledger", "restore", "--data-dir", str(data), str(good_backup))

    aside = next(data.glob("ledger.db.before-restore-*Z"))
    assert wal_bytes > 0
    assert done.returncode == 0, done.stderr
    assert f"kept aside  {aside}" in done.stdout
    assert (data / "ledger.db-wal").stat().st_size == 0
    assert _head_hash(aside) == old_head
    assert verify(aside).ok
    assert _head_hash(data / "ledger.db") == _head_hash(good_backup)
    assert verify(data / "ledger.db").ok


@pytest.mark.parametrize(
    "args, code, says",
    [
        (["backup", "--to", "{tmp}"], 2, "is a directory"),
        (["backup", "--to", "{tmp}/missing/b.db"], 2, "does not exist"),
        (["backup", "--to", "{backup}"], 2, "already exists"),
        (["restore", "{tmp}/nothing.db"], 2, "does not exist"),
        (["restore", "{tmp}"], 2, "is a directory"),
        (["restore", "{tmp}/note.txt"], 1, "not a SQLite database"),
    ],
)
def test_bad_paths_get_one_error_line_and_their_exit_code(
    tmp_path, stopped_node, good_backup, args, code, says
):
    """Missing, directory, taken or non-SQLite paths: no traceback, documented code."""
    (tmp_path / "note.txt").write_text("not a ledger\n")
    filled = [a.format(tmp=tmp_path, backup=good_backup) for a in args]
    target = stopped_node if filled[0] == "backup" else tmp_path / "fresh"

    done = cli("ledger", *filled, "--data-dir", str(target))

    assert done.returncode == code
    assert done.stderr.startswith("error: ") and says in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "fresh" / "ledger.db").exists()


def test_backup_without_a_ledger_exits_3(tmp_path):
    """An empty data directory has nothing to copy: exit 3, nothing created."""
    done = cli("ledger", "backup", "--data-dir", str(tmp_path / "none"))

    assert done.returncode == 3
    assert done.stderr.startswith("error: no ledger at ")
    assert not (tmp_path / "none").exists()


# damage done to a copy of a good backup


def _edit_a_reading(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("UPDATE readings SET value = value + 1 WHERE id = 5")
    conn.commit()
    conn.close()


def _truncate(path: Path) -> None:
    with path.open("r+b") as file:
        file.truncate(path.stat().st_size // 2)


def _not_sqlite(path: Path) -> None:
    path.write_bytes(b"PK\x03\x04" + bytes(4096))


DAMAGE = {
    "edited_reading": _edit_a_reading,
    "truncated": _truncate,
    "not_sqlite": _not_sqlite,
}


# reading ledgers and logs


def _commits_between(log_path: Path, start_s: float, end_s: float) -> list[int]:
    commits = log_events(log_path, "block_committed")
    return [
        c["height"]
        for c in commits
        if start_s <= datetime.fromisoformat(c["timestamp"]).timestamp() <= end_s
    ]


def _readings_up_to(db_path: Path, height: int) -> tuple:
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        return conn.execute(
            "SELECT count(*), max(id), total(value), total(ts_ms % 1000003)"
            " FROM readings WHERE block <= ?",
            (height,),
        ).fetchone()
    finally:
        conn.close()


def _max_block(db_path: Path) -> int:
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT max(height) FROM blocks").fetchone()[0]
    finally:
        conn.close()


def _head_hash(db_path: Path) -> str:
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        row = conn.execute(
            "SELECT hash FROM blocks ORDER BY height DESC LIMIT 1"
        ).fetchone()
        return row[0].hex()
    finally:
        conn.close()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_keep_prunes_only_the_backups_it_named(tmp_path):
    """Three nightly runs with --keep 2 leave the newest two and a hand copy."""
    config, data, log = tmp_path / "node.toml", tmp_path / "data", tmp_path / "n.log"
    write_config(config, speed=60.0)
    proc = start_node(config, data, log)
    try:
        wait_for_event(log, "block_committed", height=2)
        runs = []
        for n in range(3):
            runs.append(
                cli(
                    "ledger",
                    "backup",
                    "--keep",
                    "2",
                    "--json",
                    "--config",
                    str(config),
                    "--data-dir",
                    str(data),
                )
            )
            if n == 0:
                (data / "backups" / "by-hand.db").write_bytes(b"kept")
            time.sleep(1.1)  # stamps are to the second
    finally:
        proc.terminate()
        proc.wait(timeout=20)

    made = [Path(json.loads(r.stdout)["path"]) for r in runs]
    left = sorted(p.name for p in (data / "backups").iterdir())
    assert all(0 == r.returncode for r in runs)
    assert "by-hand.db" in left
    assert not made[0].exists() and not Path(f"{made[0]}.head").exists()
    assert made[1].exists() and made[2].exists()
    assert "removed old backup" in runs[2].stderr
