"""Gossip versus flooding, attacks and a partition, on the simulated network.

    python bench/gossip_sim.py --nodes 1000     # the full run (a few minutes)
    python bench/gossip_sim.py --quick          # a small run

Readable lines first; the last line is one JSON object with every figure.
Counting: a "send" is one envelope carried in one frame; "sends per delivery"
divides all payload sends (publish, mesh push, IWANT and catch-up answers) by
the (message, node) pairs delivered. Hops and seconds are quantiles pooled
over all (message, receiver) pairs; an undelivered pair counts as infinite.
Repair bytes are all bytes sent by any node between the heal and 60 s later:
the envelope bytes of messages published during the partition, duplicates
included, plus every control byte (fingerprints, summaries, fetch requests,
and the ordinary mesh upkeep of that minute). `repair_bytes_ratio` divides
that total by the bytes of the messages missed; `repair_message_bytes_ratio`
counts the envelope bytes alone.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import cbor2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from koprogo_node.federation.envelope import message_id  # noqa: E402
from koprogo_node.federation.gossip_sim import (  # noqa: E402
    SimConfig,
    Simulation,
    delivery_report,
)

WARM_UP_S = 10.0
DRAIN_S = 15.0
REPAIR_WINDOW_S = 60.0


def body(n: int) -> dict:
    """A building aggregate of realistic size."""
    return {"building": n, "kwh": 12.5 + n % 7, "lots": 14, "period": "2027-01-01"}


def publish_series(sim: Simulation, origins: list[int], count: int, gap_s: float):
    """Publish `count` messages from random `origins`, `gap_s` apart."""
    pick = random.Random(sim.config.seed + 1)
    ids = []
    for n in range(count):
        ids.append(sim.publish(pick.choice(origins), body(n)))
        sim.run_until(sim.now + gap_s)
    sim.run_until(sim.now + DRAIN_S)
    return ids


def dissemination(nodes: int, messages: int, seed: int, flood: bool) -> dict:
    """Delivery, hops, sends and duplicates for one mode."""
    sim = Simulation(SimConfig(nodes=nodes, seed=seed, flood=flood))
    sim.start()
    sim.run_until(sim.now + WARM_UP_S)
    sends, dups, control = sim.payload_sends(), sim.duplicates(), sim.control_bytes()
    ids = publish_series(sim, list(range(nodes)), messages, 0.2)
    report = delivery_report(sim, ids, list(range(nodes)))
    delivered = report["pairs"] * report["delivered_share"]
    report["sends_per_delivery"] = round((sim.payload_sends() - sends) / delivered, 3)
    report["duplicates_per_node"] = round((sim.duplicates() - dups) / nodes, 2)
    report["duplicates_per_node_per_message"] = round(
        (sim.duplicates() - dups) / nodes / messages, 3
    )
    report["control_bytes_per_delivery"] = round(
        (sim.control_bytes() - control) / delivered, 1
    )
    return report


def attack(nodes: int, messages: int, seed: int) -> dict:
    """20 % droppers and 20 % spammers at once; honest nodes' view."""
    config = SimConfig(nodes=nodes, seed=seed, droppers=0.2, spammers=0.2)
    sim = Simulation(config)
    sim.start()
    sim.run_until(sim.now + WARM_UP_S)
    ids = publish_series(sim, sim.honest, messages, 0.2)
    report = delivery_report(sim, ids, sim.honest)
    spam_keys = {sim.keys[i].public_key for i in sim.spammers}
    worst = 0
    graylisted = total = 0
    for i in sim.honest:
        for peer, stats in sim.routers[i].peer_stats().items():
            if peer in spam_keys:
                worst = max(worst, stats.invalid)
                total += 1
                graylisted += stats.graylisted
    memory: dict[str, int] = {}
    for router in sim.routers:
        for name, size in router.memory().items():
            memory[name] = max(memory.get(name, 0), size)
    return {
        "honest_delivered_share": report["delivered_share"],
        "honest_hops_99_9": report["hops_99_9"],
        "honest_seconds_99_9": report["seconds_99_9"],
        "max_invalid_from_a_spammer": worst,
        "spammer_links_graylisted_share": round(graylisted / max(total, 1), 4),
        "invalid_messages_sent_by_spammers": sim.spam_sent,
        "memory_max": memory,
    }


