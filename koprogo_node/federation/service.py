"""The federation inside the daemon: router, transport, discovery, ledger.

The router decides (sans-I/O); this module carries its decisions out. Events
from the transport go to the router and the actions it returns are executed
here: frames are sent, valid messages reach the ledger, peers offered by
peer exchange are dialled. A heartbeat task drives the router's timers,
publishes the building's closed buckets through the privacy gate, and picks
up a new roster or ban list written by the CLI.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import structlog

from ..config.model import Config
from ..core.rollups import Tier
from ..errors import ConfigError
from ..files import replace_file
from ..ledger import query
from ..ledger.writer import LedgerWriter
from . import roster as rosters
from .aggregates import (
    TIERS,
    TOPICS,
    PrivacyGate,
    check_body,
    contributions,
    tier_name,
)
from .bans import BANS_FILE, read_bans
from .discovery import Bootstrap, LanDiscovery
from .envelope import Envelope, message_id, seal
from .identity import NodeKey, peer_id, public_key_of
from .records import read_record
from .router import Deliver, Disconnect, PeerExchange, Router, RouterParams, Send
from .transport import Transport

log = structlog.get_logger(__name__)

ROSTER_TOPIC = "koprogo/roster/v1"
SEQ_FILE = "gossip_seq"
PUBLISH_EVERY_S = 5.0
REMOTE_KEPT = 200  # latest aggregates kept in memory per origin, for the API


@dataclass
class RemoteBuilding:
    """What we last heard from another building."""

    peer: str
    last_message_s: float = 0.0
    messages: int = 0
    meta: dict | None = None


class LiveRoster:
    """The current roster; replaced in place when a newer one arrives."""

    def __init__(self, current: rosters.Roster) -> None:
        self.current = current

    def __contains__(self, key: object) -> bool:
        return key in self.current

    def __len__(self) -> int:
        return len(self.current.admitted())  # the router sizes its fan-out on it


class FederationService:
    """Runs gossip for one node until `stop()`."""

    def __init__(
        self,
        config: Config,
        data_dir: Path,
        key: NodeKey,
        writer: LedgerWriter,
        wall: Callable[[], float] = time.time,
    ) -> None:
        fed = config.federation
        self.config = config
        self.data_dir = data_dir
        self.key = key
        self.writer = writer
        self.wall = wall  # envelopes carry real time, even under a fast demo clock
        self.federation_key = bytes.fromhex(fed.federation_key)
        self.roster = LiveRoster(read_roster_file(config, data_dir))
        self.gate = PrivacyGate(config.building, fed.privacy)
        self.params = RouterParams()
        self.router = Router(
            key.public_key,
            [*TOPICS.values(), ROSTER_TOPIC],
            self.params,
            self.roster,
            check=self._check,
        )
        self.transport = Transport(
            key,
            self.roster,
            data_dir / "tls",
            fed.host,
            fed.port,
            on_connected=self._connected,
            on_frame=self._frame,
            on_disconnected=self._disconnected,
            advertised=fed.advertise,
        )
        self.remote: dict[bytes, RemoteBuilding] = {}
        self.withheld: dict[str, int] = {}
        self.published = 0
        self._seq = _read_int(data_dir / SEQ_FILE)
        self._next_bucket: dict[Tier, int] = {}
        self._file_stamps: dict[str, float] = {}
        self._bans: set[bytes] = set()
        self._tasks: list[asyncio.Task] = []
        self._bootstrap: Bootstrap | None = None
        self._lan: LanDiscovery | None = None

    # lifecycle

    async def start(self) -> None:
        """Listen, load our history, then start dialling and the heartbeat."""
        await self.transport.start()
        await self._load_progress()
        self._reload_bans()
        fed = self.config.federation
        if fed.bootstrap:
            self._bootstrap = Bootstrap(
                fed.bootstrap, self.transport.dial, self._is_connected
            )
            await self._bootstrap.start()
        if fed.lan_discovery:
            self._lan = LanDiscovery(
                self.key.peer_id, self.transport.port, self._discovered
            )
            await self._lan.start()
        heartbeat = asyncio.create_task(self._heartbeat(), name="gossip")
        heartbeat.add_done_callback(_report_failure)
        self._tasks.append(heartbeat)
        log.info(
            "federation_started",
            port=self.transport.port,
            roster_serial=self.roster.current.serial,
            bootstrap=len(fed.bootstrap),
        )

    async def stop(self) -> None:
        """Stop dialling and close every connection."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for part in (self._bootstrap, self._lan):
            if part is not None:
                await part.stop()
        await self.transport.stop()

    # transport events

    def _connected(self, peer: bytes, outbound: bool, record: bytes | None) -> None:
        if peer in self._bans:
            self.transport.disconnect(peer, "banned")
            return
        self.remote.setdefault(peer, RemoteBuilding(peer_id(peer)))
        self._execute(self.router.peer_connected(peer, self.wall(), outbound, record))

    def _frame(self, peer: bytes, frame: bytes) -> None:
        self._execute(self.router.frame_received(peer, frame, self.wall()))

    def _disconnected(self, peer: bytes, reason: str) -> None:
        self._execute(self.router.peer_disconnected(peer, self.wall()))

    def _is_connected(self, peer: bytes) -> bool:
        return peer in self.transport.connections()

    def _discovered(self, address: str) -> None:
        asyncio.ensure_future(self.transport.dial(address))

    # router actions

    def _execute(self, actions: list) -> None:
        for action in actions:
            if isinstance(action, Send):
                self.transport.send(action.peer, action.frame)
            elif isinstance(action, Deliver):
                self._deliver(action.envelope, action.wire)
            elif isinstance(action, Disconnect):
                self.transport.disconnect(action.peer, action.reason)
            elif isinstance(action, PeerExchange):
                self._exchange(action.records)

    def _deliver(self, envelope: Envelope, wire: bytes) -> None:
        if envelope.topic == ROSTER_TOPIC:
            self._adopt_roster(envelope.body)
            return
        body = envelope.body
        self.writer.add_aggregates([_row(envelope, wire, self.wall())])
        building = self.remote.setdefault(
            envelope.origin, RemoteBuilding(peer_id(envelope.origin))
        )
        building.last_message_s = self.wall()
        building.messages += 1
        building.meta = body["meta"]

    def _exchange(self, records: tuple[bytes, ...]) -> None:
        now = self.wall()
        for blob in records:
            record = read_record(blob, now, self.roster)
            if isinstance(record, str) or record.key == self.key.public_key:
                continue
            connected = self.transport.connections()
            if record.key in connected or record.key in self._bans:
                continue
            for address in record.addrs[:1]:
                asyncio.ensure_future(self.transport.dial(address))

    def _check(self, envelope: Envelope) -> str | None:
        if envelope.topic == ROSTER_TOPIC:
            try:
                rosters.read(envelope.body, self.federation_key)
            except (ConfigError, TypeError):
                return "bad_roster"
            return None
        return check_body(envelope.topic, envelope.body)

    # heartbeat: router timers, publishing, files written by the CLI

    async def _heartbeat(self) -> None:
        interval = self.params.heartbeat_s
        next_publish = 0.0
        while True:
            await asyncio.sleep(interval)
            now = self.wall()
            self._execute(self.router.heartbeat(now))
            self._reload_bans()
            self._reload_roster()
            if now >= next_publish:
                next_publish = now + PUBLISH_EVERY_S
                await self._publish_closed_buckets()

    async def _publish_closed_buckets(self) -> None:
        for name in self.config.federation.publish:
            tier = TIERS[name]
            buckets = await asyncio.to_thread(
                _closed_buckets, self.writer.path, tier, self._next_bucket.get(tier)
            )
            for start_s, rows, units in buckets:
                self._publish_bucket(tier, start_s, rows, units)
                self._next_bucket[tier] = start_s + tier.value

    def _publish_bucket(self, tier: Tier, start_s: int, rows, units) -> None:
        body, withheld = self.gate.body(tier, start_s, contributions(rows), units)
        for item in withheld:
            key = f"{item.family}:{item.reason}"
            self.withheld[key] = self.withheld.get(key, 0) + 1
        if body is None:
            return
        self._publish(TOPICS[tier_name(tier)], body)

    def _publish(self, topic: str, body) -> None:
        self._seq += 1
        _write_int(self.data_dir / SEQ_FILE, self._seq)  # before it can leave
        now = self.wall()
        wire = seal(self.key, topic, self._seq, now, body)
        self._execute(self.router.publish(wire, now))
        if topic != ROSTER_TOPIC:
            envelope = Envelope(topic, self.key.public_key, self._seq, now, body, b"")
            self.writer.add_aggregates([_row(envelope, wire, now)])
        self.published += 1

    async def _load_progress(self) -> None:
        """Continue after the last bucket we published (or the newest one)."""
        progress = await asyncio.to_thread(
            _own_progress, self.writer.path, self.key.public_key
        )
        self._seq = max(self._seq, progress["seq"])
        for name, tier in TIERS.items():
            last = progress["buckets"].get(int(tier))
            if last is not None:
                self._next_bucket[tier] = last + tier.value

    # files the CLI writes

    def _reload_bans(self) -> None:
        path = self.data_dir / BANS_FILE
        if not self._changed(path):
            return
        banned = {public_key_of(p) for p in read_bans(self.data_dir)}
        now = self.wall()
        for peer in banned - self._bans:
            self._execute(self.router.ban(peer, now))
            self.transport.disconnect(peer, "banned")
        for peer in self._bans - banned:
            self.router.unban(peer)
        self._bans = banned

    def _reload_roster(self) -> None:
        path = self.data_dir / self.config.federation.roster
        if not self._changed(path):
            return
        try:
            signed = path.read_bytes()
        except OSError:
            return
        if self._adopt_roster(signed):
            self._publish(ROSTER_TOPIC, signed)  # revocations travel too

    def _adopt_roster(self, signed: bytes) -> bool:
        try:
            candidate = rosters.read(signed, self.federation_key)
        except ConfigError as exc:
            log.warning("roster_refused", reason=str(exc))
            return False
        if not rosters.newer(self.roster.current, candidate):
            return False
        self.roster.current = candidate
        path = self.data_dir / self.config.federation.roster
        replace_file(path, signed)
        self._file_stamps[str(path)] = path.stat().st_mtime
        for peer in list(self.transport.connections()):
            if peer not in self.roster:
                self.transport.disconnect(peer, "revoked")
        log.info("roster_adopted", serial=candidate.serial)
        return True

    def _changed(self, path: Path) -> bool:
        try:
            stamp = path.stat().st_mtime
        except OSError:
            stamp = 0.0
        if self._file_stamps.get(str(path)) == stamp:
            return False
        self._file_stamps[str(path)] = stamp
        return True

    # what the API shows

    def peers(self) -> list[dict]:
        """Every peer seen this run: connection, score, last exchange."""
        connections = self.transport.connections()
        stats = self.router.peer_stats()
        out = []
        for key in set(connections) | set(stats) | self._bans:
            out.append(
                _peer_entry(
                    key,
                    connections.get(key),
                    stats.get(key),
                    self.remote.get(key),
                    key in self._bans,
                    self.roster.current.members.get(key),
                )
            )
        return sorted(out, key=lambda p: p["peer_id"])

    def summary(self) -> dict:
        """Counters for status pages and metrics."""
        return {
            "peer_id": self.key.peer_id,
            "port": self.transport.port,
            "roster_serial": self.roster.current.serial,
            "connected": len(self.transport.connections()),
            "published": self.published,
            "withheld": dict(sorted(self.withheld.items())),
        }


