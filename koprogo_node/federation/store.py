"""Bounded memories of the router: seen ids, held sequence numbers, messages.

Every structure here has a hard cap, so a peer sending spam can make the
router forget things but never grow without limit.
"""

from __future__ import annotations

import bisect
import hashlib
from collections import OrderedDict, deque
from dataclasses import dataclass

import cbor2

from .wire import FINGERPRINT_BYTES, MAX_HOP, MAX_RANGES, Ranges, Summary


class SeenCache:
    """Message ids seen recently, forgotten after `ttl_s` or when full."""

    def __init__(self, ttl_s: float, max_entries: int) -> None:
        self._ttl_s = ttl_s
        self._max = max_entries
        self._expiry: OrderedDict[bytes, float] = OrderedDict()

    def __contains__(self, msg_id: object) -> bool:
        return msg_id in self._expiry

    def __len__(self) -> int:
        return len(self._expiry)

    def add(self, msg_id: bytes, now: float) -> None:
        """Remember `msg_id` until `now + ttl_s`; forget the oldest if full."""
        self._expiry[msg_id] = now + self._ttl_s
        self._expiry.move_to_end(msg_id)
        while len(self._expiry) > self._max:
            self._expiry.popitem(last=False)

    def expire(self, now: float) -> None:
        """Forget ids whose time is up (insertion order is expiry order)."""
        while self._expiry:
            msg_id, expiry = next(iter(self._expiry.items()))
            if expiry > now:
                return
            del self._expiry[msg_id]


class SeqRanges:
    """The sequence numbers of one origin held, as sorted inclusive ranges."""

    def __init__(self, max_ranges: int = MAX_RANGES) -> None:
        self._max = max_ranges
        self._lows: list[int] = []
        self._highs: list[int] = []

    def __contains__(self, seq: object) -> bool:
        i = bisect.bisect_right(self._lows, seq) - 1
        return i >= 0 and seq <= self._highs[i]

    @property
    def highest(self) -> int:
        return self._highs[-1] if self._highs else -1

    def ranges(self) -> Ranges:
        return tuple(zip(self._lows, self._highs))

    def add(self, seq: int) -> bool:
        """Record `seq`; False if it was already held."""
        i = bisect.bisect_right(self._lows, seq) - 1
        if i >= 0 and seq <= self._highs[i]:
            return False
        joins_left = i >= 0 and self._highs[i] == seq - 1
        joins_right = i + 1 < len(self._lows) and self._lows[i + 1] == seq + 1
        if joins_left and joins_right:
            self._highs[i] = self._highs[i + 1]
            del self._lows[i + 1], self._highs[i + 1]
        elif joins_left:
            self._highs[i] = seq
        elif joins_right:
            self._lows[i + 1] = seq
        else:
            self._lows.insert(i + 1, seq)
            self._highs.insert(i + 1, seq)
            self._trim()
        return True

    def missing(self, lo: int, hi: int, limit: int) -> list[int]:
        """Up to `limit` numbers in `lo..hi` not held, lowest first."""
        found: list[int] = []
        seq = lo
        i = max(bisect.bisect_right(self._lows, lo) - 1, 0)
        while seq <= hi and len(found) < limit:
            while i < len(self._lows) and self._highs[i] < seq:
                i += 1
            if i < len(self._lows) and self._lows[i] <= seq:
                seq = self._highs[i] + 1
                continue
            stop = min(hi, self._lows[i] - 1 if i < len(self._lows) else hi)
            stop = min(stop, seq + limit - len(found) - 1)
            found.extend(range(seq, stop + 1))
            seq = stop + 1
        return found

    def _trim(self) -> None:
        # Too many holes: give up on the oldest one rather than grow.
        while len(self._lows) > self._max:
            self._highs[0] = self._highs[1]
            del self._lows[1], self._highs[1]


