"""One long-lived WebSocket per peer, over TLS, bound to node keys.

The node listens on `wss://host:port/federation/v1/ws` (aiohttp) and dials
peers with aiohttp's client. Each socket starts with the signed handshake
(handshake.py) under a timeout; after it, every binary frame is one opaque
router frame. Each connection has a bounded queue drained by its own writer
task, so `send` never blocks: a full queue is reported to the caller and
counted. A frame above the size cap closes the connection.

When two nodes dial each other at once, both keep the connection dialled by
the lower public key and close the other; the kept peer sees no disconnect.
Frames still queued on the losing duplicate move to the kept one, and the
loser is still read for LINGER_S before it is closed, so frames the peer
sent on it before it saw the winner are delivered too.
A dial that reaches a peer we already dialled (by another of its addresses)
is abandoned before the server accepts it. A newer socket in the same
direction as an existing one means the dialler thinks the old one died: the
old one is closed and reported as disconnected with reason "superseded".
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Container, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import structlog
from aiohttp import WSCloseCode, WSMsgType, web

from ..errors import FederationUnavailable
from . import tls
from .handshake import (
    ACCEPTED,
    ClientHandshake,
    HandshakeRefused,
    HandshakeResult,
    ServerHandshake,
)
from .identity import NodeKey, peer_id
from .records import (
    AddressRecord,
    format_address,
    make_record,
    read_record,
    split_address,
)

log = structlog.get_logger()

WS_PATH = "/federation/v1/ws"
HEARTBEAT_S = 30.0  # finds a dead peer behind a NAT that dropped the flow
RECORD_REFRESH_S = 86_400.0  # well inside records.MAX_AGE_S
CLOSE_REFUSED = 4001  # private-use close codes, with the reason as message
CLOSE_DUPLICATE = 4002
LINGER_S = 2.0  # a losing duplicate is still read this long, for frames in flight
_WILDCARD_HOSTS = ("", "0.0.0.0", "::")

ConnectedCallback = Callable[[bytes, bool, "bytes | None"], None]
FrameCallback = Callable[[bytes, bytes], None]
DisconnectedCallback = Callable[[bytes, str], None]
_Socket = web.WebSocketResponse | aiohttp.ClientWebSocketResponse


class _AlreadyDialled(Exception):
    """Raised mid-handshake when we already hold a socket we dialled to `peer`."""

    def __init__(self, peer: bytes) -> None:
        super().__init__(peer_id(peer))
        self.peer = peer


@dataclass(frozen=True, slots=True)
class ConnectionInfo:
    """A snapshot of one peer connection, for status pages and metrics."""

    address: str | None  # the address we dialled; None when the peer dialled
    remote: str  # ip:port of the other end of the socket
    outbound: bool
    connected_since: float  # wall-clock seconds
    frames_in: int
    frames_out: int
    bytes_in: int
    bytes_out: int
    dropped: int
    queue_depth: int


class _Connection:
    """One authenticated socket to a peer, with its queue and counters."""

    def __init__(
        self, peer: bytes, ws: _Socket, outbound: bool, address: str | None, remote: str
    ) -> None:
        self.peer = peer
        self.ws = ws
        self.outbound = outbound
        self.address = address
        self.remote = remote
        self.since = time.time()
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()
        self.writer: asyncio.Task[None] | None = None
        self.frames_in = self.frames_out = self.bytes_in = self.bytes_out = 0
        self.dropped = 0
        self.closing: tuple[int, str] | None = None  # set when we close it
        self.reachable_at: set[str] = {address} if address else set()

    def info(self) -> ConnectionInfo:
        """The current counters."""
        return ConnectionInfo(
            self.address,
            self.remote,
            self.outbound,
            self.since,
            self.frames_in,
            self.frames_out,
            self.bytes_in,
            self.bytes_out,
            self.dropped,
            self.queue.qsize(),
        )


class _Changes:
    """The last state seen per key, so only changes are logged (bounded)."""

    def __init__(self, limit: int = 256) -> None:
        self._states: OrderedDict[str, str] = OrderedDict()
        self._limit = limit

    def changed(self, key: str, state: str) -> bool:
        """Record `state` for `key`; whether it differs from the last one."""
        previous = self._states.pop(key, None)
        self._states[key] = state
        while len(self._states) > self._limit:
            self._states.popitem(last=False)
        return previous != state

    def forget(self, key: str) -> None:
        self._states.pop(key, None)


class Transport:
    """Authenticated WebSocket connections to the federation's nodes."""

    def __init__(
        self,
        key: NodeKey,
        roster: Container[bytes],
        tls_dir: Path,
        host: str,
        port: int,
        on_connected: ConnectedCallback,
        on_frame: FrameCallback,
        on_disconnected: DisconnectedCallback,
        advertised: Sequence[str] = (),
        queue_frames: int = 256,
        max_frame_bytes: int = 1 << 20,
        handshake_timeout_s: float = 10.0,
    ) -> None:
        self._key = key
        self._roster = roster
        self._tls_dir = tls_dir
        self._host = host
        self._requested_port = port
        self._on_connected = on_connected
        self._on_frame = on_frame
        self._on_disconnected = on_disconnected
        self._advertised = tuple(advertised)
        self._queue_frames = queue_frames
        self._max_frame_bytes = max_frame_bytes
        self._handshake_timeout_s = handshake_timeout_s
        self._connections: dict[bytes, _Connection] = {}
        self._pending: set[_Socket] = set()  # sockets still in their handshake
        self._dialling: dict[str, asyncio.Task[bytes | None]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._retiring: dict[_Connection, asyncio.TimerHandle] = {}
        self._failures = _Changes()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._cert_sha256 = b""
        self._record = b""
        self._record_ts = 0.0

    async def start(self) -> None:
        """Listen for peers; FederationUnavailable if the port is taken."""
        files = await asyncio.to_thread(tls.ensure_certificate, self._tls_dir)
        self._cert_sha256 = files.cert_sha256
        server_ssl = await asyncio.to_thread(tls.server_context, self._tls_dir)
        app = web.Application()
        app.router.add_get(WS_PATH, self._accept)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(
            self._runner, self._host, self._requested_port, ssl_context=server_ssl
        )
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            self._runner = None
            where = f"{self._host}:{self._requested_port}"
            raise FederationUnavailable(
                f"cannot listen for gossip on {where}: {exc.strerror or exc}"
                " (set federation.port)",
                errno=exc.errno,
            ) from exc
        self._session = aiohttp.ClientSession()
        self._sign_record()

    async def stop(self) -> None:
        """Close every connection and stop listening."""
        dialling = list(self._dialling.values())
        for task in dialling:
            task.cancel()
        await asyncio.gather(*dialling, return_exceptions=True)
        for conn in list(self._connections.values()):
            self._unregister(conn, "stopping")
            self._shut(conn, WSCloseCode.GOING_AWAY, "stopping")
        for conn, timer in list(self._retiring.items()):
            timer.cancel()
            self._shut(conn, CLOSE_DUPLICATE, "duplicate")
        for ws in list(self._pending):
            self._spawn(_close(ws, WSCloseCode.GOING_AWAY, "stopping"))
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def port(self) -> int:
        """The port actually listened on (useful when started with port 0)."""
        if self._runner is None:
            raise RuntimeError("the transport is not started")
        return self._runner.addresses[0][1]

    @property
    def record(self) -> bytes:
        """Our signed address record, re-signed once a day."""
        if self._runner is None:
            raise RuntimeError("the transport is not started")
        if time.time() - self._record_ts > RECORD_REFRESH_S:
            self._sign_record()
        return self._record

    async def dial(self, address: str) -> bytes | None:
        """Connect to `wss://host:port`; the peer's key, or None on failure."""
        for conn in self._connections.values():
            if address in conn.reachable_at:
                return conn.peer
        task = self._dialling.get(address)
        if task is None:
            task = asyncio.create_task(self._dial(address))
            self._dialling[address] = task
            task.add_done_callback(lambda _: self._dialling.pop(address, None))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.cancelled():  # stopped while dialling
                return None
            raise

    def send(self, peer: bytes, frame: bytes) -> bool:
        """Queue `frame` for `peer`; False if not connected or the queue is full."""
        conn = self._connections.get(peer)
        if conn is None:
            return False
        full = conn.queue.qsize() >= self._queue_frames
        if full or len(frame) > self._max_frame_bytes:
            conn.dropped += 1
            return False
        conn.queue.put_nowait(frame)
        return True

    def disconnect(self, peer: bytes, reason: str) -> None:
        """Close the connection to `peer`, if any, telling on_disconnected."""
        conn = self._connections.get(peer)
        if conn is not None:
            self._unregister(conn, reason)
            self._shut(conn, WSCloseCode.GOING_AWAY, reason)

    def connections(self) -> dict[bytes, ConnectionInfo]:
        """A snapshot of every connected peer."""
        return {peer: conn.info() for peer, conn in self._connections.items()}

    async def _accept(self, request: web.Request) -> web.WebSocketResponse:
        """Serve one inbound socket: handshake, then read until it closes."""
        ws = web.WebSocketResponse(
            max_msg_size=self._max_frame_bytes, heartbeat=HEARTBEAT_S
        )
        await ws.prepare(request)
        remote = _remote(ws)
        self._pending.add(ws)
        try:
            result = await self._server_handshake(ws)
        except HandshakeRefused as exc:
            # Keyed by IP, not ip:port, so a redialling node is logged once.
            self._note_refused(request.remote or remote, exc.reason, outbound=False)
            await _close(ws, CLOSE_REFUSED, exc.reason)
            return ws
        finally:
            self._pending.discard(ws)
        self._failures.forget(request.remote or remote)
        await self._read(self._adopt(result, ws, False, None, remote))
        return ws

    async def _server_handshake(self, ws: web.WebSocketResponse) -> HandshakeResult:
        handshake = ServerHandshake(
            self._key, self._roster, self.record, self._cert_sha256
        )
        try:
            async with asyncio.timeout(self._handshake_timeout_s):
                await ws.send_bytes(handshake.reply(await _receive_binary(ws)))
                result = handshake.accept(await _receive_binary(ws))
                await ws.send_bytes(ACCEPTED)
        except TimeoutError:
            raise HandshakeRefused("timeout") from None
        except (ConnectionError, aiohttp.ClientError):
            raise HandshakeRefused("connection_lost") from None
        return result

    async def _dial(self, address: str) -> bytes | None:
        try:
            split_address(address)
        except ValueError:
            self._note_dial_failed(address, "bad_address")
            return None
        ws = await self._connect(address)
        if ws is None:
            return None
        self._pending.add(ws)
        try:
            result = await self._client_handshake(ws)
        except _AlreadyDialled as exc:  # reached by another of its addresses
            await _close(ws, CLOSE_DUPLICATE, "duplicate")
            return exc.peer
        except HandshakeRefused as exc:
            self._note_refused(address, exc.reason, outbound=True)
            await _close(ws, CLOSE_REFUSED, exc.reason)
            return None
        finally:
            self._pending.discard(ws)
        self._failures.forget(address)
        remote = _remote(ws)
        self._spawn(self._read(self._adopt(result, ws, True, address, remote)))
        return result.peer_key

    async def _connect(self, address: str) -> aiohttp.ClientWebSocketResponse | None:
        """Open the TLS WebSocket to `address`; None (logged) if unreachable."""
        if self._session is None:
            raise RuntimeError("the transport is not started")
        try:
            async with asyncio.timeout(self._handshake_timeout_s):
                return await self._session.ws_connect(
                    address.rstrip("/") + WS_PATH,
                    ssl=tls.client_context(),
                    max_msg_size=self._max_frame_bytes,
                    heartbeat=HEARTBEAT_S,
                )
        except TimeoutError:
            self._note_dial_failed(address, "unreachable: timeout")
        except (aiohttp.ClientError, OSError) as exc:
            self._note_dial_failed(address, f"unreachable: {type(exc).__name__}")
        return None

    async def _client_handshake(
        self, ws: aiohttp.ClientWebSocketResponse
    ) -> HandshakeResult:
        ssl_object = ws.get_extra_info("ssl_object")
        if ssl_object is None:
            raise HandshakeRefused("no_tls")
        cert_sha256 = tls.certificate_sha256(ssl_object.getpeercert(binary_form=True))
        handshake = ClientHandshake(self._key, self._roster, self.record)
        try:
            async with asyncio.timeout(self._handshake_timeout_s):
                await ws.send_bytes(handshake.hello())
                reply = await _receive_binary(ws)
                finish = handshake.finish(reply, cert_sha256)
                if self._dialled_already(handshake.server_key):
                    raise _AlreadyDialled(handshake.server_key)
                await ws.send_bytes(finish)
                return handshake.accepted(await _receive_binary(ws))
        except TimeoutError:
            raise HandshakeRefused("timeout") from None
        except (ConnectionError, aiohttp.ClientError):
            raise HandshakeRefused("connection_lost") from None

    def _adopt(
        self,
        result: HandshakeResult,
        ws: _Socket,
        outbound: bool,
        address: str | None,
        remote: str,
    ) -> _Connection:
        """Register an authenticated socket; a losing duplicate is retired."""
        # No await from here to the end: the check and the insert are atomic.
        peer = result.peer_key
        conn = _Connection(peer, ws, outbound, address, remote)
        record = self._checked_record(result)
        if record is not None:
            conn.reachable_at.update(record.addrs)
        existing = self._connections.get(peer)
        if existing is not None and existing.outbound != outbound:
            log.debug("duplicate_connection", peer=peer_id(peer), outbound=outbound)
            if existing.outbound == (self._key.public_key < peer):
                self._retire(conn)
                return conn
            self._swap(existing, conn)
            return conn
        if existing is not None:  # a newer socket the same way: the old is stale
            self._unregister(existing, "superseded")
            self._shut(existing, CLOSE_DUPLICATE, "superseded")
        self._connections[peer] = conn
        conn.writer = self._spawn(self._write(conn))
        log.info(
            "connected",
            peer=peer_id(peer),
            outbound=outbound,
            remote=remote,
            address=address,
        )
        record_bytes = result.peer_record if record is not None else None
        self._call(self._on_connected, peer, outbound, record_bytes)
        return conn

    def _dialled_already(self, peer: bytes | None) -> bytes | None:
        """`peer` if we hold a socket we dialled to it."""
        conn = self._connections.get(peer) if peer else None
        return peer if conn is not None and conn.outbound else None

    def _swap(self, loser: _Connection, winner: _Connection) -> None:
        """Replace a duplicate socket silently, keeping its queued frames."""
        if loser.writer is not None:
            loser.writer.cancel()
        while not loser.queue.empty():
            winner.queue.put_nowait(loser.queue.get_nowait())
        winner.dropped = loser.dropped
        self._connections[winner.peer] = winner
        winner.writer = self._spawn(self._write(winner))
        self._retire(loser)

    def _retire(self, conn: _Connection) -> None:
        """Stop writing to a losing duplicate; close it after LINGER_S."""
        # The peer may have sent frames on it before it saw the winner, and
        # closing at once would discard them: keep reading for a while.
        if conn.writer is not None:
            conn.writer.cancel()
        task = asyncio.get_running_loop().call_later(
            LINGER_S, self._shut, conn, CLOSE_DUPLICATE, "duplicate"
        )
        self._retiring[conn] = task

    def _checked_record(self, result: HandshakeResult) -> AddressRecord | None:
        """The peer's record if it verifies and is the peer's own."""
        record = read_record(result.peer_record, time.time(), self._roster)
        if isinstance(record, AddressRecord) and record.key == result.peer_key:
            return record
        reason = record if isinstance(record, str) else "signed_by_another_key"
        log.debug("peer_record_ignored", peer=peer_id(result.peer_key), reason=reason)
        return None

    async def _read(self, conn: _Connection) -> None:
        """Deliver the peer's frames until the socket closes."""
        code, reason = WSCloseCode.GOING_AWAY, "closed_by_peer"
        try:
            while True:
                message = await conn.ws.receive()
                if message.type is not WSMsgType.BINARY:
                    reason = _close_reason(message, conn.ws)
                    break
                conn.frames_in += 1
                conn.bytes_in += len(message.data)
                self._call(self._on_frame, conn.peer, message.data)
        finally:
            # A close we started ends this loop too: keep our code and reason.
            code, reason = conn.closing or (code, reason)
            self._unregister(conn, reason)
            timer = self._retiring.pop(conn, None)
            if timer is not None:
                timer.cancel()
            await _close(conn.ws, code, reason)

    async def _write(self, conn: _Connection) -> None:
        """Drain the connection's queue onto its socket."""
        try:
            while True:
                frame = await conn.queue.get()
                await conn.ws.send_bytes(frame)
                conn.frames_out += 1
                conn.bytes_out += len(frame)
        except (ConnectionError, aiohttp.ClientError):
            self._unregister(conn, "write_failed")
            self._shut(conn, WSCloseCode.GOING_AWAY, "write_failed")

    def _unregister(self, conn: _Connection, reason: str) -> None:
        """Forget `conn` and tell on_disconnected, if it is the peer's current."""
        if conn.writer is not None and conn.writer is not asyncio.current_task():
            conn.writer.cancel()
        if self._connections.get(conn.peer) is not conn:
            return
        del self._connections[conn.peer]
        log.info("disconnected", peer=peer_id(conn.peer), reason=reason)
        self._call(self._on_disconnected, conn.peer, reason)

    def _shut(self, conn: _Connection, code: int, reason: str) -> None:
        """Close `conn`'s socket in the background, once, with `reason`."""
        if conn.closing is None:
            conn.closing = code, reason
            self._spawn(_close(conn.ws, code, reason))

    def _note_refused(self, where: str, reason: str, outbound: bool) -> None:
        if reason == "duplicate":  # the dialler already has a socket to us
            return
        if self._failures.changed(where, f"handshake_refused: {reason}"):
            log.info(
                "handshake_refused", remote=where, outbound=outbound, reason=reason
            )
        else:
            log.debug(
                "handshake_refused", remote=where, outbound=outbound, reason=reason
            )

    def _note_dial_failed(self, address: str, reason: str) -> None:
        if self._failures.changed(address, reason):
            log.info("dial_failed", address=address, reason=reason)
        else:
            log.debug("dial_failed", address=address, reason=reason)

    def _sign_record(self) -> None:
        addrs = self._advertised
        if not addrs and self._host not in _WILDCARD_HOSTS:
            addrs = (format_address(self._host, self.port),)
        self._record_ts = time.time()
        self._record = make_record(self._key, addrs, self._record_ts)

    def _spawn(self, coroutine: Any) -> asyncio.Task[Any]:
        """Run `coroutine` in a task that stop() waits for."""
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    @staticmethod
    def _call(callback: Callable[..., None], *args: Any) -> None:
        """Call a daemon callback; its bug must not kill the connection."""
        try:
            callback(*args)
        except Exception:
            log.exception("callback_failed", callback=getattr(callback, "__name__", ""))


async def _receive_binary(ws: _Socket) -> bytes:
    """The next handshake message; HandshakeRefused if the peer sent none."""
    message = await ws.receive()
    if message.type is WSMsgType.BINARY:
        return message.data
    if message.type is WSMsgType.CLOSE and message.data == CLOSE_REFUSED:
        raise HandshakeRefused(f"refused_by_peer: {message.extra}")
    if message.type is WSMsgType.CLOSE and message.data == CLOSE_DUPLICATE:
        raise HandshakeRefused("duplicate")
    if message.type is WSMsgType.ERROR and _too_big(message.data):
        raise HandshakeRefused("too_large")
    raise HandshakeRefused("closed_by_peer")


def _close_reason(message: aiohttp.WSMessage, ws: _Socket) -> str:
    """Why the read loop ended, from the message that ended it."""
    if message.type is WSMsgType.ERROR:
        if _too_big(message.data):
            return "frame_too_large"
        return f"error: {type(message.data).__name__}"
    if message.type is WSMsgType.TEXT:
        return "text_frame"
    if message.type is WSMsgType.CLOSE and message.extra:
        return f"closed_by_peer: {message.extra}"
    if ws.close_code == WSCloseCode.MESSAGE_TOO_BIG:
        return "frame_too_large"
    return "closed_by_peer"


def _too_big(error: object) -> bool:
    return getattr(error, "code", None) == WSCloseCode.MESSAGE_TOO_BIG


def _remote(ws: _Socket) -> str:
    peername = ws.get_extra_info("peername")
    if not peername:
        return "unknown"
    return f"{peername[0]}:{peername[1]}"


async def _close(ws: _Socket, code: int, reason: str) -> None:
    """Close `ws`, best effort: the peer may be gone already."""
    try:
        await ws.close(code=code, message=reason.encode()[:120])
    except (TimeoutError, ConnectionError, aiohttp.ClientError):
        pass
