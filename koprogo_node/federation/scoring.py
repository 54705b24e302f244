"""Peer scores: what a peer did for us, minus what it did against us.

A reduced GossipSub v1.1 score with one topic-independent term per kind of
behaviour. Counters decay every heartbeat so an honest peer that erred once
recovers, while invalid messages are squared and decay slowly, so a spammer
falls below the graylist threshold within a few messages and stays there.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class ScoreWeights:
    """Weights and decays of the score terms (decay is per heartbeat)."""

    first_delivery: float = 1.0
    first_delivery_cap: float = 10.0
    first_delivery_decay: float = 0.995
    invalid: float = -10.0  # times invalid messages squared
    invalid_decay: float = 0.9995
    broken_promise: float = -3.0  # times broken promises squared
    broken_promise_decay: float = 0.99
    behaviour: float = -5.0  # times protocol violations squared
    behaviour_decay: float = 0.99


class PeerScore:
    """The decaying counters behind one peer's score."""

    __slots__ = ("first", "invalid", "broken", "behaviour")

    def __init__(self) -> None:
        self.first = 0.0
        self.invalid = 0.0
        self.broken = 0.0
        self.behaviour = 0.0

    def value(self, w: ScoreWeights) -> float:
        """The score now."""
        return (
            w.first_delivery * min(self.first, w.first_delivery_cap)
            + w.invalid * self.invalid**2
            + w.broken_promise * self.broken**2
            + w.behaviour * self.behaviour**2
        )

    def decay(self, w: ScoreWeights) -> None:
        """Age the counters by one heartbeat; tiny values snap to zero."""
        self.first = _decayed(self.first, w.first_delivery_decay)
        self.invalid = _decayed(self.invalid, w.invalid_decay)
        self.broken = _decayed(self.broken, w.broken_promise_decay)
        self.behaviour = _decayed(self.behaviour, w.behaviour_decay)


def _decayed(value: float, factor: float) -> float:
    value *= factor
    return value if value > 0.01 else 0.0
