"""First boot of a node installed from the Pi image.

`koprogo-node-firstboot.service` runs this once, as root, before the broker,
the SSH server and the daemon. The image holds no secret: everything that
must differ between two buildings is made here, on the node, from the
kernel's random source: the node's signing key and TLS key, the broker's
passwords and the SSH host keys (systemd makes /etc/machine-id, which the
image leaves empty). The daemon then makes the dashboard's one-time setup
code and shows it on the console.

Every path is taken under `root`, so the tests provision a directory tree.
A step that fails is reported and the stamp is not written: the unit runs
again at the next boot and redoes only what is missing.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import subprocess
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

import click
import structlog
import tomli_w

from .. import config as node_config
from ..errors import ConfigError, KoprogoError
from ..federation.identity import NodeKey
from ..federation.tls import ensure_certificate

log = structlog.get_logger("koprogo_node.provision")

NODE_USER = "koprogo"
TECHNICIAN = "technician"
MQTT_NODE_USER = "koprogo-node"
MQTT_SATELLITE_USER = "satellite"


@dataclass(frozen=True)
class Layout:
    """Where an installed node keeps each file, under `root`."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "etc/koprogo-node/node.toml"

    @property
    def boot_config(self) -> Path:
        """What the installer wrote on the SD card's FAT partition."""
        return self.root / "boot/firmware/koprogo-node.toml"

    @property
    def boot_keys(self) -> Path:
        """The technicians' SSH public keys, also left by the installer."""
        return self.root / "boot/firmware/koprogo-authorized_keys"

    @property
    def data_dir(self) -> Path:
        return self.root / "var/lib/koprogo-node"

    @property
    def mqtt_passwords(self) -> Path:
        return self.root / "etc/mosquitto/koprogo-node.passwd"

    @property
    def satellite_credentials(self) -> Path:
        return self.root / "etc/koprogo-node/satellite-mqtt.txt"

    @property
    def node_mqtt_password(self) -> Path:
        """The daemon's broker password, kept for each config installed later."""
        return self.root / "etc/koprogo-node/node-mqtt.txt"

    @property
    def stamp(self) -> Path:
        return self.data_dir / "provisioned.json"


class StepFailed(Exception):
    """One provisioning step could not be done; the message says why."""


def provision(layout: Layout, live: bool) -> dict[str, str]:
    """Run every step; return what each did. Raises StepFailed at the end."""
    steps = {
        "config": adopt_boot_config,
        "hostname": lambda lay: set_hostname(lay, live),
        "identity": make_identity,
        "mqtt": make_mqtt_users,
        "ssh": make_ssh_host_keys,
        "technicians": authorize_technicians,
        "filesystem": lambda lay: grow_root_filesystem(live),
    }
    done, failed = {}, []
    for name, step in steps.items():
        try:
            done[name] = step(layout)
            log.info("provision_step_done", step=name, result=done[name])
        # ValueError: a damaged key or TOML file another step left behind.
        except (StepFailed, KoprogoError, OSError, ValueError) as exc:
            done[name] = f"failed: {exc}"
            failed.append(name)
            log.error("provision_step_failed", step=name, error=str(exc))
    if failed:
        raise StepFailed(f"steps failed: {', '.join(failed)}", done)
    stamp = {"provisioned_at": int(time.time()), "steps": done}
    layout.stamp.write_text(json.dumps(stamp, indent=1) + "\n")
    return done


def adopt_boot_config(layout: Layout) -> str:
    """Install the configuration the installer left on the boot partition.

    The file may hold passwords and the FAT partition has no permissions,
    so it is removed once installed. An invalid file is left where it is,
    and the image's configuration is kept.
    """
    given = layout.boot_config
    if not given.exists():
        return f"kept {layout.config.name} (no {given.name} on the boot partition)"
    text = _read_installer_file(given)
    if not text.strip():
        raise StepFailed(f"{given} is empty, not installed")
    try:
        node_config.parse(text)
    except ConfigError as exc:
        raise StepFailed(f"{given} is not valid, not installed: {exc}") from exc
    _write(layout.config, text, mode=0o640, group=_id(layout, "group", NODE_USER))
    given.unlink()
    return f"installed {given.name} and removed it from the boot partition"


