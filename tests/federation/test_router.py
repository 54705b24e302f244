"""The sans-I/O router, driven by hand-made peers and a tiny test network."""

import random
from collections import deque
from dataclasses import replace

import cbor2
import pytest
from nacl.signing import SigningKey

from koprogo_node.federation.envelope import message_id, seal
from koprogo_node.federation.identity import NodeKey
from koprogo_node.federation.router import (
    Deliver,
    Disconnect,
    PeerExchange,
    Router,
    RouterParams,
    Send,
)
from koprogo_node.federation.wire import Frame, Prune, decode_frame, encode_frame

NOW = 1_800_000_000.0
TOPIC = "aggregates/15m"
PARAMS = RouterParams()


def key(n: int) -> NodeKey:
    return NodeKey(SigningKey(bytes([n + 1]) * 32))


KEYS = [key(n) for n in range(20)]
ROSTER = {k.public_key for k in KEYS}


def router(n: int, params: RouterParams = PARAMS) -> Router:
    return Router(KEYS[n].public_key, [TOPIC], params, ROSTER, rng=random.Random(n))


def wire(origin: int, seq: int, ts: float = NOW) -> bytes:
    return seal(KEYS[origin], TOPIC, seq, ts, {"seq": seq})


def bad_signature(origin: int, seq: int) -> bytes:
    encoded, signature = cbor2.loads(wire(origin, seq))
    return cbor2.dumps([encoded, bytes(64)])


def frames_to(actions, peer: bytes) -> list[Frame]:
    return [
        decode_frame(a.frame) for a in actions if type(a) is Send and a.peer == peer
    ]


def delivered(actions) -> list[bytes]:
    return [a.wire for a in actions if type(a) is Deliver]


def hello(r: Router, peer: int, now: float = NOW) -> list:
    """Connect hand-made peer `peer` to `r`, subscribed to the topic."""
    actions = r.peer_connected(KEYS[peer].public_key, now, outbound=True)
    greet = encode_frame(Frame(subscribe=((TOPIC, True),)))
    return actions + r.frame_received(KEYS[peer].public_key, greet, now)


class Net:
    """Routers wired directly: frames are handed over in order, no latency."""

    def __init__(self, count: int, params: RouterParams = PARAMS) -> None:
        self.routers = [router(n, params) for n in range(count)]
        self.index = {KEYS[n].public_key: n for n in range(count)}
        self.queue: deque = deque()
        self.got: list[list[bytes]] = [[] for _ in range(count)]
        self.silent: set[int] = set()  # nodes whose frames are lost
        self.sent: list[tuple[int, int, Frame]] = []

    def connect_all(self, now: float = NOW) -> None:
        n = len(self.routers)
        for a in range(n):
            for b in range(a + 1, n):
                self.connect(a, b, now)

    def connect(self, a: int, b: int, now: float = NOW) -> None:
        ka, kb = KEYS[a].public_key, KEYS[b].public_key
        self.act(a, self.routers[a].peer_connected(kb, now, True, b"rec%d" % a))
        self.act(b, self.routers[b].peer_connected(ka, now, False, b"rec%d" % b))
        self.run(now)

    def act(self, node: int, actions) -> None:
        for action in actions:
            if type(action) is Send and node not in self.silent:
                dst = self.index[action.peer]
                self.sent.append((node, dst, decode_frame(action.frame)))
                self.queue.append((node, dst, action.frame))
            elif type(action) is Deliver:
                self.got[node].append(action.wire)

    def run(self, now: float = NOW) -> None:
        while self.queue:
            src, dst, frame = self.queue.popleft()
            actions = self.routers[dst].frame_received(KEYS[src].public_key, frame, now)
            self.act(dst, actions)

    def heartbeats(self, count: int, now: float = NOW) -> float:
        for _ in range(count):
            now += 1.0
            for n, r in enumerate(self.routers):
                self.act(n, r.heartbeat(now))
            self.run(now)
        return now


