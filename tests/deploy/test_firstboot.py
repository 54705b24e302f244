"""First-boot provisioning on directory trees laid out like the image."""

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from koprogo_node.deploy.provision import Layout, _split_partition

FIRSTBOOT = Path(sys.executable).parent / "koprogo-node-firstboot"
IMAGE_CONFIG = """\
[node]
building_id = "unnamed-building"

[[sources]]
type = "mqtt"
name = "satellites"
username = "koprogo-node"
password = ""

[[sources.subscriptions]]
profile = "esphome"
topic = "+/sensor/+/state"
"""
SECRETS = (
    "var/lib/koprogo-node/node_key",
    "var/lib/koprogo-node/tls/tls_key.pem",
    "etc/ssh/ssh_host_ed25519_key",
    "etc/mosquitto/koprogo-node.passwd",
    "etc/koprogo-node/satellite-mqtt.txt",
)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="provisioning runs as root")


def image_tree(root: Path) -> Layout:
    """What the image holds before its first boot: users, a config, no secret."""
    (root / "etc/koprogo-node").mkdir(parents=True)
    (root / "etc/ssh").mkdir()
    (root / "boot/firmware").mkdir(parents=True)
    (root / "etc/passwd").write_text(
        "root:x:0:0::/root:/bin/sh\nkoprogo:x:990:990::/nonexistent:/bin/false\n"
        "technician:x:1000:1000::/home/technician:/bin/bash\n"
    )
    (root / "etc/group").write_text(
        "root:x:0:\nkoprogo:x:990:\nmosquitto:x:991:\ntechnician:x:1000:\n"
    )
    (root / "etc/hosts").write_text("127.0.0.1\tlocalhost\n127.0.1.1\tdebian\n")
    (root / "etc/koprogo-node/node.toml").write_text(IMAGE_CONFIG)
    return Layout(root)


