"""`koprogo-node peers list|show|ban|unban`: the buildings this node talks to.

With the daemon running, peers come from its API (live connections, scores,
last exchange). With it stopped, from the ledger: every building whose
aggregates were stored, and when. Bans are a file in the data directory that
the daemon rereads within a second, so they work either way.
"""

from __future__ import annotations

import click

from ..federation.bans import read_bans, write_bans
from ..federation.identity import KEY_FILE, NodeKey, public_key_of
from ..ledger import query
from ..ledger.lock import holder_pid
from .common import Context, data_dir_options, fail, iso, print_json, table
from .daemon_client import get_json


@click.group()
def peers() -> None:
    """Federation peers: list, show, ban, unban."""


@peers.command("list")
@data_dir_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def list_peers(obj: Context, config_path, data_dir, as_json: bool) -> None:
    """List peers with their state and last exchange.

    \b
    Example:
      koprogo-node peers list --json
    """
    obj.override(config_path, data_dir)
    report = gather(obj)
    if as_json:
        print_json(report)
        return
    if not report["live"]:
        click.echo("daemon not running: peers known from the ledger", err=True)
    rows = [_row(p) for p in report["peers"]]
    click.echo(table(rows, ["PEER", "NAME", "STATE", "SCORE", "MSGS", "LAST"]))


@peers.command("show")
@click.argument("peer")
@data_dir_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def show(obj: Context, peer: str, config_path, data_dir, as_json: bool) -> None:
    """Everything known about the peer with id PEER.

    \b
    Example:
      koprogo-node peers show 12D3KooW... --json
    """
    obj.override(config_path, data_dir)
    _check_peer_id(peer)
    found = [p for p in gather(obj)["peers"] if p["peer_id"] == peer]
    if not found:
        fail(f"no peer {peer} is known here", 2)
    if as_json:
        print_json(found[0])
        return
    for key, value in found[0].items():
        click.echo(f"{key:<18} {value}")


@peers.command("ban")
@click.argument("peer")
@data_dir_options
@click.pass_obj
def ban(obj: Context, peer: str, config_path, data_dir) -> None:
    """Refuse the peer PEER: disconnect it and ignore it until unbanned.

    \b
    Example:
      koprogo-node peers ban 12D3KooW...
    """
    obj.override(config_path, data_dir)
    _check_peer_id(peer)
    known = {p["peer_id"] for p in gather(obj)["peers"]}
    write_bans(obj.data_dir(), [*read_bans(obj.data_dir()), peer])
    click.echo(f"banned {peer}{_applied(obj)}")
    if peer not in known:
        click.echo("note: this node has never heard from that peer", err=True)


@peers.command("unban")
@click.argument("peer")
@data_dir_options
@click.pass_obj
def unban(obj: Context, peer: str, config_path, data_dir) -> None:
    """Lift the ban on the peer PEER.

    \b
    Example:
      koprogo-node peers unban 12D3KooW...
    """
    obj.override(config_path, data_dir)
    _check_peer_id(peer)
    banned = read_bans(obj.data_dir())
    if peer not in banned:
        fail(f"{peer} is not banned", 2)
    write_bans(obj.data_dir(), [p for p in banned if p != peer])
    click.echo(f"unbanned {peer}{_applied(obj)}")


def gather(obj: Context) -> dict:
    """Peers from the running daemon, or else from the ledger."""
    live = _live(obj)
    if live is not None:
        return {"live": True, "peers": live.get("peers", [])}
    banned = set(read_bans(obj.data_dir()))
    conn = query.open_reader(obj.db_path())
    try:
        known = query.aggregate_origins(conn)
    finally:
        conn.close()
    own = _own_peer_id(obj)
    entries = {
        peer: {"peer_id": peer, "connected": False, "banned": peer in banned, **info}
        for peer, info in known.items()
        if peer != own
    }
    for peer in banned - set(entries):
        entries[peer] = {"peer_id": peer, "connected": False, "banned": True}
    return {"live": False, "peers": [entries[p] for p in sorted(entries)]}


def _own_peer_id(obj: Context) -> str | None:
    if not (obj.data_dir() / KEY_FILE).exists():
        return None
    return NodeKey.load_or_create(obj.data_dir()).peer_id


def _live(obj: Context) -> dict | None:
    return get_json(obj.data_dir(), "/api/v1/peers")


def _row(peer: dict) -> list[str]:
    state = (
        "banned"
        if peer.get("banned")
        else ("connected" if peer.get("connected") else "offline")
    )
    if peer.get("graylisted") and state == "connected":
        state = "graylisted"
    score = peer.get("score")
    last = peer.get("last_message_s")
    return [
        peer["peer_id"],
        peer.get("name") or "",
        state,
        "" if score is None else f"{score:.1f}",
        str(peer.get("messages", 0)),
        iso(int(last * 1000)) if last else "",
    ]


def _check_peer_id(peer: str) -> None:
    try:
        public_key_of(peer)
    except ValueError as exc:
        fail(f"not a peer id: {exc}", 2)


def _applied(obj: Context) -> str:
    if not obj.config().federation.enabled:
        return " (federation is off here: it applies once it is on)"
    if holder_pid(obj.data_dir()) is None:
        return " (the daemon applies it when it starts)"
    return " (the running daemon applies it within a second)"