def test_mesh_reaches_d_and_stays_within_bounds():
    """Heartbeats graft up to D and keep every mesh within D_lo..D_hi."""
    net = Net(16)
    net.connect_all()

    net.act(0, net.routers[0].heartbeat(NOW + 1))
    first = len(net.routers[0].mesh(TOPIC))
    net.run()
    net.heartbeats(10)
    sizes = [len(r.mesh(TOPIC)) for r in net.routers]

    assert first == 6
    assert all(PARAMS.d_lo <= size <= PARAMS.d_hi for size in sizes)


def test_graft_during_backoff_is_refused_and_penalised():
    """A GRAFT right after a PRUNE is answered with PRUNE and costs score."""
    r = router(0)
    hello(r, 1)
    peer = KEYS[1].public_key
    r.frame_received(peer, encode_frame(Frame(prune=(Prune(TOPIC, 60),))), NOW)

    actions = r.frame_received(peer, encode_frame(Frame(graft=(TOPIC,))), NOW + 1)

    assert [p.topic for f in frames_to(actions, peer) for p in f.prune] == [TOPIC]
    assert peer not in r.mesh(TOPIC)
    assert r.peer_stats()[peer].score == pytest.approx(-5.0)


def test_prune_of_oversubscribed_mesh_carries_px_records():
    """Pruning a mesh above D_hi offers the records of other good peers."""
    net = Net(15)
    net.connect_all()
    hub = net.routers[0]
    for n in range(1, 15):
        graft = encode_frame(Frame(graft=(TOPIC,)))
        hub.frame_received(KEYS[n].public_key, graft, NOW)
    assert len(hub.mesh(TOPIC)) == 14

    actions = hub.heartbeat(NOW + 1)
    prunes = [
        (a.peer, p)
        for a in actions
        if type(a) is Send
        for p in decode_frame(a.frame).prune
    ]

    assert len(hub.mesh(TOPIC)) == PARAMS.d
    assert len(prunes) == 14 - PARAMS.d
    peer, prune = prunes[0]
    assert prune.backoff_s == 60 and len(prune.records) == 13
    assert b"rec%d" % net.index[peer] not in prune.records


def test_px_is_accepted_only_from_peers_with_good_score():
    """PRUNE records become a PeerExchange unless the sender's score is negative."""
    r = router(0)
    hello(r, 1)
    hello(r, 2)
    px = encode_frame(Frame(prune=(Prune(TOPIC, 60, (b"addr",)),)))
    r.frame_received(KEYS[2].public_key, encode_frame(Frame(messages=(b"x",))), NOW)

    good = r.frame_received(KEYS[1].public_key, px, NOW)
    bad = r.frame_received(KEYS[2].public_key, px, NOW)

    assert good == [PeerExchange(KEYS[1].public_key, (b"addr",))]
    assert bad == []


def test_ihave_iwant_exchange_repairs_a_message():
    """An IHAVE for an unknown id is answered with IWANT and then the message."""
    net = Net(2)
    message = wire(0, 0)
    net.connect(0, 1)
    net.silent.add(0)  # the published copy is lost on the way
    net.act(0, net.routers[0].publish(message, NOW))
    net.silent.clear()
    ihave = encode_frame(Frame(ihave=((TOPIC, (message_id(message),)),)))

    net.act(1, net.routers[1].frame_received(KEYS[0].public_key, ihave, NOW))
    iwants = [f.iwant for s, d, f in net.sent if s == 1 and f.iwant]
    net.run()

    assert iwants == [(message_id(message),)]
    assert net.got[1] == [message]


def test_broken_promise_lowers_score():
    """A peer that announces a message and never sends it loses score."""
    r = router(0)
    hello(r, 1)
    peer = KEYS[1].public_key
    ihave = encode_frame(Frame(ihave=((TOPIC, (bytes(32),)),)))
    r.frame_received(peer, ihave, NOW)

    r.heartbeat(NOW + 2)
    before = r.peer_stats()[peer].broken_promises
    r.heartbeat(NOW + 4)
    stats = r.peer_stats()[peer]

    assert (before, stats.broken_promises) == (0, 1)
    assert stats.score < 0


