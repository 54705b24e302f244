"""The WebSocket transport: real TLS sockets on 127.0.0.1."""

import asyncio
import errno
import time

import aiohttp
import pytest
from structlog.testing import capture_logs

from koprogo_node.errors import FederationUnavailable
from koprogo_node.federation import tls
from koprogo_node.federation.identity import NodeKey
from koprogo_node.federation.transport import (
    CLOSE_REFUSED,
    WS_PATH,
    Transport,
)

from .support import until


class Node:
    """A transport and everything its callbacks reported."""

    def __init__(self, key: NodeKey, roster, tls_dir, **options) -> None:
        self.key = key
        self.connected: list[tuple[bytes, bool, bytes | None]] = []
        self.frames: list[tuple[bytes, bytes]] = []
        self.disconnected: list[tuple[bytes, str]] = []
        self.transport = Transport(
            key,
            roster,
            tls_dir,
            "127.0.0.1",
            options.pop("port", 0),
            on_connected=lambda *event: self.connected.append(event),
            on_frame=lambda *event: self.frames.append(event),
            on_disconnected=lambda *event: self.disconnected.append(event),
            **options,
        )

    @property
    def address(self) -> str:
        return f"wss://127.0.0.1:{self.transport.port}"


@pytest.fixture
def keys(tmp_path):
    made = []
    for name in ("a", "b", "outsider"):
        (tmp_path / name).mkdir()
        made.append(NodeKey.load_or_create(tmp_path / name))
    return made


@pytest.fixture
async def make_node(tmp_path, keys):
    """Start nodes on demand; stop them all at the end."""
    started: list[Node] = []
    roster = {keys[0].public_key, keys[1].public_key}

    async def make(key: NodeKey, node_roster=roster, **options) -> Node:
        tls_dir = tmp_path / f"tls-{len(started)}"
        node = Node(key, node_roster, tls_dir, **options)
        await node.transport.start()
        started.append(node)
        return node

    yield make
    for node in started:
        await node.transport.stop()


async def test_two_nodes_connect_and_exchange_frames(keys, make_node):
    """Frames go both ways and on_connected names the right peer and record."""
    a, b = await make_node(keys[0]), await make_node(keys[1])

    got = await a.transport.dial(b.address)
    await until(lambda: b.connected)
    a.transport.send(b.key.public_key, b"to b")
    b.transport.send(a.key.public_key, b"to a")
    await until(lambda: a.frames and b.frames)

    assert got == b.key.public_key
    assert a.connected == [(b.key.public_key, True, b.transport.record)]
    assert b.connected == [(a.key.public_key, False, a.transport.record)]
    assert a.frames == [(b.key.public_key, b"to a")]
    assert b.frames == [(a.key.public_key, b"to b")]
    info = a.transport.connections()[b.key.public_key]
    assert (info.address, info.outbound) == (b.address, True)
    assert (info.frames_out, info.bytes_out, info.frames_in, info.bytes_in) == (
        1,
        4,
        1,
        4,
    )
    assert (info.dropped, info.queue_depth) == (0, 0)


async def test_record_advertises_the_listening_address(keys, make_node):
    """Without advertised addresses, the record names host and actual port."""
    from koprogo_node.federation.records import read_record

    a = await make_node(keys[0])

    record = read_record(a.transport.record, time.time(), {a.key.public_key})

    assert record.addrs == (a.address,)


async def test_dialling_a_connected_address_reuses_the_connection(keys, make_node):
    """A second dial to the same address opens no second socket."""
    a, b = await make_node(keys[0]), await make_node(keys[1])

    first = await a.transport.dial(b.address)
    second = await a.transport.dial(b.address)

    assert first == second == b.key.public_key
    assert len(a.connected) == 1


