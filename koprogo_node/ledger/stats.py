"""Live figures of the ingest path: commits, rate and rejects by reason.

Rejects are logged on transitions: the first time a (source, reason) pair is
seen, and again when it comes back after a quiet spell; repeats go to DEBUG.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

import structlog

from ..core.ingest import ALREADY_STORED

log = structlog.get_logger(__name__)

QUIET_S = 600.0
RATE_WINDOW_S = 60.0


@dataclass
class RejectCount:
    """How often one source refused input for one reason."""

    count: int
    last_ms: int
    detail: str
    persisted: int = 0


# Joining a P1 stream mid-telegram gives these: expected, so INFO, not WARNING.
EXPECTED_REASONS = frozenset({"junk", "truncated"})


def _first_level(reason: str):
    if reason == ALREADY_STORED:
        return log.debug
    return log.info if reason in EXPECTED_REASONS else log.warning


class IngestStats:
    """Counters shared by the sources, the writer and the status API."""

    def __init__(self, monotonic=time.monotonic, wall=time.time) -> None:
        self._mono = monotonic
        self._wall = wall
        self.started_mono = monotonic()
        self.committed_total = 0
        self.height = 0
        self.last_block_ms = 0
        self.rejects: dict[tuple[str, str], RejectCount] = {}
        self._recent: deque[tuple[float, int]] = deque()
        self._last_seen: dict[tuple[str, str], float] = {}

    def restore(self, height: int, created_ms: int) -> None:
        """Start from the ledger's head after opening it."""
        self.height = height
        self.last_block_ms = created_ms

    def committed(self, readings: int, height: int, created_ms: int) -> None:
        """Count a committed block."""
        self.committed_total += readings
        self.height = height
        self.last_block_ms = created_ms
        now = self._mono()
        self._recent.append((now, readings))
        while self._recent and now - self._recent[0][0] > RATE_WINDOW_S:
            self._recent.popleft()

    def rate_per_s(self) -> float:
        """Readings committed per second over the last minute."""
        if not self._recent:
            return 0.0
        span = max(self._mono() - self._recent[0][0], 1.0)
        return sum(n for _, n in self._recent) / span

    def reject(self, source: str, reason: str, detail: str) -> None:
        """Count one refused input and log it if it is a new transition."""
        key = (source, reason)
        now = self._mono()
        entry = self.rejects.get(key)
        if entry is None:
            entry = self.rejects[key] = RejectCount(0, 0, "")
        entry.count += 1
        entry.last_ms = int(self._wall() * 1000)
        entry.detail = detail[:200]
        quiet = now - self._last_seen.get(key, -QUIET_S - 1)
        self._last_seen[key] = now
        emit = _first_level(reason) if quiet > QUIET_S else log.debug
        emit(
            "input_rejected",
            source=source,
            reason=reason,
            detail=detail[:200],
            count=entry.count,
        )

    def rejects_by_reason(self) -> dict[str, int]:
        """Total rejects per reason, all sources together."""
        totals: dict[str, int] = {}
        for (_, reason), entry in self.rejects.items():
            totals[reason] = totals.get(reason, 0) + entry.count
        return totals

    def unsaved_rejects(self) -> list[tuple[str, str, int, int, str]]:
        """Reject counts that changed since the last commit, for the ledger."""
        rows = []
        for (source, reason), entry in self.rejects.items():
            if entry.count != entry.persisted:
                rows.append(
                    (
                        source,
                        reason,
                        entry.count - entry.persisted,
                        entry.last_ms,
                        entry.detail,
                    )
                )
                entry.persisted = entry.count
        return rows