def test_spammer_is_graylisted_within_ten_invalid_messages():
    """Invalid messages sink the sender below the graylist threshold fast."""
    r = router(0)
    hello(r, 1)
    peer = KEYS[1].public_key
    spam = tuple(bad_signature(1, seq) for seq in range(100))

    r.frame_received(peer, encode_frame(Frame(messages=spam)), NOW)
    after_first = r.peer_stats()[peer].invalid
    r.frame_received(peer, encode_frame(Frame(messages=spam[:1])), NOW)
    stats = r.peer_stats()[peer]

    assert after_first == 3
    assert stats.invalid == 3 and stats.graylisted
    assert r.counters.frames_ignored == 1


def test_message_is_never_sent_back_to_its_sender():
    """A forwarded message goes to the other mesh peers, not to its sender."""
    net = Net(3)
    net.connect_all()
    net.heartbeats(2)
    net.sent.clear()
    message = wire(0, 0)

    net.act(0, net.routers[0].publish(message, NOW + 3))
    net.run(NOW + 3)
    carried = [(s, d) for s, d, f in net.sent if message in f.messages]

    assert sorted(carried) == [(0, 1), (0, 2), (1, 2), (2, 1)]


def test_each_message_is_delivered_exactly_once():
    """Copies by mesh, gossip and catch-up never deliver a message twice."""
    net = Net(4)
    net.connect_all()
    net.heartbeats(2)
    message = wire(0, 0)

    net.act(0, net.routers[0].publish(message, NOW + 3))
    net.run(NOW + 3)
    net.heartbeats(40, NOW + 3)  # includes periodic summary exchanges
    late = net.routers[1].frame_received(
        KEYS[2].public_key, encode_frame(Frame(fetched=(message,))), NOW + 500
    )

    assert net.got == [[], [message], [message], [message]]
    assert delivered(late) == []


def test_duplicate_with_bad_signature_counts_as_duplicate():
    """Duplicates are caught before the signature check, so no penalty."""
    r = router(0)
    hello(r, 1)
    hello(r, 2)
    forged = bad_signature(3, 0)
    r.frame_received(KEYS[1].public_key, encode_frame(Frame(messages=(forged,))), NOW)

    r.frame_received(KEYS[2].public_key, encode_frame(Frame(messages=(forged,))), NOW)
    first, second = (
        r.peer_stats()[KEYS[1].public_key],
        r.peer_stats()[KEYS[2].public_key],
    )

    assert (first.invalid, first.duplicates) == (1, 0)
    assert (second.invalid, second.duplicates) == (0, 1)


def test_roster_is_checked_before_signature():
    """A stranger's message with a bad signature is ignored, not penalised."""
    r = router(0)
    hello(r, 1)
    stranger = NodeKey(SigningKey(bytes([99]) * 32))
    encoded, _ = cbor2.loads(seal(stranger, TOPIC, 0, NOW, {}))
    forged = cbor2.dumps([encoded, bytes(64)])

    r.frame_received(KEYS[1].public_key, encode_frame(Frame(messages=(forged,))), NOW)

    assert r.peer_stats()[KEYS[1].public_key].invalid == 0
    assert r.counters.ignored_received == 1


def test_stale_message_is_ignored_before_signature():
    """A message outside the time window is refused before its signature."""
    r = router(0)
    hello(r, 1)
    old = wire(2, 0, ts=NOW - 30 * 86_400)

    actions = r.frame_received(
        KEYS[1].public_key, encode_frame(Frame(messages=(old,))), NOW
    )

    assert delivered(actions) == [] and r.counters.ignored_received == 1


@pytest.mark.parametrize(
    "frame",
    [
        b"",
        b"\xff",
        cbor2.dumps({"m": [b"\x00" * 10]}),
        cbor2.dumps({"y": [True, [[b"x" * 32, [[0, 2**70]]]]]}),
        cbor2.dumps({"ih": [["t", [1, 2]]]}),
        cbor2.dumps({"p": "nope"}),
        b"\x9f" * 5000,
        cbor2.dumps({"fm": [cbor2.dumps([b"a", b"b"])]}),
        bytes(2 * 1024 * 1024),
    ],
)
def test_malformed_frames_never_raise(frame):
    """Garbage costs the sender score; the router keeps working."""
    r = router(0)
    hello(r, 1)

    actions = r.frame_received(KEYS[1].public_key, frame, NOW)

    assert actions == []
    assert r.peer_stats()[KEYS[1].public_key].invalid == 1


