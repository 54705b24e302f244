"""`koprogo-node keys show|rotate`: the node's identity on the federation."""

from __future__ import annotations

import shlex

import click

from ..federation.identity import KEY_FILE, NodeKey
from ..ledger.lock import holder_pid
from .common import Context, data_dir_options, fail, print_json


@click.group()
def keys() -> None:
    """The node's federation key."""


@keys.command("show")
@data_dir_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def show(obj: Context, config_path, data_dir, as_json: bool) -> None:
    """Print the node's peer id and public key (never the private key).

    \b
    Example:
      koprogo-node keys show --json
    """
    obj.override(config_path, data_dir)
    path = obj.data_dir() / KEY_FILE
    if not path.exists():
        fail(f"no node key at {path}: the daemon makes it at its first start", 3)
    key = NodeKey.load_or_create(obj.data_dir())
    info = {
        "peer_id": key.peer_id,
        "public_key": key.public_key.hex(),
        "key_file": str(path),
    }
    if as_json:
        print_json(info)
        return
    for name, value in info.items():
        click.echo(f"{name:<11} {value}")


@keys.command("rotate")
@data_dir_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def rotate(obj: Context, config_path, data_dir, as_json: bool) -> None:
    """Give the node a new key, keeping the old key file aside.

    Refused while the daemon runs (it holds the key in memory). Afterwards
    the federation must admit the new peer id before the node is heard again.

    \b
    Example:
      sudo systemctl stop koprogo-node
      koprogo-node keys rotate --data-dir /var/lib/koprogo-node
    """
    from .key_rotation import rotate_node_key

    obj.override(config_path, data_dir)
    folder = obj.data_dir()
    pid = holder_pid(folder)
    if pid is not None:
        fail(
            f"a koprogo-node daemon (pid {pid}) runs on {folder} and holds the key"
            " in memory; stop it first (systemctl stop koprogo-node)",
            3,
        )
    if not (folder / KEY_FILE).exists():
        fail(f"no node key at {folder / KEY_FILE}: nothing to rotate", 3)
    done = rotate_node_key(folder)
    steps = _follow_up(obj, done.old_peer_id, done.new_peer_id)
    info = {
        "old_peer_id": done.old_peer_id,
        "new_peer_id": done.new_peer_id,
        "key_file": str(done.key_file),
        "old_key_file": str(done.retired_file),
        "next_steps": steps,
    }
    if as_json:
        print_json(info)
        return
    for name in ("old_peer_id", "new_peer_id", "key_file", "old_key_file"):
        click.echo(f"{name:<12} {info[name]}")
    click.echo("\nnext steps:")
    for number, step in enumerate(steps, start=1):
        click.echo(f"  {number}. {step}")


def _follow_up(obj: Context, old_peer: str, new_peer: str) -> list[str]:
    """What the operator must do so that the federation accepts the new key."""
    building = "BUILDING"
    roster = "roster.cbor"
    if obj.config_path() is not None:
        cfg = obj.config()
        building = cfg.node.name or cfg.node.building_id
        roster = cfg.federation.roster
    return [
        "where the federation key is kept, admit the new key: koprogo-node"
        f" federation admit {new_peer} --name {shlex.quote(building)} --dir FOLDER",
        f"copy the new FOLDER/roster.cbor to {obj.data_dir() / roster}"
        " (it spreads to the other nodes from there)",
        "start the daemon: systemctl start koprogo-node",
        "once the node is heard again, revoke the old key: koprogo-node"
        f" federation revoke {old_peer} --dir FOLDER",
    ]
