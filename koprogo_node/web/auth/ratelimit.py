"""Exponential lock-out after repeated failures (logins, setup codes)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Hashable


@dataclass
class _Failures:
    count: int
    last_s: float


class FailureLimiter:
    """Counts failures per key; past `free_failures`, locks the key out.

    The lock-out starts at `base_lockout_s` and doubles with each further
    failure up to `max_lockout_s`; a success resets the key.
    """

    def __init__(
        self,
        clock: Callable[[], float],
        free_failures: int = 5,
        base_lockout_s: float = 1.0,
        max_lockout_s: float = 900.0,
        forget_after_s: float = 3600.0,
        max_keys: int = 10_000,
    ) -> None:
        self.clock = clock
        self.free_failures = free_failures
        self.base_lockout_s = base_lockout_s
        self.max_lockout_s = max_lockout_s
        self.forget_after_s = forget_after_s
        self.max_keys = max_keys
        self._failures: dict[Hashable, _Failures] = {}

    def retry_after_s(self, *keys: Hashable) -> int:
        """Whole seconds until every key may try again; 0 if they may now."""
        now = self.clock()
        waits = [self._locked_until(key) - now for key in keys]
        return max([0, *(math.ceil(wait) for wait in waits)])

    def fail(self, *keys: Hashable) -> None:
        """Count one failure against each key."""
        now = self.clock()
        for key in keys:
            entry = self._failures.get(key)
            if entry is None or now - entry.last_s >= self.forget_after_s:
                entry = self._failures[key] = _Failures(0, now)
            entry.count += 1
            entry.last_s = now
        if len(self._failures) > self.max_keys:
            self._shrink(now)

    def reset(self, *keys: Hashable) -> None:
        """Forget the failures of each key, after a success."""
        for key in keys:
            self._failures.pop(key, None)

    def _locked_until(self, key: Hashable) -> float:
        entry = self._failures.get(key)
        if entry is None or entry.count < self.free_failures:
            return 0.0
        doublings = min(entry.count - self.free_failures, 30)
        lockout_s = min(self.base_lockout_s * 2**doublings, self.max_lockout_s)
        return entry.last_s + lockout_s

    def _shrink(self, now: float) -> None:
        """Drop stale keys, then the oldest, so memory stays bounded."""
        for key, entry in list(self._failures.items()):
            if now - entry.last_s >= self.forget_after_s:
                del self._failures[key]
        by_age = sorted(self._failures, key=lambda k: self._failures[k].last_s)
        for key in by_age[: len(self._failures) - self.max_keys]:
            del self._failures[key]