def _holding(n: int, seqs) -> Router:
    r = router(n)
    for seq in seqs:
        r.frame_received(KEYS[9].public_key, b"", NOW)  # unknown peer: ignored
        hello(r, 9)
        r.frame_received(
            KEYS[9].public_key, encode_frame(Frame(fetched=(wire(5, seq),))), NOW
        )
        r.peer_disconnected(KEYS[9].public_key, NOW)
    return r


def test_catch_up_fetches_only_missing_messages():
    """After connecting, a node asks for exactly the numbers it lacks."""
    net = Net(2)
    net.routers[0] = _holding(0, range(10))
    net.routers[1] = _holding(1, [0, 1, 2, 3, 4, 7])

    net.connect(0, 1)
    asked = [f.fetch for s, d, f in net.sent if s == 1 and f.fetch]

    assert asked == [((KEYS[5].public_key, ((5, 6), (8, 9))),)]
    assert net.routers[0].counters.fetched_sent == 4
    assert net.routers[1].held() == {KEYS[5].public_key: 9}
    assert len(net.got[1]) == 4


def test_fetch_goes_to_another_peer_after_timeout():
    """A fetch nobody answers is asked again of another holder, once."""
    net = Net(3)
    net.routers[0] = _holding(0, range(3))
    net.routers[1] = _holding(1, range(3))
    net.silent.add(0)  # node 0 advertises nothing and answers nothing...
    net.connect(0, 2)
    net.silent.clear()
    net.routers[2].frame_received(  # ...until its summary arrives by hand
        KEYS[0].public_key,
        encode_frame(Frame(sync=(False, ((KEYS[5].public_key, ((0, 2),)),)))),
        NOW,
    )
    net.silent.add(0)
    net.connect(1, 2)
    fetched_before = net.routers[1].counters.fetched_sent

    net.heartbeats(6)

    assert fetched_before == 0
    assert net.routers[1].counters.fetched_sent == 3
    assert len(net.got[2]) == 3
    assert net.routers[2].peer_stats()[KEYS[0].public_key].broken_promises == 1


def test_equal_fingerprints_skip_the_summary_exchange():
    """Peers holding the same messages swap a fingerprint and nothing more."""
    net = Net(2)
    net.routers[0] = _holding(0, range(5))
    net.routers[1] = _holding(1, range(5))

    net.connect(0, 1)
    net.heartbeats(3)
    fingerprints = [f.fingerprint for s, d, f in net.sent if f.fingerprint]

    assert len(fingerprints) == 2
    assert not any(f.want_summary or f.sync or f.fetch for _, _, f in net.sent)


def _announce(r: Router, peers, announced: bytes) -> list[int]:
    """Feed the same fingerprint from each peer; which ones `r` asks detail of."""
    asked = []
    for peer in peers:
        hello(r, peer)
        frame = encode_frame(Frame(fingerprint=(announced, False)))
        actions = r.frame_received(KEYS[peer].public_key, frame, NOW)
        if any(f.want_summary for f in frames_to(actions, KEYS[peer].public_key)):
            asked.append(peer)
    return asked


def test_detail_is_asked_of_one_peer_at_a_time():
    """Three peers announce the same new set; only one is asked for detail."""
    r = router(0)

    asked = _announce(r, [1, 2, 3], bytes(16))

    assert asked == [1]


def test_detail_is_asked_of_another_peer_when_the_first_stays_silent():
    """No summary within the fetch timeout: the next peer is asked."""
    r = router(0)
    _announce(r, [1, 2], bytes(16))

    early = r.heartbeat(NOW + 1)
    late = r.heartbeat(NOW + PARAMS.fetch_timeout_s + 1)

    assert not any(f.want_summary for f in frames_to(early, KEYS[2].public_key))
    assert any(f.want_summary for f in frames_to(late, KEYS[2].public_key))


