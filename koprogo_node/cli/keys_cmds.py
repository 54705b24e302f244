"""`koprogo-node keys show`: the node's identity on the federation."""

from __future__ import annotations

import click

from ..federation.identity import KEY_FILE, NodeKey
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
