"""scripts/upgrade on an installed layout in a temporary directory.

Each release is a real virtual environment made by the script, with a wheel
of this checkout (or of a "future" copy of it) installed by pip. The
dependencies come from the test environment through PYTHONPATH, so no
package index is needed. A fake `systemctl` really starts
PREFIX/venv/bin/koprogo-node run in the background and stops it by signal,
the way the unit would (without the READY wait of Type=notify).
"""

import os
import re
import sqlite3
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from koprogo_node.deploy import upgrade as upgrader

from ..daemon.conftest import log_events, wait_for_event, write_config
from ..ledger.releases import CHECKOUT, build_wheel, future_tree

SCRIPT = CHECKOUT / "scripts" / "upgrade"
HEALTH_TIMEOUT_S = 15

FAKE_SYSTEMCTL = """#!{python}
import os, signal, subprocess, sys, time
from pathlib import Path

PREFIX, CONFIG, DATA, STATE = (Path(p) for p in {paths!r})
action, service = sys.argv[1:3]
pid_file = STATE / (service + ".pid")


def alive(pid):
    try:
        stat = Path(f"/proc/{{pid}}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


if action == "start":
    with (STATE / "daemon.log").open("a") as log:
        daemon = subprocess.Popen(
            [PREFIX / "venv" / "bin" / "koprogo-node", "run",
             "--config", CONFIG, "--data-dir", DATA],
            stdout=subprocess.DEVNULL, stderr=log, start_new_session=True,
        )
    pid_file.write_text(str(daemon.pid))
elif action == "stop":
    pid = int(pid_file.read_text()) if pid_file.exists() else None
    if pid and alive(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)
else:
    sys.exit(f"fake systemctl: {{action}} is not supported")
"""

GOOD_MIGRATION = """
def _count_by_sensor(conn):
    rows = conn.execute("SELECT sensor, count(*) FROM readings GROUP BY sensor")
    conn.execute("CREATE TABLE sensor_notes (sensor INTEGER PRIMARY KEY, n INTEGER)")
    conn.executemany("INSERT INTO sensor_notes VALUES (?, ?)", rows.fetchall())


MIGRATIONS = (*MIGRATIONS, _count_by_sensor)
"""

FAILING_MIGRATION = """
def _broken(conn):
    conn.execute("DELETE FROM readings")
    raise RuntimeError("lot table missing")


MIGRATIONS = (*MIGRATIONS, _broken)
"""

# A release that migrates, then crashes before it is ready.
CRASH_AFTER_OPEN = """

def write_run_file(*_args, **_kwargs):
    raise RuntimeError("release 0.3.0 cannot write its run file")
"""


@pytest.fixture(scope="module")
def wheels(tmp_path_factory):
    """The current checkout as 0.1.0 and three later releases."""
    root = tmp_path_factory.mktemp("wheels")
    good = future_tree(root / "good", GOOD_MIGRATION)
    bad = future_tree(root / "bad", FAILING_MIGRATION)
    crash = future_tree(root / "crash", GOOD_MIGRATION)
    with (crash / "koprogo_node" / "daemon" / "runfile.py").open("a") as runfile:
        runfile.write(CRASH_AFTER_OPEN)
    return {
        "old": build_wheel(CHECKOUT, "0.1.0", root / "dist"),
        "good": build_wheel(good, "0.2.0", root / "dist"),
        "bad": build_wheel(bad, "0.2.1", root / "dist"),
        "crash": build_wheel(crash, "0.3.0", root / "dist"),
    }


