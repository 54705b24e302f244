"""`koprogo-node federation init|admit|revoke|roster`: the cooperative's tools.

These run where the federation key is kept (not on building nodes): they make
the key, and sign each new roster that admits or revokes a node.
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from ..errors import ConfigError
from ..federation import roster
from ..federation.identity import NodeKey, peer_id
from .common import fail, iso, print_json

FEDERATION_KEY = "federation_key"
ROSTER_FILE = "roster.cbor"

dir_option = click.option(
    "--dir",
    "folder",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder holding the federation key and the roster.",
)


@click.group()
def federation() -> None:
    """Federation key and roster (for the cooperative running the network)."""


@federation.command("init")
@dir_option
def init(folder: Path) -> None:
    """Make the federation key (mode 0600) and an empty signed roster.

    \b
    Example:
      koprogo-node federation init --dir /secure/koprogo-federation
    """
    folder.mkdir(parents=True, exist_ok=True)
    if (folder / ROSTER_FILE).exists():
        fail(f"{folder / ROSTER_FILE} exists already; nothing changed", 2)
    key = NodeKey.load_or_create(folder, FEDERATION_KEY)
    (folder / ROSTER_FILE).write_bytes(roster.empty(key, time.time()))
    click.echo(f"federation key {peer_id(key.public_key)}")


@federation.command("admit")
@click.argument("peer")
@click.option("--name", required=True, help="Building the node serves.")
@dir_option
def admit(peer: str, name: str, folder: Path) -> None:
    """Admit the node with peer id PEER (see `koprogo-node keys show`).

    \b
    Example:
      koprogo-node federation admit 12D3KooW... --name "Résidence Louise" \\
          --dir /srv/federation
    """
    _update(
        folder, lambda signed, key: roster.admit(signed, key, peer, name, time.time())
    )
    click.echo(f"admitted {peer} ({name})")


@federation.command("revoke")
@click.argument("peer")
@dir_option
def revoke(peer: str, folder: Path) -> None:
    """Revoke the node with peer id PEER from now on.

    \b
    Example:
      koprogo-node federation revoke 12D3KooW... --dir /srv/federation
    """
    _update(folder, lambda signed, key: roster.revoke(signed, key, peer, time.time()))
    click.echo(f"revoked {peer}")


@federation.command("roster")
@dir_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def show(folder: Path, as_json: bool) -> None:
    """Print the roster: serial, members, revocations.

    \b
    Example:
      koprogo-node federation roster --dir /srv/federation --json
    """
    key, signed = _load(folder)
    current = roster.read(signed, key.public_key)
    members = [
        {
            "peer_id": peer_id(k),
            "name": name,
            "revoked": iso(round(current.revoked[k] * 1000))
            if k in current.revoked
            else None,
        }
        for k, name in sorted(current.members.items(), key=lambda kv: kv[1])
    ]
    if as_json:
        print_json({"serial": current.serial, "members": members})
        return
    click.echo(f"roster serial {current.serial}, {len(current.admitted())} admitted")
    for m in members:
        state = f"revoked {m['revoked']}" if m["revoked"] else "admitted"
        click.echo(f"{m['peer_id']}  {state:<30} {m['name']}")


def _load(folder: Path) -> tuple[NodeKey, bytes]:
    path = folder / ROSTER_FILE
    if not path.exists():
        fail(f"no roster at {path}; run `koprogo-node federation init` first", 3)
    return NodeKey.load_or_create(folder, FEDERATION_KEY), path.read_bytes()


def _update(folder: Path, change) -> None:
    key, signed = _load(folder)
    try:
        updated = change(signed, key)
    except ConfigError as exc:
        fail(str(exc), 2)
    tmp = folder / (ROSTER_FILE + ".tmp")
    tmp.write_bytes(updated)
    tmp.replace(folder / ROSTER_FILE)
