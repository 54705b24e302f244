"""Upgrade an installed node to a new wheel; roll back when it does not come up.

The installed layout: PREFIX/releases/<version>/ holds one virtual
environment per release, PREFIX/venv is a symlink to the current one (the
systemd unit runs PREFIX/venv/bin/koprogo-node), the state is in DATA_DIR.

Steps: install the wheel into a new release (pip, no index: the wheel's
folder and any --find-links are the only sources), stop the service, take a
verified ledger backup with the current release, switch the symlink (a
rename, so it is atomic), start the service and wait until the daemon
answers on its control socket and keeps answering. If it does not: stop it,
switch back, restore the backup if the new release changed the ledger's
schema (the migrated file is kept aside), start the old release again and
exit 1. The newest `--keep` releases stay installed.

Standard library only, and no import of the package: scripts/upgrade runs
this file with the system Python, whatever state the current release is in.
"""

from __future__ import annotations

import argparse
import errno
import fcntl
import json
import os
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

EXIT_OK, EXIT_ROLLED_BACK, EXIT_REFUSED = 0, 1, 2
CLI_TIMEOUT_S = 60.0
STATUS_TIMEOUT_S = 15.0
POLL_S = 1.0
# The wheel file name: {name}-{version}(-{build})?-{python}-{abi}-{platform}.whl
WHEEL_NAME = re.compile(
    r"(?P<name>[^-]+)-(?P<version>[^-]+)(-\d[^-]*)?-[^-]+-[^-]+-[^-]+\.whl"
)
# A version as PEP 440 writes them (1.2.0, 2.0rc1, 1.0.post1+local): it names
# a directory, so nothing else, least of all "." or "..", may pass.
SAFE_VERSION = re.compile(r"[0-9]+(\.[0-9]+)*([.+!_-]?[A-Za-z0-9]+)*")
PACKAGE = "koprogo-node"


class UpgradeError(Exception):
    """Raised when the upgrade cannot go on; the message says what was done."""

    def __init__(self, message: str, exit_code: int = EXIT_REFUSED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True, kw_only=True)
class Layout:
    """Where the node is installed and how its service is driven."""

    prefix: Path
    data_dir: Path
    config: Path
    service: str
    systemctl: tuple[str, ...]
    python: str
    health_timeout_s: float
    settle_s: float
    keep: int

    @property
    def releases(self) -> Path:
        return self.prefix / "releases"

    @property
    def link(self) -> Path:
        return self.prefix / "venv"

    def cli(self, release: Path, *args: str) -> list[str]:
        """A `koprogo-node` command of `release` on this node's data."""
        command = [str(release / "bin" / "koprogo-node"), *args]
        command += ["--data-dir", str(self.data_dir)]
        if self.config.is_file():
            command += ["--config", str(self.config)]
        return command


def main(argv: list[str] | None = None) -> int:
    """Console entry point; returns the exit code."""
    args = _parser().parse_args(argv)
    layout = Layout(
        prefix=Path(args.prefix),
        data_dir=Path(args.data_dir),
        config=Path(args.config),
        service=args.service,
        systemctl=tuple(shlex.split(args.systemctl)),
        python=args.python,
        health_timeout_s=args.health_timeout,
        settle_s=args.settle,
        keep=args.keep,
    )
    try:
        with _exclusive(layout.prefix):
            upgrade(layout, Path(args.wheel), [Path(p) for p in args.find_links])
    except UpgradeError as exc:
        say(f"error: {exc}")
        return exc.exit_code
    return EXIT_OK


def upgrade(layout: Layout, wheel: Path, find_links: list[Path]) -> Path:
    """Install `wheel` as the current release; return its directory."""
    version = wheel_version(wheel)
    missing = [str(p) for p in find_links if not p.is_dir()]
    if missing:
        raise UpgradeError(f"no such wheelhouse: {', '.join(missing)}")
    previous = current_release(layout)
    if previous is not None and previous.name == version:
        raise UpgradeError(f"release {version} is already the current one")
    release = install(layout, wheel, version, find_links)
    say(f"installed {version} in {release}")
    say(f"stopping {layout.service}")
    try:
        _systemctl(layout, "stop")
    except UpgradeError:
        shutil.rmtree(release, ignore_errors=True)
        raise
    backup = None
    if previous is not None:
        try:
            backup = take_backup(layout, previous)
        except UpgradeError as exc:
            _systemctl(layout, "start", check=False)
            shutil.rmtree(release, ignore_errors=True)
            raise UpgradeError(
                f"{exc}; nothing was changed, {layout.service} restarted on"
                f" release {previous.name}"
            ) from exc
    switch(layout, release)
    say(f"switched {layout.link} to {version}; starting {layout.service}")
    started = _systemctl(layout, "start", check=False)
    if started and healthy(layout, release):
        removed = prune_releases(layout)
        say(f"upgraded to {version}" + _listed(" removed old releases", removed))
        return release
    raise roll_back(layout, release, previous, backup)