async def test_outsider_is_refused_on_both_sides(keys, make_node):
    """A key not on the roster is refused whoever dials, with the reason."""
    a = await make_node(keys[0])
    outsider_roster = {keys[0].public_key, keys[2].public_key}
    outsider = await make_node(keys[2], node_roster=outsider_roster)

    with capture_logs() as logs:
        inbound = await outsider.transport.dial(a.address)
        outbound = await a.transport.dial(outsider.address)
        await asyncio.sleep(0.1)

    assert (inbound, outbound) == (None, None)
    assert a.connected == outsider.connected == []
    assert a.transport.connections() == {}
    refusals = {
        (entry["outbound"], entry["reason"])
        for entry in logs
        if entry["event"] == "handshake_refused" and entry["log_level"] == "info"
    }
    assert refusals == {
        (False, "not_on_roster"),  # a, listening, refuses the outsider's hello
        (True, "refused_by_peer: not_on_roster"),  # the outsider hears why
        (True, "not_on_roster"),  # a, dialling, refuses the outsider's reply
        (False, "refused_by_peer: not_on_roster"),  # and the outsider hears why
    }


async def test_refusal_is_logged_once_per_address(keys, make_node):
    """Repeated refusals are logged once on each side, then at debug."""
    a = await make_node(keys[0])
    outsider = await make_node(keys[2], node_roster={keys[0].public_key})

    with capture_logs() as logs:
        for _ in range(3):
            await outsider.transport.dial(a.address)

    def levels(outbound: bool) -> list[str]:
        return [
            entry["log_level"]
            for entry in logs
            if entry["event"] == "handshake_refused" and entry["outbound"] is outbound
        ]

    assert levels(outbound=True) == ["info", "debug", "debug"]
    assert levels(outbound=False) == ["info", "debug", "debug"]


async def test_man_in_the_middle_relay_is_refused(tmp_path, keys, make_node):
    """A relay that terminates TLS with its own certificate fails the handshake."""
    a, b = await make_node(keys[0]), await make_node(keys[1])
    relay = await start_tls_relay(tmp_path / "mitm", b.transport.port)
    relay_port = relay.sockets[0].getsockname()[1]

    with capture_logs() as logs:
        got = await a.transport.dial(f"wss://127.0.0.1:{relay_port}")

    relay.close()
    assert got is None
    assert a.connected == b.connected == []
    reasons = [e["reason"] for e in logs if e["event"] == "handshake_refused"]
    assert "bad_signature" in reasons


async def start_tls_relay(tls_dir, target_port: int) -> asyncio.Server:
    """A man in the middle: TLS with its own certificate, bytes passed on."""

    async def pump(reader, writer):
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def relay(client_reader, client_writer):
        server_reader, server_writer = await asyncio.open_connection(
            "127.0.0.1", target_port, ssl=tls.client_context()
        )
        await asyncio.gather(
            pump(client_reader, server_writer), pump(server_reader, client_writer)
        )

    return await asyncio.start_server(
        relay, "127.0.0.1", 0, ssl=tls.server_context(tls_dir)
    )


async def test_simultaneous_dials_keep_one_connection(keys, make_node):
    """Two nodes dialling each other at once end with one connection each."""
    a, b = await make_node(keys[0]), await make_node(keys[1])

    got = await asyncio.gather(a.transport.dial(b.address), b.transport.dial(a.address))
    await asyncio.sleep(0.3)
    a.transport.send(b.key.public_key, b"ping")
    b.transport.send(a.key.public_key, b"pong")
    await until(lambda: a.frames and b.frames)

    assert got == [b.key.public_key, a.key.public_key]
    assert len(a.connected) == len(b.connected) == 1
    assert a.disconnected == b.disconnected == []
    assert list(a.transport.connections()) == [b.key.public_key]
    assert list(b.transport.connections()) == [a.key.public_key]
    assert_kept_connection_dialled_by_lower_key(a, b)


