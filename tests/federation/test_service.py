"""The federation service in-process: real ledgers, real TLS sockets."""

import asyncio
import time
from dataclasses import replace

import pytest

from koprogo_node.config.model import Config, FederationConfig, LedgerConfig
from koprogo_node.errors import ConfigError
from koprogo_node.federation import roster
from koprogo_node.federation.bans import write_bans
from koprogo_node.federation.identity import NodeKey
from koprogo_node.federation.service import FederationService
from koprogo_node.ledger.stats import IngestStats
from koprogo_node.ledger.writer import LedgerWriter

from ..ledger.conftest import FakeClock
from .support import until

WAIT_S = 15.0


class Member:
    """One node: its key, ledger writer and federation service."""

    def __init__(self, root, name, federation_key, bootstrap=()):
        self.dir = root / name
        self.dir.mkdir()
        self.key = NodeKey.load_or_create(self.dir)
        self.config = Config(
            ledger=LedgerConfig(batch_ms=50),
            federation=FederationConfig(
                enabled=True,
                host="127.0.0.1",
                port=0,
                bootstrap=tuple(bootstrap),
                lan_discovery=False,
                federation_key=federation_key.public_key.hex(),
            ),
        )

    async def start(self, signed_roster):
        (self.dir / "roster.cbor").write_bytes(signed_roster)
        self.writer = LedgerWriter(
            self.dir, self.config.ledger, FakeClock(), "boot", IngestStats()
        )
        await self.writer.open()
        self.queue = asyncio.Queue()
        self.writer_task = asyncio.create_task(self.writer.run(self.queue))
        self.service = FederationService(self.config, self.dir, self.key, self.writer)
        await self.service.start()
        return self

    @property
    def address(self):
        return f"wss://127.0.0.1:{self.service.transport.port}"

    def connected(self):
        return {p["peer_id"] for p in self.service.peers() if p["connected"]}

    async def stop(self):
        await self.service.stop()
        await self.queue.put(None)
        await self.writer_task
        await self.writer.close()


@pytest.fixture
def federation_key(tmp_path):
    return NodeKey.load_or_create(tmp_path, "federation_key")


def admitted(federation_key, *members):
    signed = roster.empty(federation_key, time.time())
    for i, member in enumerate(members):
        signed = roster.admit(
            signed, federation_key, member.key.peer_id, f"b{i}", time.time()
        )
    return signed


@pytest.fixture
async def network(tmp_path, federation_key):
    """Makes members; stops every started one at the end."""
    members = []

    def make(name):
        members.append(Member(tmp_path, name, federation_key))
        return members[-1]

    yield make
    for member in members:
        if getattr(member, "service", None) is not None:
            await member.stop()


async def start_star(hub, spokes, signed):
    """Start `hub`, then each spoke dialling it."""
    await hub.start(signed)
    for spoke in spokes:
        spoke.config = _with_bootstrap(spoke.config, hub.address)
        await spoke.start(signed)
    peers = {s.key.peer_id for s in spokes}
    await until(lambda: hub.connected() == peers, WAIT_S)


async def test_a_revocation_disconnects_and_travels_to_the_others(
    network, federation_key
):
    """A newer roster dropped in one node's data dir reaches the whole network."""
    a, b, c = network("a"), network("b"), network("c")
    signed = admitted(federation_key, a, b, c)
    await start_star(a, [b, c], signed)

    revoked = roster.revoke(signed, federation_key, b.key.peer_id, time.time())
    (a.dir / "roster.cbor").write_bytes(revoked)

    await until(lambda: b.key.peer_id not in a.connected(), WAIT_S)
    await until(lambda: c.service.roster.current.serial == 4, WAIT_S)
    assert (c.dir / "roster.cbor").read_bytes() == revoked
    assert b.key.public_key not in c.service.roster


async def test_a_ban_written_by_the_cli_disconnects_the_peer(network, federation_key):
    """bans.json is picked up by the running service; unban lets it back."""
    a, b = network("a"), network("b")
    await start_star(a, [b], admitted(federation_key, a, b))

    write_bans(a.dir, [b.key.peer_id])
    await until(lambda: not a.connected(), WAIT_S)
    entry = next(p for p in a.service.peers() if p["peer_id"] == b.key.peer_id)
    write_bans(a.dir, [])

    assert entry["banned"] is True
    await until(lambda: a.connected() == {b.key.peer_id}, timeout_s=30)


async def test_a_missing_roster_is_a_clear_configuration_error(
    tmp_path, federation_key
):
    """Federation on without the roster file says what to copy where."""
    a = Member(tmp_path, "a", federation_key)
    writer = LedgerWriter(a.dir, a.config.ledger, FakeClock(), "boot", IngestStats())

    with pytest.raises(ConfigError) as caught:
        FederationService(a.config, a.dir, a.key, writer)

    assert "roster.cbor cannot be read" in str(caught.value)


def _with_bootstrap(config, address):
    return replace(config, federation=replace(config.federation, bootstrap=(address,)))
