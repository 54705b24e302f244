"""First-boot provisioning on directory trees laid out like the image."""

import os
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from koprogo_node.deploy.provision import Layout, _split_partition

from ..mqtt_broker import Broker

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


def key_pair(folder: Path, name: str = "id") -> tuple[str, str]:
    """A real ed25519 key pair: (public line, private file's text)."""
    path = folder / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(path)],
        check=True,
    )
    return path.with_suffix(".pub").read_text().strip(), path.read_text()


def authorized(layout: Layout) -> list[str]:
    path = layout.root / "home/technician/.ssh/authorized_keys"
    return path.read_text().splitlines() if path.exists() else []


def test_the_technicians_keys_from_the_boot_partition_open_ssh(tmp_path):
    layout = image_tree(tmp_path / "tree")
    laptop, _ = key_pair(tmp_path, "laptop")
    phone, _ = key_pair(tmp_path, "phone")
    # As a Windows editor may save it: a byte-order mark and CRLF line ends.
    layout.boot_keys.write_bytes(
        f"\ufeff# the installer's team\r\n{laptop}\r\n"
        f'  # restricted\r\nfrom="10.0.0.0/8" {phone}\r\n'.encode()
    )

    done = firstboot(layout.root)

    installed = layout.root / "home/technician/.ssh/authorized_keys"
    assert 0 == done.returncode, done.stderr
    assert [laptop, f'from="10.0.0.0/8" {phone}'] == authorized(layout)
    assert (0o600, 1000) == (installed.stat().st_mode & 0o777, installed.stat().st_uid)
    assert not layout.boot_keys.exists()


def test_keys_given_later_are_added_never_replacing(tmp_path):
    layout = image_tree(tmp_path / "tree")
    first, _ = key_pair(tmp_path, "first")
    second, _ = key_pair(tmp_path, "second")
    layout.boot_keys.write_text(first + "\n")
    assert 0 == firstboot(layout.root).returncode

    layout.boot_keys.write_text("# nobody\n")
    emptied = firstboot(layout.root, "--force")
    layout.boot_keys.write_text(f"{second}\n{first}\n")
    added = firstboot(layout.root, "--force")

    assert 1 == emptied.returncode and "holds no key" in emptied.stderr
    assert 0 == added.returncode, added.stderr
    assert [first, second] == authorized(layout)


@pytest.mark.parametrize(
    "content",
    ["private", "ssh-this is not a key", "ssh-ed25519 AAAAnotbase64!!"],
)
def test_what_is_not_a_public_key_is_refused_kept_and_not_shown(tmp_path, content):
    layout = image_tree(tmp_path / "tree")
    public, private = key_pair(tmp_path)
    text = private if content == "private" else f"{public}\n{content}\n"
    layout.boot_keys.write_text(text)

    done = firstboot(layout.root)

    assert 1 == done.returncode
    assert "not an SSH public key on line(s)" in done.stderr
    secret_lines = [line for line in private.splitlines() if "PRIVATE" not in line]
    assert not any(line[:12] in done.stderr for line in secret_lines)
    assert text == layout.boot_keys.read_text()
    assert [] == authorized(layout)


def test_keys_put_on_the_card_after_first_boot_let_the_team_back_in(tmp_path):
    layout = image_tree(tmp_path / "tree")
    assert 0 == firstboot(layout.root).returncode
    key, _ = key_pair(tmp_path)
    layout.boot_keys.write_text(key + "\n")

    plain = firstboot(layout.root)
    keys_only = firstboot(layout.root, "--keys-only")

    assert "already provisioned" in plain.stdout
    assert 0 == keys_only.returncode, keys_only.stderr
    assert [key] == authorized(layout)
    assert not layout.boot_keys.exists()


def test_the_daemon_logs_in_to_the_broker_even_after_a_refused_config(tmp_path):
    """A refused installer's file, fixed at the next boot, gets the password."""
    layout = image_tree(tmp_path / "tree")
    layout.boot_config.write_text('[node]\nbuilding_id = "Rue Haute 12"\n')
    assert 1 == firstboot(layout.root).returncode
    layout.boot_config.write_text(IMAGE_CONFIG.replace("unnamed-building", "rh-12"))

    fixed = firstboot(layout.root)

    assert 0 == fixed.returncode, fixed.stderr
    source = tomllib.loads(layout.config.read_text())["sources"][0]
    assert connects(layout.mqtt_passwords, "koprogo-node", source["password"])
    assert not connects(layout.mqtt_passwords, "koprogo-node", "a wrong one")


def connects(password_file: Path, user: str, password: str) -> bool:
    """Whether mosquitto, with this password file, admits `user`."""
    broker = Broker(password_file.parent)
    broker.config.write_text(
        f"listener {broker.port} 127.0.0.1\nallow_anonymous false\n"
        f"password_file {password_file}\nuser root\nlog_dest none\n"
    )
    broker.start()
    try:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        client.username_pw_set(user, password)
        client.connect("127.0.0.1", broker.port)
        client.loop_start()
        deadline = time.monotonic() + 5
        while not client.is_connected() and time.monotonic() < deadline:
            time.sleep(0.05)
        admitted = client.is_connected()
        client.loop_stop()
        client.disconnect()
        return admitted
    finally:
        broker.stop()


@pytest.mark.parametrize(
    "content, refusal",
    [
        ("", "is empty"),
        ("  \n", "is empty"),
        ("\x00\xff garbage", "not UTF-8 text"),
        ("[node\n", "not valid TOML"),
    ],
)
def test_an_unusable_boot_config_is_refused_and_kept(tmp_path, content, refusal):
    layout = image_tree(tmp_path)
    layout.boot_config.write_bytes(content.encode("latin-1"))

    done = firstboot(layout.root)

    assert 1 == done.returncode
    assert refusal in done.stderr
    assert "Traceback" not in done.stderr
    assert content.encode("latin-1") == layout.boot_config.read_bytes()
    assert IMAGE_CONFIG.splitlines()[1] in layout.config.read_text()


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