class HeldSeqs:
    """Per origin, which sequence numbers this node has delivered or holds."""

    def __init__(self, max_origins: int) -> None:
        self._max = max_origins
        self._by_origin: OrderedDict[bytes, SeqRanges] = OrderedDict()

    def __len__(self) -> int:
        return len(self._by_origin)

    def has(self, origin: bytes, seq: int) -> bool:
        ranges = self._by_origin.get(origin)
        return ranges is not None and seq in ranges

    def add(self, origin: bytes, seq: int) -> bool:
        """Record (origin, seq); False if already held."""
        ranges = self._by_origin.get(origin)
        if ranges is None:
            ranges = self._by_origin[origin] = SeqRanges()
            if len(self._by_origin) > self._max:
                self._by_origin.popitem(last=False)  # least recently extended
        self._by_origin.move_to_end(origin)
        return ranges.add(seq)

    def missing(self, origin: bytes, lo: int, hi: int, limit: int) -> list[int]:
        ranges = self._by_origin.get(origin)
        if ranges is None:
            return list(range(lo, min(hi, lo + limit - 1) + 1))
        return ranges.missing(lo, hi, limit)

    def highest(self) -> dict[bytes, int]:
        return {origin: r.highest for origin, r in self._by_origin.items()}


@dataclass(frozen=True, slots=True)
class Stored:
    """A message kept to answer IWANT and catch-up fetches."""

    origin: bytes
    seq: int
    topic: str
    wire: bytes
    hop: int = MAX_HOP  # hops our copy travelled (0: our own), for IWANT answers


class MessageStore:
    """Recent valid messages by id and by (origin, seq), oldest evicted first."""

    def __init__(self, max_messages: int) -> None:
        self._max = max_messages
        self._by_id: OrderedDict[bytes, Stored] = OrderedDict()
        self._by_seq: dict[tuple[bytes, int], bytes] = {}
        self._summary: Summary | None = None
        self._fingerprint: bytes | None = None

    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, msg_id: bytes) -> Stored | None:
        return self._by_id.get(msg_id)

    def by_seq(self, origin: bytes, seq: int) -> Stored | None:
        msg_id = self._by_seq.get((origin, seq))
        return None if msg_id is None else self._by_id[msg_id]

    def add(self, msg_id: bytes, stored: Stored) -> None:
        self._by_id[msg_id] = stored
        self._by_seq[(stored.origin, stored.seq)] = msg_id
        self._summary = self._fingerprint = None
        while len(self._by_id) > self._max:
            _, old = self._by_id.popitem(last=False)
            self._by_seq.pop((old.origin, old.seq), None)

    def summary(self) -> Summary:
        """Per origin (sorted), the ranges of sequence numbers held (newest)."""
        if self._summary is None:
            seqs: dict[bytes, list[int]] = {}
            for origin, seq in self._by_seq:
                seqs.setdefault(origin, []).append(seq)
            self._summary = tuple(
                (origin, ranges_of(sorted(seqs[origin]))[-MAX_RANGES:])
                for origin in sorted(seqs)
            )
        return self._summary

    def fingerprint(self) -> bytes:
        """The fingerprint of `summary()`, cached until the next `add`."""
        if self._fingerprint is None:
            self._fingerprint = fingerprint(self.summary())
        return self._fingerprint


def fingerprint(summary: Summary) -> bytes:
    """A short hash of a summary: equal hashes mean equal held sets.

    Origins must come sorted (as `MessageStore.summary` gives them), so two
    nodes holding the same messages compute the same bytes.
    """
    canonical = cbor2.dumps([[o, [list(r) for r in rs]] for o, rs in summary])
    return hashlib.blake2b(canonical, digest_size=FINGERPRINT_BYTES).digest()


def ranges_of(seqs: list[int]) -> Ranges:
    """Sorted numbers as inclusive (lo, hi) runs."""
    ranges: list[tuple[int, int]] = []
    for seq in seqs:
        if ranges and ranges[-1][1] == seq - 1:
            ranges[-1] = (ranges[-1][0], seq)
        else:
            ranges.append((seq, seq))
    return tuple(ranges)


class MessageCache:
    """Ids of recent messages per heartbeat window, for IHAVE gossip."""

    def __init__(self, windows: int, gossip_windows: int, max_per_window: int):
        self._gossip = gossip_windows
        self._max = max_per_window
        self._windows: deque[list[tuple[str, bytes]]] = deque(
            [[] for _ in range(windows)], maxlen=windows
        )

    def add(self, topic: str, msg_id: bytes) -> None:
        if len(self._windows[0]) < self._max:
            self._windows[0].append((topic, msg_id))

    def gossip_ids(self, topic: str) -> list[bytes]:
        """Ids of `topic` from the newest gossip windows."""
        return [
            msg_id
            for window in list(self._windows)[: self._gossip]
            for t, msg_id in window
            if t == topic
        ]

    def shift(self) -> None:
        self._windows.appendleft([])

    def __len__(self) -> int:
        return sum(len(w) for w in self._windows)
