"""A deterministic simulator of many routers on a virtual clock.

It runs the real `Router` code with real signed envelopes; only the network
is simulated: a heap of timed events, links with a fixed seeded latency each
and an optional loss rate, and heartbeats on the virtual clock. The same seed
gives the same run.

Accounting: a payload send is one envelope carried in one frame (mesh push,
IWANT answer or catch-up answer); everything else in a frame is control
bytes. Routers count both as they encode frames. Deliveries are recorded per
message and node with the time and the hop count (the hop count of the
sender's copy plus one; the origin is hop 0).

Adversaries: droppers run a router but strip every payload and IHAVE from
what they send (they never forward and never answer IWANT or fetches);
spammers behave, and also send each peer a frame of fresh invalid messages
(bad signatures and garbage, alternately) every `spam_interval_s`.
"""

from __future__ import annotations

import heapq
import math
import random
from dataclasses import dataclass, field, replace

import cbor2
from nacl.signing import SigningKey

from .envelope import message_id, seal
from .identity import NodeKey
from .router import Deliver, Disconnect, Router, RouterParams, Send

EPOCH = 1_800_000_000.0
TOPIC = "aggregates/15m"
_ARRIVE, _HEARTBEAT, _SPAM = 0, 1, 2


@dataclass(frozen=True, kw_only=True)
class SimConfig:
    """One simulated federation."""

    nodes: int = 100
    degree: int = 20
    latency_s: tuple[float, float] = (0.02, 0.12)
    loss: float = 0.0
    seed: int = 1
    flood: bool = False
    params: RouterParams = field(default_factory=RouterParams)
    droppers: float = 0.0
    spammers: float = 0.0
    spam_interval_s: float = 1.0
    spam_per_frame: int = 5


@dataclass
class Published:
    """One message and who got it when, at what hop."""

    origin: int
    at: float
    size: int
    got_at: dict[int, float] = field(default_factory=dict)
    hops: dict[int, int] = field(default_factory=dict)


