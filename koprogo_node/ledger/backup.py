"""Online backup of the ledger, and its restoration into a data directory.

A backup is a self-contained SQLite file (rollback journal, no -wal beside it)
plus its head anchor (`FILE.head`), so `ledger verify` can check a copy the
same way it checks the live ledger. The copy is taken from one read snapshot
with SQLite's backup API: the daemon keeps committing while it runs, and the
copy never restarts because of those commits.

Restoring never destroys data: the ledger it replaces is moved aside, with its
-wal and its anchor, under a `.before-restore-<UTC stamp>` suffix.

Before a writer migrates a ledger holding data to a newer schema, it takes a
backup named `<ledger>-pre-migration-v<from>-v<to>-<UTC stamp>.db`. Those
are exempt from `--keep` pruning: they are the only copies in the old
schema, one per schema change, and removed by hand once the new release
has proved itself.
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from ..errors import KoprogoError, LedgerBusy, LedgerCorrupt, LedgerError
from .anchor import anchor_path, read_anchor, write_anchor
from .lock import WriterLock, holder_pid
from .schema import SCHEMA_VERSION
from .verify import Verdict, verify

# 1 MiB a step with 4 KiB pages: a bar that moves, few calls back into Python.
PAGES_PER_STEP = 256
SQLITE_MAGIC = b"SQLite format 3\x00"

# Called with (pages copied, pages in total) after each step of a copy.
Progress = Callable[[int, int], None]


class PathUnusable(KoprogoError):
    """Raised when a file named on the command line cannot be read or written."""


class BackupRejected(LedgerError):
    """Raised when a backup file is not a ledger, or not one that verifies."""


@dataclass(frozen=True)
class Outcome:
    """What a backup or a restore produced, and whether it verifies."""

    path: Path
    size_bytes: int
    height: int
    verdict: Verdict
    source: Path
    kept_aside: Path | None = None

    def as_dict(self) -> dict:
        """The outcome as JSON-ready values."""
        return {
            "path": str(self.path),
            "from": str(self.source),
            "bytes": self.size_bytes,
            "height": self.height,
            "kept_aside": str(self.kept_aside) if self.kept_aside else None,
            "verify": vars(self.verdict),
        }


def utc_stamp() -> str:
    """Now in UTC, compact and safe in file names (20260131T120000Z)."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def default_backup_path(data_dir: Path, db_name: str) -> Path:
    """DATA_DIR/backups/<ledger name>-<UTC stamp>.db, not yet taken."""
    stem = f"{Path(db_name).stem}-{utc_stamp()}"
    return _unused(data_dir / "backups", stem, ".db")


def pre_migration_backup_path(
    data_dir: Path, db_name: str, from_version: int, to_version: int
) -> Path:
    """DATA_DIR/backups/<ledger>-pre-migration-v<from>-v<to>-<UTC stamp>.db."""
    stem = f"{Path(db_name).stem}-pre-migration-v{from_version}-v{to_version}"
    return _unused(data_dir / "backups", f"{stem}-{utc_stamp()}", ".db")


def pre_migration_backups(
    data_dir: Path, db_name: str, from_version: int, to_version: int
) -> list[Path]:
    """The backups taken before migrating from `from_version`, newest first."""
    stem = f"{Path(db_name).stem}-pre-migration-v{from_version}-v{to_version}"
    pattern = re.compile(re.escape(stem) + r"-\d{8}T\d{6}Z(-\d+)?\.db")
    folder = data_dir / "backups"
    found = [p for p in folder.glob("*.db") if pattern.fullmatch(p.name)]
    return sorted(found, key=lambda p: p.name, reverse=True)


def prune_default_backups(data_dir: Path, db_name: str, keep: int) -> list[Path]:
    """Delete all but the newest `keep` default-named backups; return them.

    Only files this module named (`<ledger>-<UTC stamp>.db`, with their
    anchors) are touched; copies put there by hand, and those taken before
    a migration, stay.
    """
    folder = data_dir / "backups"
    pattern = re.compile(re.escape(Path(db_name).stem) + r"-\d{8}T\d{6}Z(-\d+)?\.db")
    ours = sorted(
        (p for p in folder.glob("*.db") if pattern.fullmatch(p.name)),
        key=lambda p: p.name,
    )
    removed = ours[: max(0, len(ours) - keep)]
    for path in removed:
        path.unlink(missing_ok=True)
        anchor_path(path).unlink(missing_ok=True)
    return removed