def partition(nodes: int, seed: int, duration_s: float, interval_s: float) -> dict:
    """Split in two halves for `duration_s`, both publishing; heal; measure."""
    sim = Simulation(SimConfig(nodes=nodes, seed=seed))
    sim.start()
    sim.run_until(sim.now + WARM_UP_S)
    order = list(range(nodes))
    random.Random(seed + 2).shuffle(order)
    half = {i: n < nodes // 2 for n, i in enumerate(order)}
    cross = [(a, b) for a, b in sim.edges if half[a] != half[b]]
    for a, b in cross:
        sim.disconnect(a, b)
    ids = publish_during(sim, nodes, duration_s, interval_s, seed)
    missing = {
        (msg_id, node)
        for msg_id in ids
        for node in range(nodes)
        if node not in sim.messages[msg_id].got_at
    }
    missing_bytes = sum(sim.messages[m].size for m, _ in missing)
    repair = {"bytes": 0}
    wanted = set(ids)

    def count_repair(src: int, dst: int, frame: bytes) -> None:
        data = cbor2.loads(frame)
        for wire in (*data.get("m", ()), *data.get("fm", ())):
            if message_id(wire) in wanted:
                repair["bytes"] += len(wire)

    control = sim.control_bytes()
    heal_at = sim.now
    sim.frame_hook = count_repair
    for a, b in cross:
        sim.connect(a, b)
    sim.run_until(heal_at + REPAIR_WINDOW_S)
    sim.frame_hook = None
    control_bytes = sim.control_bytes() - control
    total = repair["bytes"] + control_bytes
    repaired = [
        sim.messages[m].got_at[n] - heal_at
        for m, n in missing
        if n in sim.messages[m].got_at
    ]
    return {
        "nodes": nodes,
        "partition_s": duration_s,
        "messages_during_partition": len(ids),
        "missed_pairs": len(missing),
        "repaired_share": round(len(repaired) / max(len(missing), 1), 6),
        "seconds_to_repair": round(max(repaired, default=0.0), 3),
        "missing_bytes": missing_bytes,
        "repair_message_bytes": repair["bytes"],
        "repair_control_bytes": control_bytes,
        "repair_bytes_ratio": round(total / max(missing_bytes, 1), 4),
        "repair_message_bytes_ratio": round(repair["bytes"] / max(missing_bytes, 1), 4),
    }


def publish_during(
    sim: Simulation, nodes: int, duration_s: float, interval_s: float, seed: int
) -> list[bytes]:
    """Every node publishes every `interval_s`, at its own phase."""
    phase = random.Random(seed + 3)
    start = sim.now
    schedule = sorted(
        (start + phase.uniform(0, interval_s) + k * interval_s, node)
        for node in range(nodes)
        for k in range(int(duration_s // interval_s))
    )
    ids = []
    for at, node in schedule:
        sim.run_until(at)
        ids.append(sim.publish(node, body(len(ids))))
    sim.run_until(start + duration_s)
    return ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--partition-nodes", type=int, default=200)
    parser.add_argument("--partition-s", type=float, default=3600.0)
    parser.add_argument("--publish-every-s", type=float, default=900.0)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.nodes, args.messages, args.partition_nodes = 100, 20, 60
    started = time.monotonic()
    result: dict = {"nodes": args.nodes, "messages": args.messages}
    for mode in ("gossip", "flood"):
        result[mode] = dissemination(
            args.nodes, args.messages, args.seed, mode == "flood"
        )
        print(f"{mode}: {result[mode]}", flush=True)
    result["attack"] = attack(args.nodes, args.messages, args.seed)
    print(f"attack: {result['attack']}", flush=True)
    result["partition"] = partition(
        args.partition_nodes, args.seed, args.partition_s, args.publish_every_s
    )
    print(f"partition: {result['partition']}", flush=True)
    result["wall_s"] = round(time.monotonic() - started, 1)
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