class Node:
    """An installed layout under a temporary directory, driven by the script."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.prefix, self.data = root / "opt", root / "data"
        self.state = root / "systemd"
        self.state.mkdir()
        self.config = write_config(root / "node.toml", speed=600.0)
        self.systemctl = root / "systemctl"
        paths = [str(p) for p in (self.prefix, self.config, self.data, self.state)]
        self.systemctl.write_text(
            FAKE_SYSTEMCTL.format(python=sys.executable, paths=paths)
        )
        self.systemctl.chmod(0o755)
        # Release environments find the dependencies where the tests do.
        self.env = {
            **os.environ,
            "PYTHONPATH": sysconfig.get_paths()["purelib"],
            "KOPROGO_PREFIX": str(self.prefix),
            "KOPROGO_DATA_DIR": str(self.data),
            "KOPROGO_CONFIG": str(self.config),
            "KOPROGO_SYSTEMCTL": str(self.systemctl),
            "KOPROGO_PYTHON": sys.executable,
        }

    @property
    def log(self) -> Path:
        return self.state / "daemon.log"

    @property
    def ledger(self) -> Path:
        return self.data / "ledger.db"

    def upgrade(self, wheel: Path) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(SCRIPT), str(wheel), "--health-timeout", str(HEALTH_TIMEOUT_S)]
            + ["--settle", "1"],
            capture_output=True,
            text=True,
            env=self.env,
            cwd=self.root,
            timeout=300,
        )

    def current(self) -> str:
        return (self.prefix / "venv").resolve().name

    def releases(self) -> set[str]:
        return {p.name for p in (self.prefix / "releases").iterdir()}

    def stop(self) -> None:
        subprocess.run([str(self.systemctl), "stop", "koprogo-node"], check=True)

    def koprogo(self, *args: str) -> subprocess.CompletedProcess:
        command = [str(self.prefix / "venv" / "bin" / "koprogo-node"), *args]
        return subprocess.run(
            [*command, "--data-dir", str(self.data), "--config", str(self.config)],
            capture_output=True,
            text=True,
            env=self.env,
            cwd=self.root,
        )


def readings(db: Path) -> set[tuple]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return set(con.execute("SELECT id, sensor, ts_ms, value FROM readings"))
    finally:
        con.close()


def backed_up(output: str) -> Path:
    return Path(re.search(r"ledger backed up to (\S+)", output)[1])


@pytest.fixture
def running_node(tmp_path, wheels):
    """Release 0.1.0 installed by the script, running, with readings stored."""
    node = Node(tmp_path)
    first = node.upgrade(wheels["old"])
    assert 0 == first.returncode, first.stderr + node.log.read_text()
    wait_for_event(node.log, "block_committed", readings=1)
    yield node
    node.stop()


@pytest.mark.slow
def test_upgrade_migrates_and_keeps_every_reading(running_node, wheels):
    """0.1.0 to 0.2.0: backup, switch, migration 3, healthy; nothing lost."""
    node = running_node

    done = node.upgrade(wheels["good"])

    assert 0 == done.returncode, done.stderr + node.log.read_text()[-3000:]
    assert "upgraded to 0.2.0" in done.stderr
    assert "0.2.0" == node.current()
    assert {"0.1.0", "0.2.0"} == node.releases()
    assert node.koprogo("status", "--json").returncode == 0
    node.stop()
    backup = backed_up(done.stderr)
    assert readings(backup) <= readings(node.ledger)
    assert 3 == upgrader.schema_version(node.ledger)
    [migrated] = log_events(node.log, "ledger_migrated")[-1:]
    assert (2, 3) == (migrated["schema_from"], migrated["schema_to"])
    assert list(node.data.glob("backups/ledger-pre-migration-v2-v3-*.db"))
    verified = node.koprogo("ledger", "verify")
    assert 0 == verified.returncode, verified.stdout + verified.stderr


@pytest.mark.slow
def test_a_failing_migration_rolls_back_to_the_old_release(running_node, wheels):
    """0.2.1's migration fails: 0.1.0 runs again on the untouched ledger."""
    node = running_node

    done = node.upgrade(wheels["bad"])

    assert 1 == done.returncode, done.stderr
    assert "rolled back: release 0.1.0 runs again" in done.stderr
    assert "the ledger was left as it was" in done.stderr
    assert "0.1.0" == node.current()
    assert {"0.1.0"} == node.releases()
    failed = log_events(node.log, "ledger_migration_failed")
    assert failed and 3 == failed[0]["migration"]
    node.stop()
    assert readings(backed_up(done.stderr)) <= readings(node.ledger)
    assert 2 == upgrader.schema_version(node.ledger)
    verified = node.koprogo("ledger", "verify")
    assert 0 == verified.returncode, verified.stdout + verified.stderr


@pytest.mark.slow
def test_a_release_crashing_after_migrating_gets_the_backup_restored(
    running_node, wheels
):
    """0.3.0 migrates then dies: the old schema comes back from the backup."""
    node = running_node

    done = node.upgrade(wheels["crash"])

    assert 1 == done.returncode, done.stderr
    backup = backed_up(done.stderr)
    assert f"the ledger was restored from {backup}" in done.stderr
    assert "0.1.0" == node.current()
    [aside] = node.data.glob("ledger.db.before-restore-*[0-9Z]")
    assert 3 == upgrader.schema_version(aside)
    node.stop()
    assert 2 == upgrader.schema_version(node.ledger)
    assert readings(backup) <= readings(node.ledger)
    verified = node.koprogo("ledger", "verify")
    assert 0 == verified.returncode, verified.stdout + verified.stderr


# the script's small parts, without a daemon


def layout(root: Path, keep: int = 2) -> upgrader.Layout:
    return upgrader.Layout(
        prefix=root,
        data_dir=root / "data",
        config=root / "node.toml",
        service="koprogo-node",
        systemctl=("false",),
        python=sys.executable,
        health_timeout_s=1,
        settle_s=0,
        keep=keep,
    )


def fake_wheel(path: Path, name: str = "koprogo-node", version: str = "") -> Path:
    """A wheel holding only its METADATA: enough for the checks before install."""
    version = version or path.name.split("-")[1]
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(
            f"x-{version}.dist-info/METADATA", f"Name: {name}\nVersion: {version}\n"
        )
    return path


