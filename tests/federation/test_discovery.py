"""Discovery: bootstrap redials with back-off; zeroconf finds LAN peers."""

import asyncio
import itertools
import time

import pytest

from koprogo_node.federation.discovery import (
    SERVICE_TYPE,
    Backoff,
    Bootstrap,
    LanDiscovery,
    multicast_problem,
)
from koprogo_node.federation.identity import NodeKey
from koprogo_node.federation.transport import Transport

from .support import until


def test_backoff_doubles_up_to_the_cap_and_resets():
    """Delays double from the first one, stop at the cap, restart on reset."""
    backoff = Backoff(first_s=1.0, max_s=4.0)

    delays = [backoff.next_delay_s() for _ in range(5)]
    backoff.reset()
    after_reset = backoff.next_delay_s()

    ceilings = [1.0, 2.0, 4.0, 4.0, 4.0]
    assert all(0.8 * top <= got <= top for got, top in zip(delays, ceilings))
    assert 0.8 <= after_reset <= 1.0


async def test_bootstrap_retries_with_backoff_until_a_dial_succeeds():
    """A failing address is retried, faster at first, until it answers."""
    attempts: list[float] = []

    async def dial(address: str) -> bytes | None:
        attempts.append(time.monotonic())
        return b"k" * 32 if len(attempts) == 4 else None

    bootstrap = Bootstrap(
        ["wss://192.0.2.9:47470"],
        dial,
        is_connected=lambda peer: True,
        first_delay_s=0.02,
        max_delay_s=0.08,
    )

    await bootstrap.start()
    await until(lambda: len(attempts) == 4)
    await asyncio.sleep(0.2)
    await bootstrap.stop()

    gaps = [later - earlier for earlier, later in itertools.pairwise(attempts)]
    assert len(attempts) == 4  # connected: no more dials while it stays up
    assert gaps[0] < gaps[2]


def test_bootstrap_refuses_a_malformed_address():
    """A typo in the bootstrap list fails at construction."""

    async def dial(address):
        return None

    with pytest.raises(ValueError, match="expected wss://host:port"):
        Bootstrap(["http://example.org"], dial, lambda peer: False)


async def test_bootstrap_redials_after_the_peer_restarts(tmp_path):
    """When the peer goes away and comes back, bootstrap connects again."""
    keys = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        keys.append(NodeKey.load_or_create(tmp_path / name))
    roster = {key.public_key for key in keys}
    connected_at_a: list[bytes] = []

    def make(index: int, port: int, on_connected=lambda *event: None) -> Transport:
        return Transport(
            keys[index],
            roster,
            tmp_path / f"tls-{index}",
            "127.0.0.1",
            port,
            on_connected=on_connected,
            on_frame=lambda *event: None,
            on_disconnected=lambda *event: None,
        )

    a = make(0, 0, on_connected=lambda peer, *rest: connected_at_a.append(peer))
    b = make(1, 0)
    await a.start()
    await b.start()
    port = b.port
    bootstrap = Bootstrap(
        [f"wss://127.0.0.1:{port}"],
        a.dial,
        lambda peer: peer in a.connections(),
        first_delay_s=0.05,
        max_delay_s=0.2,
        check_interval_s=0.05,
    )

    try:
        await bootstrap.start()
        await until(lambda: len(connected_at_a) == 1)
        await b.stop()
        await until(lambda: not a.connections())
        b = make(1, port)
        await b.start()
        await until(lambda: len(connected_at_a) == 2)
    finally:
        await bootstrap.stop()
        await a.stop()
        await b.stop()

    assert connected_at_a == [keys[1].public_key, keys[1].public_key]


async def test_lan_discovery_finds_the_other_node():
    """Two nodes advertising on the loopback find each other, not themselves."""
    problem = await asyncio.to_thread(multicast_problem, "127.0.0.1")
    if problem:
        pytest.skip(f"zeroconf cannot work on this machine: {problem}")
    found: dict[str, list[str]] = {"a": [], "b": []}
    nodes = {
        name: LanDiscovery(
            f"12D3KooWTestNode{name.upper()}",
            port,
            on_found=found[name].append,
            addresses=["127.0.0.1"],
            interfaces=["127.0.0.1"],
        )
        for name, port in (("a", 47001), ("b", 47002))
    }

    try:
        for node in nodes.values():
            await node.start()
        await until(
            lambda: (
                "wss://127.0.0.1:47002" in found["a"]
                and "wss://127.0.0.1:47001" in found["b"]
            ),
            timeout_s=10,
        )
    finally:
        for node in nodes.values():
            await node.stop()

    assert "wss://127.0.0.1:47001" not in found["a"]  # never itself
    assert "wss://127.0.0.1:47002" not in found["b"]
    assert SERVICE_TYPE == "_koprogo._tcp.local."