def test_detail_is_not_asked_again_for_a_set_already_absorbed():
    """After fetching one peer's set, others announcing it are not asked."""
    net = Net(4)
    for n in range(3):
        net.routers[n] = _holding(n, range(4))
    net.routers[3].publish(wire(3, 0), NOW)  # so node 3 ends with more

    for n in range(3):  # all three links come up before any frame moves
        k3, kn = KEYS[3].public_key, KEYS[n].public_key
        net.act(n, net.routers[n].peer_connected(k3, NOW, True))
        net.act(3, net.routers[3].peer_connected(kn, NOW, False))
    net.run()
    net.heartbeats(8)
    asked = [d for s, d, f in net.sent if s == 3 and f.want_summary]

    assert len(asked) == 1
    assert net.routers[3].held()[KEYS[5].public_key] == 3


def test_fan_out_is_wide_near_the_origin_and_narrow_further_out():
    """Hop 1 pushes to every mesh peer, hop 3 to d_eager, hop 6 to nobody."""
    params = replace(PARAMS, wide_share=0.5)  # 8 peers of a 20-node roster
    net = Net(9, params)
    net.connect_all()
    net.heartbeats(3)
    r, source = net.routers[0], KEYS[8].public_key
    mesh = r.mesh(TOPIC) - {source}

    def forwarded(message: bytes, sender_hop: int) -> tuple[int, int]:
        frame = encode_frame(Frame(messages=(message,), hops=(sender_hop,)))
        actions = r.frame_received(source, frame, NOW + 4)
        sent = [decode_frame(a.frame) for a in actions if type(a) is Send]
        pushes = sum(message in f.messages for f in sent)
        return pushes, sum(1 for f in sent if f.ihave)

    assert forwarded(wire(7, 0), 0) == (len(mesh), 0)
    assert forwarded(wire(7, 1), 2) == (
        params.d_eager,
        len(mesh) - params.d_eager,
    )
    assert forwarded(wire(7, 2), 5) == (0, 0)


def test_caches_stay_bounded_under_ten_thousand_spam_messages():
    """Valid floods, invalid floods and IHAVE floods all hit hard caps."""
    params = replace(
        PARAMS, seen_max=1000, store_max_messages=200, max_promises_per_peer=300
    )
    r = router(0, params)
    for n in range(1, 11):
        hello(r, n)
    flood = [wire(1, seq) for seq in range(0, 10_000, 2)]  # holes everywhere
    for start in range(0, len(flood), 200):
        batch = tuple(flood[start : start + 200])
        r.frame_received(KEYS[2].public_key, encode_frame(Frame(messages=batch)), NOW)
    for n in range(3, 11):
        ids = tuple(bytes([n, i % 256, i // 256]) + bytes(29) for i in range(5000))
        ihave = encode_frame(Frame(ihave=((TOPIC, ids),)))
        r.frame_received(KEYS[n].public_key, ihave, NOW)
        junk = tuple(bytes([n, i % 256]) * 20 for i in range(200))
        r.frame_received(KEYS[n].public_key, encode_frame(Frame(messages=junk)), NOW)
    memory = r.memory()

    assert memory["seen"] <= 1000
    assert memory["store"] == 200
    assert memory["max_peer_promises"] <= 300
    assert memory["asked"] <= 8 * 300
    assert len(r.peer_stats()) == 10


def test_banned_peer_is_disconnected_and_refused_until_unbanned():
    """Ban disconnects and refuses reconnects; unban lets the peer back."""
    r = router(0)
    hello(r, 1)
    peer = KEYS[1].public_key

    banned = r.ban(peer, NOW)
    refused = r.peer_connected(peer, NOW, outbound=False)
    r.unban(peer)
    welcomed = r.peer_connected(peer, NOW, outbound=False)

    assert banned == refused == [Disconnect(peer, "banned")]
    assert [type(a) for a in welcomed] == [Send]