def firstboot(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(FIRSTBOOT), "--root", str(root), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_two_nodes_from_one_image_share_no_secret(tmp_path):
    first, second = image_tree(tmp_path / "a").root, image_tree(tmp_path / "b").root

    runs = [firstboot(first), firstboot(second)]

    assert [0, 0] == [run.returncode for run in runs], runs[0].stderr + runs[1].stderr
    for secret in SECRETS:
        a, b = (first / secret).read_bytes(), (second / secret).read_bytes()
        assert a and b, secret
        assert a != b, f"{secret} is the same on two nodes"


def test_secrets_are_private_and_owned_by_who_uses_them(tmp_path):
    layout = image_tree(tmp_path)

    assert 0 == firstboot(layout.root).returncode

    key = (layout.data_dir / "node_key").stat()
    assert (0o600, 990) == (key.st_mode & 0o777, key.st_uid)
    passwords = layout.mqtt_passwords.stat()
    assert (0o640, 0, 991) == (
        passwords.st_mode & 0o777,
        passwords.st_uid,
        passwords.st_gid,
    )
    assert 0o600 == layout.satellite_credentials.stat().st_mode & 0o777
    assert 0o640 == layout.config.stat().st_mode & 0o777


def test_the_daemon_is_given_the_broker_password_mosquitto_checks(tmp_path):
    layout = image_tree(tmp_path)

    assert 0 == firstboot(layout.root).returncode

    source = tomllib.loads(layout.config.read_text())["sources"][0]
    assert len(source["password"]) >= 32
    users = [line.split(":")[0] for line in layout.mqtt_passwords.read_text().split()]
    assert ["koprogo-node", "satellite"] == users
    hashed = layout.mqtt_passwords.read_text()
    assert source["password"] not in hashed  # stored hashed, not in clear


def test_the_installers_config_on_the_boot_partition_is_installed_then_removed(
    tmp_path,
):
    layout = image_tree(tmp_path)
    layout.boot_config.write_text(
        IMAGE_CONFIG.replace("unnamed-building", "rue-haute-12")
    )

    done = firstboot(layout.root)

    assert 0 == done.returncode, done.stderr
    assert not layout.boot_config.exists()
    assert 'building_id = "rue-haute-12"' in layout.config.read_text()
    assert "rue-haute-12\n" == (layout.root / "etc/hostname").read_text()
    hosts = (layout.root / "etc/hosts").read_text().splitlines()
    assert ["127.0.0.1\tlocalhost", "127.0.1.1\true-haute-12"] == hosts


def test_an_invalid_boot_config_is_kept_reported_and_retried(tmp_path):
    layout = image_tree(tmp_path)
    layout.boot_config.write_text('[node]\nbuilding_id = "Rue Haute!"\n')

    failed = firstboot(layout.root)

    assert 1 == failed.returncode
    assert "koprogo-node.toml is not valid" in failed.stderr
    assert "will retry at the next boot" in failed.stderr
    assert "Traceback" not in failed.stderr
    assert layout.boot_config.exists()  # the installer's file is not lost
    assert not layout.stamp.exists()  # so the unit runs again
    assert "unnamed-building" in layout.config.read_text()

    layout.boot_config.write_text(IMAGE_CONFIG.replace("unnamed-building", "b-7"))
    key_before = (layout.data_dir / "node_key").read_bytes()
    again = firstboot(layout.root)

    assert 0 == again.returncode, again.stderr
    assert layout.stamp.exists()
    assert key_before == (layout.data_dir / "node_key").read_bytes()


def test_a_provisioned_node_keeps_its_keys(tmp_path):
    layout = image_tree(tmp_path)
    assert 0 == firstboot(layout.root).returncode
    before = {s: (layout.root / s).read_bytes() for s in SECRETS}

    skipped = firstboot(layout.root)
    forced = firstboot(layout.root, "--force")

    assert "already provisioned" in skipped.stdout
    assert 0 == forced.returncode, forced.stderr
    assert before == {s: (layout.root / s).read_bytes() for s in SECRETS}


def test_the_technicians_keys_from_the_boot_partition_open_ssh(tmp_path):
    layout = image_tree(tmp_path)
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHf1JpQy technician@laptop"
    layout.boot_keys.write_text(f"# the installer's team\n{key}\n")

    done = firstboot(layout.root)

    installed = layout.root / "home/technician/.ssh/authorized_keys"
    assert 0 == done.returncode, done.stderr
    assert key + "\n" == installed.read_text()
    assert (0o600, 1000) == (installed.stat().st_mode & 0o777, installed.stat().st_uid)
    assert not layout.boot_keys.exists()


def test_a_file_that_holds_no_ssh_key_is_refused_and_kept(tmp_path):
    layout = image_tree(tmp_path)
    layout.boot_keys.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")

    done = firstboot(layout.root)

    assert 1 == done.returncode
    assert "not SSH public keys" in done.stderr
    assert layout.boot_keys.exists()
    assert not (layout.root / "home/technician/.ssh/authorized_keys").exists()


@pytest.mark.parametrize(
    "source, expected",
    [
        ("/dev/mmcblk0p2", ("/dev/mmcblk0", "2")),
        ("/dev/sda2", ("/dev/sda", "2")),
        ("/dev/nvme0n1p3", ("/dev/nvme0n1", "3")),
        ("overlay", (None, "")),
        ("/dev/vda", (None, "")),
    ],
)
def test_the_root_partition_is_found_from_its_device(source, expected):
    assert expected == _split_partition(source)


def test_a_damaged_tls_key_is_reported_not_a_traceback(tmp_path):
    layout = image_tree(tmp_path)
    tls = layout.data_dir / "tls"
    tls.mkdir(parents=True)
    (tls / "tls_key.pem").write_text("not a key\n")

    done = firstboot(layout.root)

    assert 1 == done.returncode
    assert "identity: failed" in done.stderr
    assert "Traceback" not in done.stderr
    assert (tls / "tls_key.pem").read_text() == "not a key\n"  # evidence kept