class Simulation:
    """Routers wired by simulated links, driven by a virtual clock."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.now = EPOCH
        self.keys = [_key(self.rng) for _ in range(config.nodes)]
        self.index = {k.public_key: i for i, k in enumerate(self.keys)}
        self.roster = frozenset(self.index)
        params = config.params
        if config.flood:
            params = replace(params, flood=True)
        self.routers = [
            Router(
                k.public_key,
                [TOPIC],
                params,
                self.roster,
                rng=random.Random(self.rng.random()),
            )
            for k in self.keys
        ]
        self._pick_adversaries()
        self.edges = _random_graph(config.nodes, config.degree, self.rng)
        low, high = config.latency_s
        self.latency = {e: self.rng.uniform(low, high) for e in self.edges}
        self.epoch: dict[tuple[int, int], int] = {}  # open links and their epoch
        self.messages: dict[bytes, Published] = {}
        self.seqs = [0] * config.nodes
        self.spam_sent = 0
        self.frame_hook = None  # optional callable(src, dst, frame) for accounting
        self._heap: list[tuple] = []
        self._counter = 0

    # -- set-up --------------------------------------------------------------

    def _pick_adversaries(self) -> None:
        n = self.config.nodes
        order = list(range(n))
        self.rng.shuffle(order)
        d = round(self.config.droppers * n)
        s = round(self.config.spammers * n)
        self.droppers = frozenset(order[:d])
        self.spammers = frozenset(order[d : d + s])
        self.honest = [i for i in range(n) if i not in self.droppers | self.spammers]

    def start(self) -> None:
        """Open every link and schedule heartbeats and spam."""
        for a, b in self.edges:
            self.connect(a, b)
        beat = self.config.params.heartbeat_s
        for i in range(self.config.nodes):
            self._push(self.now + self.rng.uniform(0, beat), _HEARTBEAT, i, 0, None)
        for i in sorted(self.spammers):
            start = self.now + self.rng.uniform(0, self.config.spam_interval_s)
            self._push(start, _SPAM, i, 0, None)

    def connect(self, a: int, b: int) -> None:
        """Open the link a-b (a dials)."""
        edge = (min(a, b), max(a, b))
        if edge in self.epoch:
            return
        self.epoch[edge] = self.epoch.get(edge, 0) + 1 + len(self.epoch)
        ka, kb = self.keys[a].public_key, self.keys[b].public_key
        self._act(a, self.routers[a].peer_connected(kb, self.now, True, ka), None)
        self._act(b, self.routers[b].peer_connected(ka, self.now, False, kb), None)

    def disconnect(self, a: int, b: int) -> None:
        """Close the link a-b; frames in flight on it are lost."""
        edge = (min(a, b), max(a, b))
        if self.epoch.pop(edge, None) is None:
            return
        ka, kb = self.keys[a].public_key, self.keys[b].public_key
        self._act(a, self.routers[a].peer_disconnected(kb, self.now), None)
        self._act(b, self.routers[b].peer_disconnected(ka, self.now), None)

    # -- driving -------------------------------------------------------------

    def publish(self, origin: int, body: object) -> bytes:
        """Seal and publish a message from `origin` now; return its id."""
        seq = self.seqs[origin]
        self.seqs[origin] += 1
        wire = seal(self.keys[origin], TOPIC, seq, self.now, body)
        msg_id = message_id(wire)
        record = Published(origin, self.now, len(wire), {origin: self.now}, {origin: 0})
        self.messages[msg_id] = record
        self._act(origin, self.routers[origin].publish(wire, self.now), None)
        return msg_id

    def run_until(self, until: float) -> None:
        """Process events up to virtual time `until`."""
        heap = self._heap
        while heap and heap[0][0] <= until:
            at, _, kind, a, b, payload = heapq.heappop(heap)
            self.now = at
            if kind == _ARRIVE:
                self._arrive(a, b, payload)
            elif kind == _HEARTBEAT:
                self._act(a, self.routers[a].heartbeat(at), None)
                beat = self.config.params.heartbeat_s
                self._push(at + beat, _HEARTBEAT, a, 0, None)
            else:
                self._spam(a)
        self.now = max(self.now, until)

    def _arrive(self, src: int, dst: int, payload: tuple[int, bytes]) -> None:
        epoch, frame = payload
        if self.epoch.get((min(src, dst), max(src, dst))) != epoch:
            return  # the link closed while the frame was in flight
        key = self.keys[src].public_key
        self._act(dst, self.routers[dst].frame_received(key, frame, self.now), src)

    def _act(self, node: int, actions: list, source: int | None) -> None:
        for action in actions:
            if type(action) is Send:
                self._send(node, self.index[action.peer], action.frame)
            elif type(action) is Deliver:
                self._record(node, action, source)
            elif type(action) is Disconnect:
                self.disconnect(node, self.index[action.peer])

    def _send(self, src: int, dst: int, frame: bytes) -> None:
        edge = (min(src, dst), max(src, dst))
        epoch = self.epoch.get(edge)
        if epoch is None:
            return
        if src in self.droppers:
            frame = _stripped(frame)
            if frame is None:
                return
        if self.config.loss and self.rng.random() < self.config.loss:
            return
        if self.frame_hook is not None:
            self.frame_hook(src, dst, frame)
        at = self.now + self.latency[edge]
        self._push(at, _ARRIVE, src, dst, (epoch, frame))

    def _record(self, node: int, action: Deliver, source: int | None) -> None:
        published = self.messages.get(action.envelope.message_id)
        if published is None or node in published.got_at:
            return
        published.got_at[node] = self.now
        hop = published.hops.get(source, 0) if source is not None else 0
        published.hops[node] = hop + 1

    def _spam(self, node: int) -> None:
        wires = [self._invalid_wire(node) for _ in range(self.config.spam_per_frame)]
        frame = cbor2.dumps({"m": wires})
        for edge in list(self.epoch):
            if node in edge:
                self._send(node, edge[0] if edge[1] == node else edge[1], frame)
        self._push(self.now + self.config.spam_interval_s, _SPAM, node, 0, None)

    def _invalid_wire(self, node: int) -> bytes:
        self.spam_sent += 1
        if self.spam_sent % 2:
            return self.rng.randbytes(120)
        seq = 10**9 + self.spam_sent
        good = seal(self.keys[node], TOPIC, seq, self.now, {"spam": self.spam_sent})
        encoded, signature = cbor2.loads(good)
        return cbor2.dumps([encoded, bytes(64 - len(signature)) + signature[::-1]])

    def _push(self, at: float, kind: int, a: int, b: int, payload) -> None:
        self._counter += 1
        heapq.heappush(self._heap, (at, self._counter, kind, a, b, payload))

    # -- measuring -----------------------------------------------------------

    def payload_sends(self) -> int:
        return sum(
            r.counters.messages_sent + r.counters.fetched_sent for r in self.routers
        )

    def duplicates(self) -> int:
        return sum(r.counters.duplicates_received for r in self.routers)

    def control_bytes(self) -> int:
        return sum(r.counters.control_bytes_sent for r in self.routers)


def delivery_report(
    sim: Simulation, msg_ids: list[bytes], receivers: list[int]
) -> dict[str, float | int | None]:
    """Pooled over (message, receiver) pairs: hops and seconds to 99/99.9 %."""
    hops: list[float] = []
    delays: list[float] = []
    wanted = set(receivers)
    for msg_id in msg_ids:
        published = sim.messages[msg_id]
        for node in wanted:
            if node == published.origin:
                continue
            if node in published.got_at:
                hops.append(published.hops[node])
                delays.append(published.got_at[node] - published.at)
            else:
                hops.append(math.inf)
                delays.append(math.inf)
    hops.sort()
    delays.sort()
    got = sum(1 for h in hops if h != math.inf)
    return {
        "pairs": len(hops),
        "delivered_share": round(got / len(hops), 6) if hops else None,
        "hops_99": _quantile(hops, 0.99),
        "hops_99_9": _quantile(hops, 0.999),
        "seconds_99": _rounded(_quantile(delays, 0.99)),
        "seconds_99_9": _rounded(_quantile(delays, 0.999)),
    }


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    value = values[max(math.ceil(q * len(values)) - 1, 0)]
    return None if value == math.inf else value


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _key(rng: random.Random) -> NodeKey:
    return NodeKey(SigningKey(rng.randbytes(32)))


def _random_graph(n: int, degree: int, rng: random.Random) -> list[tuple[int, int]]:
    """A ring (so the graph is connected) plus random links, mean `degree`."""
    edges = {(min(i, (i + 1) % n), max(i, (i + 1) % n)) for i in range(n) if n > 1}
    target = min(n * degree // 2, n * (n - 1) // 2)
    while len(edges) < target:
        a, b = rng.randrange(n), rng.randrange(n)
        if a != b:
            edges.add((min(a, b), max(a, b)))
    return sorted(edges)


def _stripped(frame: bytes) -> bytes | None:
    """What a dropper still sends: control without payloads or IHAVE."""
    try:
        data = cbor2.loads(frame)
    except Exception:
        return None
    for key in ("m", "mh", "fm", "ih"):
        data.pop(key, None)
    return cbor2.dumps(data) if data else None
