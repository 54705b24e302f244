"""The image's root filesystem, built for this machine's architecture, then
checked in place and booted with systemd-nspawn (systemd as PID 1, the real
units): twice, to see first boot make different secrets each time and the
daemon run, hardened, under its unit; once more, to upgrade a node that holds
readings to a good release and then to one whose migration fails.

The Pi's own parts (arm64, raspi-firmware, the kernel, the SD-card layout)
cannot run here; image-build/README.md says how they are built and checked.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

PROJECT = Path(__file__).parents[2]
BUILD = PROJECT / "image-build" / "build"
SECRETS = (
    "node_key",
    "tls_key.pem",
    "ssh_host_ed25519_key",
    "koprogo-node.passwd",
    "satellite-mqtt.txt",
    "machine-id",
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="mmdebstrap and nspawn need root"),
]


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("image") / "rootfs"
    built = subprocess.run(
        [str(BUILD), "--rootfs", str(root)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert 0 == built.returncode, built.stdout[-3000:] + built.stderr[-3000:]
    yield root
    shutil.rmtree(root, ignore_errors=True)


def in_tree(tree: Path, *command: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["chroot", str(tree), *command], capture_output=True, text=True, timeout=120
    )


def test_the_node_is_installed_in_its_own_environment(tree):
    version = in_tree(tree, "/opt/koprogo-node/venv/bin/koprogo-node", "--version")
    link = os.readlink(tree / "opt/koprogo-node/venv")
    profiles = tree / "usr/share/koprogo-node/sensors/mqtt"

    assert 0 == version.returncode, version.stderr
    assert link.startswith("releases/")
    assert link.split("/")[1] in version.stdout
    assert any(profiles.glob("*.toml"))
    assert (tree / "usr/share/koprogo-node/models/manifest.json").exists()


def test_the_broker_and_ssh_are_installed_and_every_unit_enabled(tree):
    packages = in_tree(tree, "dpkg-query", "-W", "-f=${Status}\n", "mosquitto")
    units = (
        "koprogo-node.service",
        "koprogo-node-firstboot.service",
        "koprogo-node-backup.timer",
        "koprogo-node-keys.service",
        "mosquitto.service",
        "ssh.service",
    )
    enabled = subprocess.run(
        ["systemctl", "--root", str(tree), "is-enabled", *units],
        capture_output=True,
        text=True,
    )

    assert "install ok installed" == packages.stdout.strip()
    assert ["enabled"] * len(units) == enabled.stdout.split(), enabled.stderr


def test_the_image_carries_no_secret(tree):
    assert "" == (tree / "etc/machine-id").read_text()
    assert [] == list((tree / "etc/ssh").glob("ssh_host_*"))
    assert not (tree / "etc/mosquitto/koprogo-node.passwd").exists()
    assert not (tree / "var/lib/koprogo-node").exists()
    config = (tree / "etc/koprogo-node/node.toml").read_text()
    assert 'password = ""' in config


def test_journal_in_ram_and_tmp_off_the_card(tree):
    journald = (tree / "etc/systemd/journald.conf.d/koprogo-node.conf").read_text()
    fstab = (tree / "etc/fstab").read_text()

    assert "Storage=volatile" in journald
    assert any(line.startswith("tmpfs /tmp tmpfs") for line in fstab.splitlines())


# Runs inside the booted container once the daemon's unit has settled; copies
# what the test checks to /probe (a directory of the host's), then powers off.
PROBE = r"""#!/bin/sh
out=/probe
for i in $(seq 90); do
  state=$(systemctl show -P ActiveState koprogo-node.service)
  [ "$state" = active ] || [ "$state" = failed ] && break
  sleep 1
done
sleep 3
systemctl show koprogo-node.service -P ActiveState > $out/active
systemctl show koprogo-node.service -P NRestarts > $out/restarts
systemctl is-active koprogo-node-firstboot.service > $out/firstboot
hostname > $out/hostname
runuser -u technician -- koprogo-node status --json \
  > $out/status.json 2> $out/status.err