def _read_installer_file(path: Path, limit: int = 1 << 20) -> str:
    """A text file from the FAT partition, as any computer may have saved it."""
    try:
        if path.stat().st_size > limit:
            raise StepFailed(f"{path} is larger than {limit // 1024} KiB")
        data = path.read_bytes()
    except IsADirectoryError as exc:
        raise StepFailed(f"{path} is a directory, not a file") from exc
    except OSError as exc:
        raise StepFailed(f"cannot read {path}: {exc.strerror}") from exc
    try:
        # Windows editors may start the file with a byte-order mark.
        return data.decode("utf-8-sig").replace("\r\n", "\n")
    except UnicodeDecodeError as exc:
        raise StepFailed(f"{path} is not UTF-8 text (at byte {exc.start})") from exc


def set_hostname(layout: Layout, live: bool) -> str:
    """Name the machine after the building (the id is a valid host label)."""
    name = node_config.load(layout.config).node.building_id
    _write(layout.root / "etc/hostname", name + "\n", mode=0o644)
    hosts = layout.root / "etc/hosts"
    lines = hosts.read_text().splitlines() if hosts.exists() else []
    lines = [line for line in lines if not line.startswith("127.0.1.1")]
    _write(hosts, "\n".join([*lines, f"127.0.1.1\t{name}"]) + "\n", mode=0o644)
    # Outside a chroot only: a chroot shares the host's kernel host name.
    if live and not _in_chroot():
        _run(["hostname", name])
    return name


def make_identity(layout: Layout) -> str:
    """The node's Ed25519 signing key and its TLS key and certificate."""
    data_dir = layout.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    key = NodeKey.load_or_create(data_dir)
    tls = ensure_certificate(data_dir / "tls")
    owner = (_id(layout, "passwd", NODE_USER), _id(layout, "group", NODE_USER))
    for path in (data_dir, data_dir / "tls", *data_dir.rglob("*")):
        _chown(path, *owner)
    return f"peer {key.peer_id}, tls {tls.cert_sha256.hex()[:16]}"


def make_mqtt_users(layout: Layout) -> str:
    """Broker accounts for the daemon and for satellites, with new passwords.

    The daemon's password goes into its configuration (an MQTT source whose
    user is `koprogo-node` and whose password is empty), at every run: a
    configuration installed after the accounts were made gets it too. It is
    kept in a root-only file, as the satellites' is for the installer.
    """
    target = layout.mqtt_passwords
    kept = layout.node_mqtt_password
    made = (target, layout.satellite_credentials, kept)
    if all(path.exists() for path in made):
        password = kept.read_text(encoding="ascii").strip()
        filled = _fill_node_password(layout, password)
        return f"kept the accounts; node sources given the password: {filled}"
    passwords = {
        MQTT_NODE_USER: secrets.token_urlsafe(24),
        MQTT_SATELLITE_USER: secrets.token_urlsafe(24),
    }
    tool = shutil.which("mosquitto_passwd")
    if tool is None:
        raise StepFailed("mosquitto_passwd is not installed (package mosquitto)")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    target.touch(mode=0o600)
    for user, password in passwords.items():
        _run([tool, "-b", str(target), user, password])
    target.chmod(0o640)
    _chown(target, 0, _id(layout, "group", "mosquitto"))
    _write(
        layout.satellite_credentials,
        f"user {MQTT_SATELLITE_USER}\npassword {passwords[MQTT_SATELLITE_USER]}\n",
        mode=0o600,
    )
    _write(kept, passwords[MQTT_NODE_USER] + "\n", mode=0o600)
    filled = _fill_node_password(layout, passwords[MQTT_NODE_USER])
    return f"users {', '.join(passwords)}; node sources given the password: {filled}"


