"""Bounded router memories: seen ids, held sequence ranges, stored messages."""

from koprogo_node.federation.store import (
    HeldSeqs,
    MessageCache,
    MessageStore,
    SeenCache,
    SeqRanges,
    Stored,
)

ORIGIN = bytes(32)


def test_seen_cache_forgets_after_ttl():
    """An id is remembered until its time-to-live is over."""
    seen = SeenCache(ttl_s=10, max_entries=100)
    seen.add(b"a", now=0)

    seen.expire(now=9.9)
    kept = b"a" in seen
    seen.expire(now=10)

    assert (kept, b"a" in seen) == (True, False)


def test_seen_cache_drops_oldest_when_full():
    """The cache never holds more than its maximum."""
    seen = SeenCache(ttl_s=10, max_entries=3)
    for n in range(10):
        seen.add(bytes([n]), now=0)

    assert (len(seen), bytes([0]) in seen, bytes([9]) in seen) == (3, False, True)


def test_seq_ranges_merge_and_report_gaps():
    """Adjacent numbers merge into ranges; gaps are reported as missing."""
    ranges = SeqRanges()
    for seq in (0, 1, 2, 5, 3, 9):
        ranges.add(seq)

    assert ranges.ranges() == ((0, 3), (5, 5), (9, 9))
    assert ranges.missing(0, 10, limit=100) == [4, 6, 7, 8, 10]
    assert ranges.missing(0, 10, limit=2) == [4, 6]
    assert ranges.add(5) is False


def test_seq_ranges_give_up_oldest_holes_when_over_cap():
    """With too many holes the oldest are filled rather than kept."""
    ranges = SeqRanges(max_ranges=3)
    for seq in (0, 2, 4, 6, 8):
        ranges.add(seq)

    assert ranges.ranges() == ((0, 4), (6, 6), (8, 8))


def test_held_seqs_cap_origins():
    """Only the most recently extended origins are kept."""
    held = HeldSeqs(max_origins=2)
    for n in range(3):
        held.add(bytes([n]) * 32, 0)

    assert (len(held), held.has(bytes([0]) * 32, 0)) == (2, False)


def test_message_store_evicts_oldest_and_summarises():
    """The store keeps the newest messages and summarises them as ranges."""
    store = MessageStore(max_messages=3)
    for seq in range(5):
        store.add(bytes([seq]) * 32, Stored(ORIGIN, seq, "t", b"w%d" % seq))

    assert len(store) == 3
    assert store.by_seq(ORIGIN, 1) is None
    assert store.by_seq(ORIGIN, 4).wire == b"w4"
    assert store.summary() == ((ORIGIN, ((2, 4),)),)


def test_message_cache_gossips_recent_windows_only():
    """Ids older than the gossip windows are not announced."""
    cache = MessageCache(windows=3, gossip_windows=2, max_per_window=10)
    cache.add("t", b"old")
    cache.shift()
    cache.shift()
    cache.add("t", b"new")

    assert cache.gossip_ids("t") == [b"new"]


def test_fingerprint_does_not_depend_on_arrival_order():
    """Two stores holding the same messages, received in any order, agree."""
    first, second = MessageStore(10), MessageStore(10)
    entries = [
        (bytes([n]) * 32, Stored(bytes([n % 2]) * 32, n, "t", b"")) for n in range(6)
    ]

    for msg_id, stored in entries:
        first.add(msg_id, stored)
    for msg_id, stored in reversed(entries):
        second.add(msg_id, stored)

    assert first.fingerprint() == second.fingerprint()
    second.add(bytes(31) + b"\x09", Stored(bytes(32), 9, "t", b""))
    assert first.fingerprint() != second.fingerprint()