cp /var/lib/koprogo-node/node_key /var/lib/koprogo-node/tls/tls_key.pem \
   /etc/ssh/ssh_host_ed25519_key /etc/mosquitto/koprogo-node.passwd \
   /etc/koprogo-node/satellite-mqtt.txt /etc/machine-id \
   /run/koprogo-node/setup-code.issue $out/
/opt/koprogo-node/venv/bin/python - > $out/mqtt.txt 2>&1 <<'PY'
import paho.mqtt.client as mqtt
secret = dict(line.split() for line in open("/etc/koprogo-node/satellite-mqtt.txt"))
for user, password in ((None, None), ("satellite", secret["password"])):
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    if user:
        client.username_pw_set(user, password)
    try:
        client.connect("127.0.0.1", 1883)
        client.loop_start()
        import time; time.sleep(1)
        print(user or "anonymous", client.is_connected())
        client.loop_stop()
    except OSError as exc:
        print(user or "anonymous", "error", exc)
PY
systemctl --failed --no-legend > $out/failed
journalctl -b --no-pager -o cat > $out/journal.txt
chmod -R a+r $out
systemctl poweroff
"""


def boot(tree: Path, probe: str, out: Path, *binds: str) -> None:
    """Boot a throwaway copy of `tree`; `probe` runs once the daemon settled."""
    script = tree / "usr/local/sbin/koprogo-probe"
    script.write_text(probe)
    script.chmod(0o755)
    booted = subprocess.run(
        [
            "systemd-nspawn",
            "--quiet",
            "--register=no",
            "--keep-unit",
            "--ephemeral",
            f"--bind={out}:/probe",
            *(f"--bind-ro={bind}" for bind in binds),
            "--directory",
            str(tree),
            "--boot",
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert (out / "journal.txt").exists(), booted.stdout[-3000:] + booted.stderr


@pytest.fixture(scope="module")
def probed(tree):
    """The tree with a unit that runs /usr/local/sbin/koprogo-probe at boot."""
    unit = tree / "etc/systemd/system/koprogo-probe.service"
    unit.write_text(
        "[Unit]\nAfter=multi-user.target koprogo-node.service\n"
        "[Service]\nType=oneshot\nExecStart=/usr/local/sbin/koprogo-probe\n"
        "TimeoutStartSec=10min\n"
        "[Install]\nWantedBy=multi-user.target\n"
    )
    wants = tree / "etc/systemd/system/multi-user.target.wants"
    (wants / unit.name).symlink_to(f"/etc/systemd/system/{unit.name}")
    yield tree
    for path in (unit, wants / unit.name, tree / "usr/local/sbin/koprogo-probe"):
        path.unlink(missing_ok=True)


def installers_config(tree: Path, extra: str = "") -> Path:
    """The example configuration, for building rue-haute-12, on the boot card."""
    example = (tree / "boot/firmware/koprogo-node.toml.example").read_text()
    path = tree / "boot/firmware/koprogo-node.toml"
    path.write_text(example.replace("unnamed-building", "rue-haute-12") + extra)
    return path


@pytest.fixture(scope="module")
def two_boots(probed, tmp_path_factory):
    """What the probe saw on two nodes booted from the same tree."""
    seen = []
    for n in range(2):
        out = tmp_path_factory.mktemp(f"boot{n}")
        config = installers_config(probed)
        boot(probed, PROBE, out)
        config.unlink()
        seen.append(out)
    return seen


def test_first_boot_makes_different_secrets_on_each_node(two_boots):
    first, second = two_boots

    for secret in SECRETS:
        a, b = (first / secret).read_bytes(), (second / secret).read_bytes()
        assert a.strip() and b.strip(), f"{secret} is empty"
        assert a != b, f"{secret} is the same on two nodes"


def test_the_daemon_runs_under_its_unit_after_first_boot(two_boots):
    for seen in two_boots:
        journal = (seen / "journal.txt").read_text()
        status = json.loads((seen / "status.json").read_text())

        assert "active" == (seen / "active").read_text().strip(), journal[-4000:]
        assert "0" == (seen / "restarts").read_text().strip()
        assert "active" == (seen / "firstboot").read_text().strip()
        assert "rue-haute-12" == (seen / "hostname").read_text().strip()
        assert status["daemon"]["running"] is True, (seen / "status.err").read_text()
        assert "" == (seen / "failed").read_text().strip(), journal[-4000:]


def test_the_broker_refuses_anonymous_clients_and_admits_satellites(two_boots):
    for seen in two_boots:
        results = (seen / "mqtt.txt").read_text().splitlines()

        assert ["anonymous False", "satellite True"] == results


def test_the_console_shows_the_setup_code(two_boots):
    for seen in two_boots:
        issue = (seen / "setup-code.issue").read_text()
        journal = (seen / "journal.txt").read_text()

        code = issue.split("setup code ")[1].split()[0]
        assert f"One-time setup code: {code}" in journal


# A simulated building, so that the ledger holds blocks when the upgrade runs,
# committed every 2 s rather than every 30.
SIMULATED = """
[ledger]
batch_ms = 2000