def make_ssh_host_keys(layout: Layout) -> str:
    """The SSH server's host keys, which the image leaves out."""
    if not (layout.root / "etc/ssh").is_dir():
        return "skipped: no SSH server"
    tool = shutil.which("ssh-keygen")
    if tool is None:
        raise StepFailed("ssh-keygen is not installed (package openssh-client)")
    _run([tool, "-A", "-f", str(layout.root)])
    made = sorted(p.name for p in (layout.root / "etc/ssh").glob("ssh_host_*_key"))
    return ", ".join(made)


def authorize_technicians(layout: Layout) -> str:
    """Let the keys the installer left on the boot partition log in over SSH.

    The image's `technician` account has no password, and neither has root:
    without keys nobody logs in, on the console or over SSH. Keys are added
    to those already there, never replacing them, so a mistaken file cannot
    lock the technicians out.
    """
    given = layout.boot_keys
    if not given.exists():
        return f"no {given.name} on the boot partition"
    keys = _public_keys(given, _read_installer_file(given, limit=64 * 1024))
    uid, gid = _id(layout, "passwd", TECHNICIAN), _id(layout, "group", TECHNICIAN)
    ssh_dir = layout.root / "home" / TECHNICIAN / ".ssh"
    ssh_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    _chown(ssh_dir, uid, gid)
    target = ssh_dir / "authorized_keys"
    present = target.read_text().splitlines() if target.exists() else []
    added = [key for key in keys if key not in present]
    _write(target, "".join(f"{key}\n" for key in [*present, *added]), mode=0o600)
    _chown(target, uid, gid)
    given.unlink()
    return f"{len(added)} key(s) added for {TECHNICIAN} ({len(keys)} in the file)"


KEY_TYPES = ("ssh-ed25519", "ssh-rsa", "ecdsa-sha2-", "sk-ssh-ed25519", "sk-ecdsa-")


def _public_keys(path: Path, text: str) -> list[str]:
    """The authorized_keys lines of `text`; refuses anything else by line number.

    A line may start with options (from="10.0.0.0/8" ...). Its key must be
    base64 whose first field repeats the key type, as every OpenSSH key's
    does. Nothing of a refused line is repeated: it may be a private key.
    """
    keys, bad = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if _is_public_key(line):
            keys.append(line)
        else:
            bad.append(str(number))
    if bad:
        raise StepFailed(f"{path}: not an SSH public key on line(s) {', '.join(bad)}")
    if not keys:
        raise StepFailed(f"{path} holds no key; kept, nothing changed")
    return keys


def _is_public_key(line: str) -> bool:
    words = line.split()
    for i, word in enumerate(words[:-1]):
        if word.startswith(KEY_TYPES):
            try:
                blob = base64.b64decode(words[i + 1], validate=True)
            except ValueError:
                return False
            size = int.from_bytes(blob[:4], "big")
            return blob[4 : 4 + size] == word.encode()
    return False


def grow_root_filesystem(live: bool) -> str:
    """Let the root partition and its filesystem fill the SD card."""
    if not live or _in_chroot():
        return "skipped: not the running system"
    source = _run(["findmnt", "-n", "-o", "SOURCE", "/"]).strip()
    disk, number = _split_partition(source)
    if disk is None:
        return f"skipped: root is {source or 'unknown'}, not a disk partition"
    grown = subprocess.run(
        ["growpart", disk, number], capture_output=True, text=True, check=False
    )
    # growpart exits 1 with NOCHANGE when the partition already fills the disk.
    if grown.returncode not in (0, 1) or (
        grown.returncode == 1 and "NOCHANGE" not in grown.stdout
    ):
        raise StepFailed(f"growpart {disk} {number}: {grown.stderr.strip()}")
    _run(["resize2fs", source])
    return f"{source} fills {disk}"


def _split_partition(source: str) -> tuple[str | None, str]:
    """/dev/mmcblk0p2 -> (/dev/mmcblk0, 2); /dev/sda2 -> (/dev/sda, 2)."""
    stem = source.rstrip("0123456789")
    number = source[len(stem) :]
    if not source.startswith("/dev/") or not number:
        return None, ""
    if stem.endswith("p") and stem[-2].isdigit():  # mmcblk0p2, nvme0n1p2
        stem = stem[:-1]
    return stem, number