def read_roster_file(config: Config, data_dir: Path) -> rosters.Roster:
    """The roster in the data directory, verified; ConfigError if unusable."""
    path = data_dir / config.federation.roster
    try:
        signed = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"federation is enabled but the roster {path} cannot be read"
            f" ({exc.strerror}); copy the federation's roster.cbor there"
        ) from exc
    return rosters.read(signed, bytes.fromhex(config.federation.federation_key))


def _report_failure(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        error = task.exception()
        log.error("federation_failed", error=repr(error), exc_info=error)


def _peer_entry(key, connection, stats, remote, banned: bool, name) -> dict:
    entry = {
        "peer_id": peer_id(key),
        "name": name,
        "connected": connection is not None,
        "banned": banned,
        "address": getattr(connection, "address", None),
        "outbound": getattr(connection, "outbound", None),
        "connected_since_s": getattr(connection, "connected_since", None),
        "last_message_s": remote.last_message_s if remote else None,
        "messages": remote.messages if remote else 0,
        "meta": remote.meta if remote else None,
    }
    if stats is not None:
        entry.update(
            score=round(stats.score, 3),
            graylisted=stats.graylisted,
            topics=sorted(stats.topics),
            mesh=sorted(stats.in_mesh),
            invalid=stats.invalid,
            broken_promises=stats.broken_promises,
            last_frame_s=stats.last_frame_at,
        )
    return entry


def _row(envelope: Envelope, wire: bytes, received_s: float) -> tuple:
    body = envelope.body
    return (
        message_id(wire),
        envelope.origin,
        envelope.seq,
        int(TIERS[body["tier"]]),
        body["start"],
        int(received_s * 1000),
        json.dumps(body, sort_keys=True, separators=(",", ":")),
        wire,
    )


def _closed_buckets(db_path: Path, tier: Tier, after: int | None) -> list:
    conn = query.open_reader(db_path)
    try:
        return query.closed_buckets(conn, tier, after)
    finally:
        conn.close()


def _own_progress(db_path: Path, origin: bytes) -> dict:
    conn = query.open_reader(db_path)
    try:
        return query.aggregate_progress(conn, origin)
    finally:
        conn.close()


def _read_int(path: Path) -> int:
    try:
        return int(path.read_text())
    except (OSError, ValueError):
        return 0


def _write_int(path: Path, value: int) -> None:
    replace_file(path, str(value).encode())