async def test_late_second_dial_resolves_to_the_same_rule(keys, make_node):
    """A dial answering an existing connection keeps the lower key's dial."""
    a, b = await make_node(keys[0]), await make_node(keys[1])

    await a.transport.dial(b.address)
    await until(lambda: b.connected)
    # Not the address in a's record, which b would know it is connected to.
    await b.transport.dial(f"wss://localhost:{a.transport.port}")
    await asyncio.sleep(0.3)

    assert len(a.connected) == len(b.connected) == 1
    assert a.disconnected == b.disconnected == []
    assert_kept_connection_dialled_by_lower_key(a, b)
    b.transport.send(a.key.public_key, b"still up")
    await until(lambda: a.frames)
    assert a.frames == [(b.key.public_key, b"still up")]


def assert_kept_connection_dialled_by_lower_key(a: Node, b: Node) -> None:
    lower, higher = sorted((a, b), key=lambda node: node.key.public_key)
    assert lower.transport.connections()[higher.key.public_key].outbound is True
    assert higher.transport.connections()[lower.key.public_key].outbound is False


async def test_disconnect_then_redial(keys, make_node):
    """A local disconnect tells both sides; a new dial connects again."""
    a, b = await make_node(keys[0]), await make_node(keys[1])
    await a.transport.dial(b.address)
    await until(lambda: b.connected)

    a.transport.disconnect(b.key.public_key, "maintenance")
    await until(lambda: b.disconnected)
    again = await a.transport.dial(b.address)
    await until(lambda: len(b.connected) == 2)

    assert a.disconnected == [(b.key.public_key, "maintenance")]
    assert b.disconnected == [(a.key.public_key, "closed_by_peer: maintenance")]
    assert again == b.key.public_key
    assert [event[0] for event in a.connected] == [b.key.public_key] * 2


async def test_full_queue_refuses_and_counts(keys, make_node):
    """With the queue full, send returns False and the drop is counted."""
    a = await make_node(keys[0], queue_frames=2)
    b = await make_node(keys[1])
    await a.transport.dial(b.address)
    peer = b.key.public_key

    sent = [a.transport.send(peer, bytes([n])) for n in range(3)]
    info = a.transport.connections()[peer]
    await until(lambda: len(b.frames) == 2)

    assert sent == [True, True, False]
    assert (info.dropped, info.queue_depth) == (1, 2)
    assert [frame for _, frame in b.frames] == [b"\x00", b"\x01"]
    assert a.transport.connections()[peer].frames_out == 2


async def test_send_to_unknown_peer_returns_false(keys, make_node):
    """Nothing is queued for a peer that is not connected."""
    a = await make_node(keys[0])

    assert a.transport.send(keys[1].public_key, b"x") is False


async def test_oversized_frame_closes_the_connection(keys, make_node):
    """A frame above the receiver's cap closes the connection on both sides."""
    a = await make_node(keys[0])
    b = await make_node(keys[1], max_frame_bytes=1024)
    await a.transport.dial(b.address)
    await until(lambda: b.connected)

    queued = a.transport.send(b.key.public_key, bytes(2048))
    await until(lambda: a.disconnected and b.disconnected)

    assert queued is True
    assert b.disconnected == [(a.key.public_key, "frame_too_large")]
    assert a.disconnected[0][0] == b.key.public_key
    assert b.frames == []


async def test_frame_above_own_cap_is_not_sent(keys, make_node):
    """send refuses, and counts, a frame larger than the local cap."""
    a = await make_node(keys[0], max_frame_bytes=1024)
    b = await make_node(keys[1])
    await a.transport.dial(b.address)

    assert a.transport.send(b.key.public_key, bytes(1025)) is False
    assert a.transport.connections()[b.key.public_key].dropped == 1


async def test_silent_client_is_closed_after_the_timeout(keys, make_node):
    """A socket that never says hello is closed with reason timeout."""
    a = await make_node(keys[0], handshake_timeout_s=0.2)

    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(a.address + WS_PATH, ssl=tls.client_context()) as ws,
    ):
        message = await asyncio.wait_for(ws.receive(), 5)

    assert (message.data, message.extra) == (CLOSE_REFUSED, "timeout")