def _fill_node_password(layout: Layout, password: str) -> int:
    data = tomllib.loads(layout.config.read_text(encoding="utf-8"))
    filled = 0
    for source in data.get("sources", []):
        wanted = source.get("type") == "mqtt" and not source.get("password")
        if wanted and source.get("username") == MQTT_NODE_USER:
            source["password"] = password
            filled += 1
    if filled:
        text = tomli_w.dumps(data)
        group = _id(layout, "group", NODE_USER)
        _write(layout.config, text, mode=0o640, group=group)
    return filled


def _write(path: Path, text: str, mode: int, group: int = 0) -> None:
    """Replace `path` atomically, with its mode set before it appears."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(text)
        file.flush()
        os.fsync(file.fileno())
    os.chmod(tmp, mode)
    _chown(tmp, 0, group)
    os.replace(tmp, path)


def _id(layout: Layout, table: str, name: str) -> int:
    """A user's or group's number from the tree's own /etc/passwd or /etc/group."""
    path = layout.root / "etc" / table
    if not path.exists():
        raise StepFailed(f"{path} does not exist: is {layout.root} a system's root?")
    for line in path.read_text().splitlines():
        fields = line.split(":")
        if fields[0] == name and len(fields) > 2:
            return int(fields[2])
    raise StepFailed(f"no {name!r} in {path}")


def _chown(path: Path, uid: int, gid: int) -> None:
    if os.geteuid() == 0:
        os.chown(path, uid, gid, follow_symlinks=False)


def _in_chroot() -> bool:
    try:
        init_root, here = os.stat("/proc/1/root/."), os.stat("/")
    except OSError:  # /proc/1/root is readable by root only
        return False
    return (init_root.st_dev, init_root.st_ino) != (here.st_dev, here.st_ino)


def _run(command: list[str]) -> str:
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, check=False, timeout=120
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise StepFailed(f"{command[0]}: {exc}") from exc
    if done.returncode != 0:
        raise StepFailed(f"{' '.join(command[:2])}: {done.stderr.strip()}")
    return done.stdout


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("/"),
    show_default=True,
    help="Provision the system installed under this directory.",
)
@click.option("--force", is_flag=True, help="Run even if already provisioned.")
@click.option(
    "--keys-only",
    is_flag=True,
    help="Only add the technicians' SSH keys from the boot partition (any boot).",
)
def main(root: Path, force: bool, keys_only: bool) -> None:
    """Give this node its own keys, passwords and host name (first boot).

    \b
    Examples:
      koprogo-node-firstboot                 # what the first-boot unit runs
      koprogo-node-firstboot --root /mnt/sd  # a card mounted on another machine
      koprogo-node-firstboot --keys-only     # what koprogo-node-keys runs
    """
    from ..logs import configure

    configure("info", "auto")
    layout = Layout(root)
    if os.geteuid() != 0:
        raise click.ClickException("provisioning must run as root")
    if keys_only:
        _add_keys(layout)
        return
    if layout.stamp.exists() and not force:
        click.echo(f"already provisioned ({layout.stamp}); --force to redo")
        return
    try:
        done = provision(layout, live=root == Path("/"))
    except StepFailed as exc:
        for name, result in exc.args[1].items():
            click.echo(f"  {name}: {result}", err=True)
        raise click.ClickException(f"{exc.args[0]}; will retry at the next boot")
    for name, result in done.items():
        click.echo(f"{name}: {result}")


def _add_keys(layout: Layout) -> None:
    """Keys put on the card after first boot: how a locked-out team gets in."""
    try:
        click.echo(f"technicians: {authorize_technicians(layout)}")
    except (StepFailed, KoprogoError, OSError) as exc:
        log.error("provision_step_failed", step="technicians", error=str(exc))
        raise click.ClickException(str(exc)) from exc
