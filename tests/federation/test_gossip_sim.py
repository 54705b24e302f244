"""The simulator: real routers on a virtual clock, deterministic per seed."""

import cbor2

from koprogo_node.federation.gossip_sim import SimConfig, Simulation, delivery_report


def run(config: SimConfig, messages: int = 10) -> tuple[Simulation, list[bytes]]:
    sim = Simulation(config)
    sim.start()
    sim.run_until(sim.now + 8)
    ids = []
    for n in range(messages):
        ids.append(sim.publish(sim.honest[n % len(sim.honest)], {"n": n}))
        sim.run_until(sim.now + 0.2)
    sim.run_until(sim.now + 10)
    return sim, ids


def test_hundred_nodes_deliver_everything_deterministically():
    """100 nodes get every message, and the same seed gives the same run."""
    first, ids = run(SimConfig(nodes=100, seed=3))
    again, _ = run(SimConfig(nodes=100, seed=3))

    report = delivery_report(first, ids, list(range(100)))

    assert report["delivered_share"] >= 0.999
    assert [first.messages[i].got_at for i in ids] == [
        again.messages[i].got_at for i in ids
    ]
    assert first.payload_sends() == again.payload_sends()


def test_gossip_sends_far_fewer_copies_than_flooding():
    """The mesh needs under 4 sends per delivery; flooding about the degree."""
    gossip, ids = run(SimConfig(nodes=60, seed=4))
    flood, _ = run(SimConfig(nodes=60, seed=4, flood=True))
    deliveries = 60 * 10 - 10

    assert delivery_report(flood, ids, list(range(60)))["delivered_share"] == 1.0
    assert gossip.payload_sends() / deliveries < 4
    assert flood.payload_sends() / deliveries > 10


def test_honest_nodes_get_messages_despite_droppers_and_spammers():
    """With 20 % droppers and 20 % spammers honest nodes still get it all."""
    sim, ids = run(SimConfig(nodes=60, seed=5, droppers=0.2, spammers=0.2))

    report = delivery_report(sim, ids, sim.honest)
    spam_keys = {sim.keys[i].public_key for i in sim.spammers}
    worst = max(
        stats.invalid
        for i in sim.honest
        for peer, stats in sim.routers[i].peer_stats().items()
        if peer in spam_keys
    )

    assert report["delivered_share"] >= 0.99
    assert 1 <= worst <= 10


def test_partition_is_repaired_after_heal_with_little_extra():
    """Missed messages arrive soon after the heal, each once, and each node
    reads about one full summary however many links come back."""
    sim = Simulation(SimConfig(nodes=30, seed=6))
    sim.start()
    sim.run_until(sim.now + 5)
    cross = [(a, b) for a, b in sim.edges if (a < 15) != (b < 15)]
    for a, b in cross:
        sim.disconnect(a, b)
    ids = []
    for n in range(20):
        ids.append(sim.publish(n, {"n": n}))
        sim.run_until(sim.now + 15)
    missing = [
        (m, n) for m in ids for n in range(30) if n not in sim.messages[m].got_at
    ]
    heal_at = sim.now
    fetched_before = sum(r.counters.fetched_sent for r in sim.routers)
    summaries = []
    sim.frame_hook = lambda src, dst, frame: summaries.extend(
        [dst] if "y" in cbor2.loads(frame) else []
    )
    for a, b in cross:
        sim.connect(a, b)
    sim.run_until(heal_at + 60)

    late = [sim.messages[m].got_at.get(n, 1e30) - heal_at for m, n in missing]
    fetched = sum(r.counters.fetched_sent for r in sim.routers) - fetched_before

    assert len(missing) == 20 * 15
    assert max(late) < 60
    assert fetched <= 1.5 * len(missing)
    assert len(cross) > 100
    assert len(summaries) <= 30