[[sources]]
type = "simulated"
name = "sim"
lots = 10
speed = 600.0
emit = "readings"
"""

UPGRADE_PROBE = r"""#!/bin/sh
out=/probe
state() { systemctl show -P ActiveState koprogo-node.service; }
height() {
  runuser -u technician -- koprogo-node status --json 2>/dev/null |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["ledger"]["height"])'
}
for i in $(seq 120); do
  [ "$(state)" = active ] && [ "$(height)" -ge 3 ] 2>/dev/null && break
  sleep 1
done
height > $out/height.before
for release in good bad; do
  [ $release = good ] && version=0.2.0 || version=0.3.0
  koprogo-node-upgrade /wheels/koprogo_node-$version-py3-none-any.whl \
    --health-timeout 30 \
    > $out/$release.out 2>&1
  echo $? > $out/$release.rc
  readlink /opt/koprogo-node/venv > $out/$release.link
  state > $out/$release.active
done
sleep 5
height > $out/height.after
runuser -u technician -- koprogo-node ledger verify > $out/verify.out 2>&1
echo $? > $out/verify.rc
ls /var/lib/koprogo-node/backups > $out/backups
journalctl -b --no-pager -o cat > $out/journal.txt
chmod -R a+r $out
systemctl poweroff
"""


@pytest.fixture(scope="module")
def upgraded(probed, tmp_path_factory):
    """One node upgraded to a good release, then to one whose migration fails."""
    from ..ledger.releases import CHECKOUT, build_wheel, future_tree
    from .test_upgrade import FAILING_MIGRATION, GOOD_MIGRATION

    root = tmp_path_factory.mktemp("releases")
    wheels = root / "wheels"
    wheels.mkdir()
    for name, version, migration in (
        ("good", "0.2.0", GOOD_MIGRATION),
        # After 0.2.0's migration, so that its own has something to do.
        ("bad", "0.3.0", GOOD_MIGRATION + FAILING_MIGRATION),
    ):
        build_wheel(future_tree(root / name, migration), version, wheels)
    out = tmp_path_factory.mktemp("upgrade")
    config = installers_config(probed, SIMULATED)
    boot(probed, UPGRADE_PROBE, out, f"{wheels}:/wheels")
    config.unlink()
    assert CHECKOUT.exists()
    return out


def test_an_upgrade_under_systemd_switches_release_and_keeps_the_ledger(upgraded):
    journal = (upgraded / "journal.txt").read_text()

    assert "0" == (upgraded / "good.rc").read_text().strip(), (
        upgraded / "good.out"
    ).read_text() + journal[-3000:]
    assert "releases/0.2.0" == (upgraded / "good.link").read_text().strip()
    assert "active" == (upgraded / "good.active").read_text().strip()
    assert "ledger_migration_backup" in journal


def test_a_failed_upgrade_under_systemd_rolls_back_with_nothing_lost(upgraded):
    before = int((upgraded / "height.before").read_text())
    after = int((upgraded / "height.after").read_text())

    assert "1" == (upgraded / "bad.rc").read_text().strip(), (
        upgraded / "bad.out"
    ).read_text()
    assert "releases/0.2.0" == (upgraded / "bad.link").read_text().strip()
    assert "active" == (upgraded / "bad.active").read_text().strip()
    assert after > before >= 3
    assert "0" == (upgraded / "verify.rc").read_text().strip(), (
        upgraded / "verify.out"
    ).read_text()