@pytest.mark.parametrize(
    "name, version",
    [
        ("koprogo_node-0.2.0-py3-none-any.whl", "0.2.0"),
        ("koprogo_node-1.0.0rc1-1-py3-none-any.whl", "1.0.0rc1"),
    ],
)
def test_the_release_is_named_by_the_wheels_version(tmp_path, name, version):
    """releases/<version> takes the version from the wheel's file name."""
    wheel = fake_wheel(tmp_path / name, version=version)

    assert version == upgrader.wheel_version(wheel)


def test_a_file_not_named_as_a_wheel_is_refused(tmp_path):
    """A source archive or a renamed file is refused before anything is done."""
    (tmp_path / "koprogo-node.tar.gz").touch()

    with pytest.raises(upgrader.UpgradeError, match="not a wheel file name"):
        upgrader.wheel_version(tmp_path / "koprogo-node.tar.gz")


def test_switching_replaces_the_link_and_pruning_keeps_two(tmp_path):
    """The link moves by rename; the current and the newest other release stay."""
    where = layout(tmp_path)
    for n, version in enumerate(("0.1.0", "0.2.0", "0.3.0", "0.4.0")):
        (where.releases / version).mkdir(parents=True)
        os.utime(where.releases / version, (1_000_000 + n, 1_000_000 + n))

    upgrader.switch(where, where.releases / "0.3.0")
    removed = upgrader.prune_releases(where)

    assert "releases/0.3.0" == os.readlink(where.link)
    assert {"0.1.0", "0.2.0"} == {p.name for p in removed}
    assert {"0.3.0", "0.4.0"} == {p.name for p in where.releases.iterdir()}


def test_upgrading_to_the_current_release_is_refused(tmp_path):
    """Reinstalling over the running release would pull it from under the daemon."""
    where = layout(tmp_path)
    (where.releases / "0.2.0" / "bin").mkdir(parents=True)
    (where.releases / "0.2.0" / "bin" / "koprogo-node").touch()
    upgrader.switch(where, where.releases / "0.2.0")
    wheel = fake_wheel(tmp_path / "koprogo_node-0.2.0-py3-none-any.whl")

    with pytest.raises(upgrader.UpgradeError, match="already the current one"):
        upgrader.upgrade(where, wheel, [])


def test_a_link_to_something_else_than_a_release_is_refused(tmp_path):
    """A venv link to a directory with no koprogo-node is not rolled back to."""
    where = layout(tmp_path)
    (where.releases / "0.2.0").mkdir(parents=True)
    upgrader.switch(where, where.releases / "0.2.0")

    with pytest.raises(upgrader.UpgradeError, match="not to a release"):
        upgrader.current_release(where)


def test_two_upgrades_never_interleave(tmp_path):
    """A second upgrade started meanwhile stops at the lock."""
    with upgrader._exclusive(tmp_path):
        with pytest.raises(upgrader.UpgradeError, match="another upgrade"):
            with upgrader._exclusive(tmp_path):
                pass


@pytest.mark.parametrize(
    "name, metadata, refusal",
    [
        ("koprogo_node-.-py3-none-any.whl", None, "not a release version"),
        ("koprogo_node-..-py3-none-any.whl", None, "not a release version"),
        ("click-8.5.1-py3-none-any.whl", ("click", "8.5.1"), "a wheel of click"),
        ("koprogo_node-0.9.0-py3-none-any.whl", ("koprogo-node", "0.1.0"), "holds"),
        ("koprogo_node-0.9.0-py3-none-any.whl", "not a zip", "not a readable wheel"),
    ],
)
def test_a_wheel_that_is_not_a_release_changes_nothing(
    tmp_path, name, metadata, refusal
):
    """Checked before anything is installed, stopped or removed."""
    where = layout(tmp_path)
    (where.releases / "0.1.0" / "bin").mkdir(parents=True)
    (where.releases / "0.1.0" / "bin" / "koprogo-node").touch()
    upgrader.switch(where, where.releases / "0.1.0")
    wheel = tmp_path / name
    if isinstance(metadata, tuple):
        fake_wheel(wheel, *metadata)
    else:
        wheel.write_text(metadata or "")

    with pytest.raises(upgrader.UpgradeError, match=refusal):
        upgrader.upgrade(where, wheel, [])

    assert ["0.1.0"] == [p.name for p in where.releases.iterdir()]
    assert "releases/0.1.0" == os.readlink(where.link)


def test_a_missing_wheelhouse_is_refused_before_anything_is_done(tmp_path):
    where = layout(tmp_path)
    wheel = fake_wheel(tmp_path / "koprogo_node-0.2.0-py3-none-any.whl")

    with pytest.raises(upgrader.UpgradeError, match="no such wheelhouse"):
        upgrader.upgrade(where, wheel, [tmp_path / "nowhere"])

    assert not where.releases.exists()