def backup(db_path: Path, dest: Path, progress: Progress | None = None) -> Outcome:
    """Copy the ledger at `db_path` to `dest` while the daemon may write to it.

    Raises LedgerCorrupt when there is no readable ledger, PathUnusable when
    `dest` cannot be written. The returned verdict is that of the copy.
    """
    _check_new_file(dest)
    tmp = dest.with_name(f".{dest.name}.partial")
    try:
        height, anchor = _copy_snapshot(db_path, tmp, progress)
        _fsync(tmp)
        os.replace(tmp, dest)
        _write_anchor_or_none(dest, anchor)
        _fsync(dest.parent)
    except OSError as exc:
        raise PathUnusable(f"cannot write {dest}: {exc.strerror or exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return Outcome(dest, dest.stat().st_size, height, verify(dest), db_path)


def backup_before_migration(
    db_path: Path, from_version: int, to_version: int, progress: Progress | None
) -> tuple[Outcome, bool] | None:
    """A verified copy of the ledger in its current schema, before migrating it.

    Returns None when the ledger holds no block (nothing to lose), else the
    copy's outcome and whether an earlier copy of the same head was reused:
    a daemon restarted after a failed migration takes no second copy.
    Raises BackupRejected when the copy does not verify, PathUnusable or
    LedgerError when it cannot be written.
    """
    conn = _open_ledger(db_path)
    try:
        height, head_hash = _head(conn)
    finally:
        conn.close()
    if not height:
        return None
    data_dir, name = db_path.parent, db_path.name
    for earlier in pre_migration_backups(data_dir, name, from_version, to_version):
        if _same_head(earlier, height, head_hash):
            verdict = verify(earlier)
            if verdict.ok:
                size = earlier.stat().st_size
                return Outcome(earlier, size, height, verdict, db_path), True
    dest = pre_migration_backup_path(data_dir, name, from_version, to_version)
    _make_dir(dest.parent)
    outcome = backup(db_path, dest, progress)
    if not outcome.verdict.ok:
        # The copy is as the ledger is; kept, it would only fill the card at
        # every restart of a daemon that refuses to migrate.
        dest.unlink(missing_ok=True)
        anchor_path(dest).unlink(missing_ok=True)
        raise BackupRejected(
            f"the ledger does not verify ({outcome.verdict.line()});"
            " see koprogo-node ledger verify"
        )
    return outcome, False


def _same_head(copy: Path, height: int, head_hash: str | None) -> bool:
    try:
        conn = _open_ledger(copy)
    except LedgerCorrupt:
        return False
    try:
        return _head(conn) == (height, head_hash)
    finally:
        conn.close()


def restore(
    backup_file: Path, data_dir: Path, db_name: str, progress: Progress | None = None
) -> Outcome:
    """Replace the ledger in `data_dir` by `backup_file`, keeping the old one aside.

    Raises PathUnusable for an unreadable `backup_file`, BackupRejected when it
    does not verify (nothing is touched then), LedgerBusy while a daemon holds
    `data_dir`, LedgerError when `data_dir` cannot be written.
    """
    _check_readable_file(backup_file)
    _refuse_if_running(data_dir)
    _make_dir(data_dir)
    lock = WriterLock(data_dir)
    lock.acquire()
    try:
        anchor = check_backup(backup_file)
        db_path = data_dir / db_name
        kept = _install(backup_file, db_path, anchor, progress)
    finally:
        lock.release()
    verdict = verify(db_path)
    size = db_path.stat().st_size
    return Outcome(db_path, size, verdict.blocks, verdict, backup_file, kept)


def check_backup(backup_file: Path) -> tuple[int, str] | None:
    """Return the anchor of a backup that verifies; raise BackupRejected if not."""
    with backup_file.open("rb") as head:
        if head.read(len(SQLITE_MAGIC)) != SQLITE_MAGIC:
            raise BackupRejected(f"{backup_file} is not a SQLite database")
    verdict = verify(backup_file)
    if not verdict.ok:
        raise BackupRejected(f"{backup_file} does not verify: {verdict.line()}")
    version = _schema_version(backup_file)
    if version > SCHEMA_VERSION:
        raise BackupRejected(
            f"{backup_file} has ledger schema {version}, newer than this"
            f" program's {SCHEMA_VERSION}; upgrade koprogo-node first"
        )
    return read_anchor(backup_file)


# copying


def _copy_snapshot(
    db_path: Path, dest: Path, progress: Progress | None
) -> tuple[int, tuple[int, str] | None]:
    """Copy one snapshot of the ledger; return its height and the copy's anchor.

    The live anchor is read before the snapshot opens, so it is never newer
    than the snapshot unless blocks were removed from the ledger.
    """
    live_anchor = read_anchor(db_path)
    source = _open_ledger(db_path)
    try:
        source.execute("BEGIN")
        height, head_hash = _head(source)
        anchor = _anchor_for_copy(live_anchor, source, height, head_hash)
        _copy(source, dest, "DELETE", progress)
    finally:
        source.close()
    return height, anchor


def _copy(
    source: sqlite3.Connection,
    dest: Path,
    journal_mode: str,
    progress: Progress | None,
) -> None:
    """Copy `source` into a fresh file `dest`, page by page.

    Raises OSError when `dest` cannot be created, LedgerError when the copy
    fails (a full card, an unreadable page).
    """
    dest.unlink(missing_ok=True)
    os.close(os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    target = sqlite3.connect(dest, isolation_level=None)
    try:
        source.backup(
            target, pages=PAGES_PER_STEP, progress=_pages_done(progress), sleep=0
        )
        target.execute(f"PRAGMA journal_mode={journal_mode}")
    except sqlite3.Error as exc:
        raise LedgerError(f"copying into {dest} failed: {exc}") from exc
    finally:
        target.close()


def _pages_done(progress: Progress | None):
    if progress is None:
        return None
    return lambda _status, remaining, total: progress(total - remaining, total)


def _anchor_for_copy(
    live: tuple[int, str] | None,
    snapshot: sqlite3.Connection,
    height: int,
    head_hash: str | None,
) -> tuple[int, str] | None:
    """The anchor a copy gets: the snapshot's head, if the live anchor agrees.

    A live anchor that contradicts the snapshot (missing, unreadable, ahead of
    it, or naming another hash) is carried over unchanged, so the copy fails
    verification exactly as the live ledger does.
    """
    if live is None or live[0] < 0:
        return None
    if live[0] > height or (live[0] and _hash_at(snapshot, live[0]) != live[1]):
        return live
    return (height, head_hash) if height else live


def _write_anchor_or_none(db_path: Path, anchor: tuple[int, str] | None) -> None:
    if anchor is None:
        anchor_path(db_path).unlink(missing_ok=True)
    else:
        write_anchor(db_path, anchor[0], bytes.fromhex(anchor[1]))


# installing a backup


def _install(
    backup_file: Path,
    db_path: Path,
    anchor: tuple[int, str] | None,
    progress: Progress | None,
) -> Path | None:
    """Copy next to the ledger, move the old one aside, rename the copy in."""
    tmp = db_path.with_name(f".{db_path.name}.restoring")
    try:
        source = _open_ledger(backup_file)
        try:
            _copy(source, tmp, "WAL", progress)
        finally:
            source.close()
        _fsync(tmp)
        kept = _set_aside(db_path)
        os.replace(tmp, db_path)
        _write_anchor_or_none(db_path, anchor)
        _fsync(db_path.parent)
    except OSError as exc:
        raise LedgerError(
            f"cannot restore into {db_path.parent}: {exc.strerror or exc}"
        ) from exc
    finally:
        tmp.unlink(missing_ok=True)
    return kept


def _set_aside(db_path: Path) -> Path | None:
    """Rename the ledger, its -wal and its anchor with a before-restore suffix.

    The -wal moves with the database, not deleted: it may hold the newest
    committed blocks. The -shm is only an index of the -wal and is removed.
    """
    present = [
        suffix
        for suffix in ("", "-wal", ".head")
        if db_path.with_name(db_path.name + suffix).exists()
    ]
    if "" in present:
        _checkpoint(db_path)
    aside = _unused(db_path.parent, f"{db_path.name}.before-restore-{utc_stamp()}")
    for suffix in present:
        current = db_path.with_name(db_path.name + suffix)
        if current.exists():  # the checkpoint may have removed the -wal
            os.replace(current, aside.with_name(aside.name + suffix))
    _remove_sidecar(db_path, "-shm")
    return aside if present else None


def _checkpoint(db_path: Path) -> None:
    """Fold the -wal into the database file, when the file allows it."""
    try:
        conn = sqlite3.connect(db_path, isolation_level=None)
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
    except sqlite3.Error:
        pass  # a damaged ledger is moved aside as it is, -wal included


def _remove_sidecar(db_path: Path, suffix: str) -> None:
    db_path.with_name(db_path.name + suffix).unlink(missing_ok=True)


# small checks and helpers


def _open_ledger(db_path: Path) -> sqlite3.Connection:
    """Open a ledger read-only, or raise LedgerCorrupt."""
    if not db_path.is_file():
        raise LedgerCorrupt(f"no ledger at {db_path}")
    try:
        conn = sqlite3.connect(
            f"{db_path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None
        )
        conn.execute("SELECT 1 FROM blocks LIMIT 1").fetchall()
    except sqlite3.Error as exc:
        raise LedgerCorrupt(f"{db_path} is not a readable ledger: {exc}") from exc
    return conn


def _head(conn: sqlite3.Connection) -> tuple[int, str | None]:
    row = conn.execute(
        "SELECT height, hash FROM blocks ORDER BY height DESC LIMIT 1"
    ).fetchone()
    return (row[0], row[1].hex()) if row else (0, None)


def _hash_at(conn: sqlite3.Connection, height: int) -> str | None:
    row = conn.execute("SELECT hash FROM blocks WHERE height = ?", (height,))
    found = row.fetchone()
    return found[0].hex() if found else None


def _schema_version(db_path: Path) -> int:
    conn = _open_ledger(db_path)
    try:
        return conn.execute("PRAGMA user_version").fetchone()[0]
    finally:
        conn.close()


def _unused(folder: Path, stem: str, suffix: str = "") -> Path:
    """`folder/stem+suffix`, numbered when that name (or its sidecars) is taken."""
    candidate, n = folder / f"{stem}{suffix}", 1
    while any(
        candidate.with_name(candidate.name + extra).exists()
        for extra in ("", "-wal", ".head")
    ):
        n += 1
        candidate = folder / f"{stem}-{n}{suffix}"
    return candidate


def _check_new_file(dest: Path) -> None:
    if dest.is_dir():
        raise PathUnusable(f"{dest} is a directory; give a file name")
    if dest.exists():
        raise PathUnusable(f"{dest} already exists; remove it or choose another")
    if not dest.parent.is_dir():
        problem = "is not a directory" if dest.parent.exists() else "does not exist"
        raise PathUnusable(f"cannot write {dest}: {dest.parent} {problem}")


def _check_readable_file(path: Path) -> None:
    if path.is_dir():
        raise PathUnusable(f"{path} is a directory, not a backup file")
    if not path.exists():
        raise PathUnusable(f"{path} does not exist")
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise PathUnusable(f"cannot read {path}: {exc.strerror}") from exc


def _refuse_if_running(data_dir: Path) -> None:
    pid = holder_pid(data_dir)
    if pid is not None:
        raise LedgerBusy(
            f"{data_dir} is in use by a running koprogo-node (pid {pid});"
            " stop it first (systemctl stop koprogo-node)"
        )


def _make_dir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LedgerError(
            f"cannot create data directory {path}: {exc.strerror}"
        ) from exc


def _fsync(path: Path) -> None:
    """Flush a file or a directory entry to the card before going on."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