# installing and switching


def wheel_version(wheel: Path) -> str:
    """The version in a wheel's file name (PEP 427), checked to be a file."""
    match = WHEEL_NAME.fullmatch(wheel.name)
    if match is None:
        raise UpgradeError(
            f"{wheel.name} is not a wheel file name (NAME-VERSION-...whl)"
        )
    if not wheel.is_file():
        raise UpgradeError(f"{wheel} does not exist")
    version = match["version"]
    if not SAFE_VERSION.fullmatch(version):
        raise UpgradeError(f"{wheel.name}: {version!r} is not a release version")
    name, inside = _metadata(wheel)
    if name != PACKAGE:
        raise UpgradeError(f"{wheel.name} is a wheel of {name}, not of {PACKAGE}")
    if inside != version:
        raise UpgradeError(
            f"{wheel.name} holds version {inside}, not the {version} of its name"
        )
    return version


def _metadata(wheel: Path) -> tuple[str, str]:
    """The normalised project name and the version a wheel's METADATA gives."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            names = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
            if len(names) != 1:
                raise UpgradeError(f"{wheel.name} has no single METADATA file")
            text = archive.read(names[0]).decode("utf-8", "replace")
    except (zipfile.BadZipFile, OSError) as exc:
        raise UpgradeError(f"{wheel.name} is not a readable wheel: {exc}") from exc
    fields = dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)
    name = re.sub(r"[-_.]+", "-", fields.get("Name", "?")).lower()
    return name, fields.get("Version", "?")


def current_release(layout: Layout) -> Path | None:
    """The release the symlink points to, or None on a first install."""
    if not layout.link.is_symlink():
        if layout.link.exists():
            raise UpgradeError(
                f"{layout.link} is not a symlink; this node was not installed"
                " with one release directory per version"
            )
        return None
    release = layout.link.resolve()
    if not (release / "bin" / "koprogo-node").is_file():
        raise UpgradeError(f"{layout.link} points to {release}, not to a release")
    return release


def install(layout: Layout, wheel: Path, version: str, find_links: list[Path]) -> Path:
    """Make releases/<version>: a virtual environment with the wheel in it.

    A directory left by an earlier, interrupted attempt is replaced: it is
    never the current release (checked by the caller).
    """
    release = layout.releases / version
    shutil.rmtree(release, ignore_errors=True)
    layout.releases.mkdir(parents=True, exist_ok=True)
    links = [wheel.parent.resolve(), *(p.resolve() for p in find_links)]
    pip = [str(release / "bin" / "python"), "-m", "pip", "install", "--no-index"]
    pip += ["--disable-pip-version-check", "--quiet"]
    for folder in links:
        pip += ["--find-links", str(folder)]
    for command in ([layout.python, "-m", "venv", str(release)], [*pip, str(wheel)]):
        done = _run(command)
        if done.returncode != 0:
            shutil.rmtree(release, ignore_errors=True)
            raise UpgradeError(
                f"cannot install {wheel.name}: {_last_lines(done)}; nothing was changed"
            )
    return release


def switch(layout: Layout, release: Path) -> None:
    """Point the symlink at `release` by renaming a new link over it."""
    temporary = layout.prefix / ".venv.switching"
    temporary.unlink(missing_ok=True)
    os.symlink(os.path.relpath(release, layout.prefix), temporary)
    os.replace(temporary, layout.link)
    _fsync_dir(layout.prefix)


def prune_releases(layout: Layout) -> list[Path]:
    """Remove all but the newest `keep` releases (never the current one)."""
    current = layout.link.resolve()
    others = sorted(
        (p for p in layout.releases.iterdir() if p.is_dir() and p != current),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    removed = others[max(1, layout.keep) - 1 :]
    for release in removed:
        shutil.rmtree(release, ignore_errors=True)
    return removed


# the ledger


def take_backup(layout: Layout, release: Path) -> dict | None:
    """A verified backup by `release`; None when the node has no ledger yet.

    Returns the backup's outcome (`ledger backup --json`) and the schema
    version of the copy, under "schema".
    """
    done = _run_as_owner(layout, layout.cli(release, "ledger", "backup", "--json"))
    if done.returncode == 3 and "no ledger at" in done.stderr:
        say("no ledger yet: nothing to back up")
        return None
    if done.returncode != 0:
        raise UpgradeError(f"the ledger backup failed: {_last_lines(done)}")
    try:
        outcome = json.loads(done.stdout)
        outcome["schema"] = schema_version(Path(outcome["path"]))
    except (ValueError, KeyError, sqlite3.Error) as exc:
        raise UpgradeError(f"the ledger backup cannot be read back: {exc}") from exc
    say(f"ledger backed up to {outcome['path']} (verified, schema {outcome['schema']})")
    return outcome


def schema_version(db_path: Path) -> int:
    """`PRAGMA user_version` of a database file, read only."""
    conn = sqlite3.connect(f"{db_path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return conn.execute("PRAGMA user_version").fetchone()[0]
    finally:
        conn.close()


# health and rollback


def healthy(layout: Layout, release: Path) -> bool:
    """Whether the daemon answers within the timeout, and still after settling."""
    deadline = time.monotonic() + layout.health_timeout_s
    while time.monotonic() < deadline:
        if _answering(layout, release):
            time.sleep(layout.settle_s)
            if _answering(layout, release):
                return True
        time.sleep(POLL_S)
    return False


def roll_back(
    layout: Layout, release: Path, previous: Path | None, backup: dict | None
) -> UpgradeError:
    """Put the previous release and its ledger back; return the error to raise."""
    version = release.name
    say(f"{layout.service} on {version} is not healthy; rolling back")
    _systemctl(layout, "stop", check=False)
    if previous is None:
        layout.link.unlink(missing_ok=True)
        shutil.rmtree(release, ignore_errors=True)
        return UpgradeError(
            f"release {version} did not become healthy within"
            f" {layout.health_timeout_s:g} s and was removed; see"
            f" journalctl -u {layout.service}",
            EXIT_ROLLED_BACK,
        )
    switch(layout, previous)
    restored = _restore_if_migrated(layout, previous, backup)
    started = _systemctl(layout, "start", check=False)
    back_up = started and healthy(layout, previous)
    shutil.rmtree(release, ignore_errors=True)
    ledger = (
        f"; the ledger was restored from {backup['path']} (the migrated one is"
        f" kept aside as {restored})"
        if restored
        else "; the ledger was left as it was"
    )
    running = (
        f"release {previous.name} runs again"
        if back_up
        else f"release {previous.name} did NOT come back either: check"
        f" koprogo-node doctor and journalctl -u {layout.service}"
    )
    return UpgradeError(
        f"release {version} did not become healthy within"
        f" {layout.health_timeout_s:g} s (see journalctl -u {layout.service});"
        f" rolled back: {running}{ledger}",
        EXIT_ROLLED_BACK,
    )


def _restore_if_migrated(
    layout: Layout, previous: Path, backup: dict | None
) -> str | None:
    """Restore the backup when the ledger's schema moved; return where the
    migrated file was kept aside."""
    if backup is None:
        return None
    ledger = Path(backup["from"])
    if not ledger.is_file() or schema_version(ledger) == backup["schema"]:
        return None
    command = layout.cli(previous, "ledger", "restore", backup["path"], "--json")
    done = _run_as_owner(layout, command)
    if done.returncode != 0:
        raise UpgradeError(
            f"rollback: restoring {backup['path']} failed: {_last_lines(done)};"
            f" {layout.service} is stopped, its symlink points to {previous.name}",
            EXIT_ROLLED_BACK,
        )
    return json.loads(done.stdout)["kept_aside"]


def _answering(layout: Layout, release: Path) -> bool:
    command = layout.cli(release, "status", "--json")
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=STATUS_TIMEOUT_S
        )
        return done.returncode == 0 and json.loads(done.stdout)["daemon"]["answering"]
    except (OSError, subprocess.TimeoutExpired, ValueError, KeyError):
        return False


# small helpers


def _systemctl(layout: Layout, action: str, check: bool = True) -> bool:
    done = _run([*layout.systemctl, action, layout.service])
    if done.returncode != 0 and check:
        raise UpgradeError(
            f"systemctl {action} {layout.service} failed: {_last_lines(done)}"
        )
    return done.returncode == 0


def _run_as_owner(layout: Layout, command: list[str]) -> subprocess.CompletedProcess:
    """Run as the data directory's owner, so files it writes stay the daemon's."""
    owner = {}
    if os.geteuid() == 0 and layout.data_dir.is_dir():
        stat = layout.data_dir.stat()
        if stat.st_uid != 0:
            owner = {"user": stat.st_uid, "group": stat.st_gid}
    return _run(command, **owner)


def _run(command: list[str], **options) -> subprocess.CompletedProcess:
    """Run `command`; a program that cannot be started is exit code 127."""
    try:
        return subprocess.run(command, capture_output=True, text=True, **options)
    except OSError as exc:
        return subprocess.CompletedProcess(command, 127, "", f"{command[0]}: {exc}")


class _exclusive:
    """Holds PREFIX/.upgrade.lock so that two upgrades never interleave."""

    def __init__(self, prefix: Path) -> None:
        self.path = prefix / ".upgrade.lock"

    def __enter__(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            hint = " (run it as root)" if exc.errno == errno.EACCES else ""
            raise UpgradeError(
                f"cannot use {self.path.parent}: {exc.strerror}{hint}"
            ) from exc
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            raise UpgradeError("another upgrade is running on this node") from None

    def __exit__(self, *_exc) -> None:
        os.close(self._fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _last_lines(done: subprocess.CompletedProcess, n: int = 3) -> str:
    lines = (done.stderr or done.stdout or "").strip().splitlines()
    return " / ".join(lines[-n:]) or f"exit code {done.returncode}"


def _listed(label: str, paths: list[Path]) -> str:
    return f";{label} {', '.join(p.name for p in paths)}" if paths else ""


def say(line: str) -> None:
    """One step of the upgrade, for the technician watching it."""
    print(f"upgrade: {line}", file=sys.stderr, flush=True)


def _parser() -> argparse.ArgumentParser:
    env = os.environ.get
    parser = argparse.ArgumentParser(
        prog="upgrade",
        description="Install a koprogo-node wheel as a new release and switch"
        " to it; roll back if the daemon does not become healthy.",
        epilog="Exit codes: 0 upgraded; 1 the new release failed and the old"
        " one was put back; 2 nothing was changed (bad wheel, install or backup"
        " failed, another upgrade running).",
    )
    parser.add_argument("wheel", help="the koprogo-node wheel to install")
    parser.add_argument(
        "--find-links",
        action="append",
        default=[],
        metavar="DIR",
        help="a wheelhouse with the dependencies (repeatable; the wheel's own"
        " folder is always searched; no package index is used)",
    )
    options = (
        ("--prefix", "KOPROGO_PREFIX", "/opt/koprogo-node", "installation root"),
        ("--data-dir", "KOPROGO_DATA_DIR", "/var/lib/koprogo-node", "state"),
        ("--config", "KOPROGO_CONFIG", "/etc/koprogo-node/node.toml", "config"),
        ("--service", "KOPROGO_SERVICE", "koprogo-node", "systemd unit"),
        (
            "--systemctl",
            "KOPROGO_SYSTEMCTL",
            "systemctl",
            "command run as SYSTEMCTL stop|start SERVICE",
        ),
        ("--python", "KOPROGO_PYTHON", "python3", "Python making the venv"),
    )
    for flag, var, default, what in options:
        parser.add_argument(
            flag, default=env(var, default), help=f"{what} [env {var}; %(default)s]"
        )
    parser.add_argument(
        "--health-timeout",
        type=float,
        default=float(env("KOPROGO_HEALTH_TIMEOUT", "120")),
        metavar="SECONDS",
        help="how long the new daemon has to answer [%(default)s]",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="how long it must then keep answering [%(default)s]",
    )
    parser.add_argument(
        "--keep", type=int, default=2, help="releases kept installed [%(default)s]"
    )
    return parser


if __name__ == "__main__":
    sys.exit(main())
