"""The image's root filesystem, built for this machine's architecture, then
checked in place and booted twice with systemd-nspawn (systemd as PID 1, the
real units): first boot makes different secrets each time and the daemon
runs, hardened, under its unit.

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
journalctl -b --no-pager -o cat > $out/journal.txt
systemctl --failed --no-legend > $out/failed
chmod -R a+r $out
systemctl poweroff
"""


@pytest.fixture(scope="module")
def two_boots(tree, tmp_path_factory):
    """Boot two throwaway copies of the same tree; what each probe saw."""
    unit = tree / "etc/systemd/system/koprogo-probe.service"
    unit.write_text(
        "[Unit]\nAfter=multi-user.target koprogo-node.service\n"
        "[Service]\nType=oneshot\nExecStart=/usr/local/sbin/koprogo-probe\n"
        "[Install]\nWantedBy=multi-user.target\n"
    )
    probe = tree / "usr/local/sbin/koprogo-probe"
    probe.write_text(PROBE)
    probe.chmod(0o755)
    wants = tree / "etc/systemd/system/multi-user.target.wants"
    (wants / unit.name).symlink_to(f"/etc/systemd/system/{unit.name}")
    boot_config = tree / "boot/firmware/koprogo-node.toml"
    example = (tree / "boot/firmware/koprogo-node.toml.example").read_text()
    boot_config.write_text(example.replace("unnamed-building", "rue-haute-12"))
    seen = []
    for n in range(2):
        out = tmp_path_factory.mktemp(f"boot{n}")
        booted = subprocess.run(
            [
                "systemd-nspawn",
                "--quiet",
                "--register=no",
                "--keep-unit",
                "--ephemeral",
                f"--bind={out}:/probe",
                "--directory",
                str(tree),
                "--boot",
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert (out / "active").exists(), booted.stdout[-3000:] + booted.stderr
        seen.append(out)
    yield seen
    for path in (unit, probe, wants / unit.name, boot_config):
        path.unlink(missing_ok=True)


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