async def test_busy_port_raises_a_clear_error(keys, make_node):
    """Starting on a port already in use says which address is busy."""
    a = await make_node(keys[0])
    clash = Node(keys[1], set(), a.transport._tls_dir, port=a.transport.port)

    with pytest.raises(FederationUnavailable) as raised:
        await clash.transport.start()

    assert raised.value.errno == errno.EADDRINUSE
    where = f"127.0.0.1:{a.transport.port}"
    assert f"cannot listen for gossip on {where}" in str(raised.value)


async def test_stop_closes_every_connection(keys, make_node):
    """Stopping tells both sides that the connection ended."""
    a, b = await make_node(keys[0]), await make_node(keys[1])
    await a.transport.dial(b.address)
    await until(lambda: b.connected)

    await a.transport.stop()
    await until(lambda: b.disconnected)

    assert a.disconnected == [(b.key.public_key, "stopping")]
    assert b.disconnected == [(a.key.public_key, "closed_by_peer: stopping")]
    assert a.transport.connections() == b.transport.connections() == {}


async def test_unreachable_address_returns_none_and_logs_once(keys, make_node):
    """Dialling a closed port fails quietly after the first log line."""
    a = await make_node(keys[0])
    b = await make_node(keys[1])
    address = b.address
    await b.transport.stop()

    with capture_logs() as logs:
        results = [await a.transport.dial(address) for _ in range(3)]

    levels = [e["log_level"] for e in logs if e["event"] == "dial_failed"]
    assert results == [None, None, None]
    assert levels == ["info", "debug", "debug"]


async def test_second_address_of_a_connected_peer_opens_no_second_link(keys, make_node):
    """Reaching a connected peer by another of its addresses keeps one link."""
    a, b = await make_node(keys[0]), await make_node(keys[1])
    await a.transport.dial(b.address)
    await until(lambda: b.connected)

    again = await a.transport.dial(f"wss://localhost:{b.transport.port}")
    await asyncio.sleep(0.2)

    assert again == b.key.public_key
    assert len(a.connected) == len(b.connected) == 1
    assert a.disconnected == b.disconnected == []
    assert a.transport.connections()[b.key.public_key].address == b.address


async def test_peer_redialling_supersedes_its_stale_link(keys, make_node):
    """An inbound link from a connected peer replaces the old, reported once."""
    a, b = await make_node(keys[0]), await make_node(keys[1])
    await a.transport.dial(b.address)
    await until(lambda: b.connected)
    second_a = Node(keys[0], {keys[1].public_key}, a.transport._tls_dir)
    await second_a.transport.start()

    try:
        await second_a.transport.dial(b.address)
        await until(lambda: len(b.connected) == 2)
    finally:
        await second_a.transport.stop()

    assert b.disconnected[0] == (a.key.public_key, "superseded")
    assert [event[:2] for event in b.connected] == [(a.key.public_key, False)] * 2


async def test_dial_knows_the_addresses_in_the_peer_record(keys, make_node):
    """A peer that dialled us is not redialled at the address it advertises."""
    a, b = await make_node(keys[0]), await make_node(keys[1])
    await b.transport.dial(a.address)
    await until(lambda: a.connected)

    got = await a.transport.dial(b.address)

    assert got == b.key.public_key
    assert len(a.connected) == len(b.connected) == 1


async def test_greetings_sent_on_connect_survive_a_simultaneous_dial(keys, make_node):
    """Frames sent at on_connected arrive even if that socket loses the race."""
    a, b = await make_node(keys[0]), await make_node(keys[1])
    for node in (a, b):
        node.transport._on_connected = lambda peer, *rest, node=node: (
            node.connected.append((peer, *rest)),
            node.transport.send(peer, b"hello from " + node.key.public_key[:4]),
        )

    await asyncio.gather(a.transport.dial(b.address), b.transport.dial(a.address))
    await until(lambda: a.frames and b.frames)
    await asyncio.sleep(0.2)

    assert a.frames == [(b.key.public_key, b"hello from " + b.key.public_key[:4])]
    assert b.frames == [(a.key.public_key, b"hello from " + a.key.public_key[:4])]
