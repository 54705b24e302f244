"""Wall-clock trust: the rule for stamping readings on a Pi with no RTC.

The rule (also in README.md, "Time"):

1. A reading is stamped with the wall clock and a flag saying whether the
   clock was trusted at that instant. Devices with their own trusted clock
   (a P1 meter stamps its telegrams) carry their own stamp.
2. The clock is trusted once the kernel reports it synchronised (adjtimex
   returns no TIME_ERROR, which systemd-timesyncd and chrony both clear), or
   always when the configuration says `time.trust = "always"`.
3. An untrusted reading also records the monotonic clock and the boot it was
   taken in. When the clock becomes trusted during that boot, the offset
   wall - monotonic is recorded once, in the ledger, for that boot; every
   untrusted reading of the boot then has the corrected stamp
   monotonic + offset. Readings of a boot that ended before the clock was
   trusted keep their stamp and their CLOCK_UNSYNCED quality for good.
4. Untrusted readings are stored at once (nothing waits in memory), and stay
   out of rollups and consumption sums until corrected.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True, slots=True)
class Stamp:
    """One reading of the clocks."""

    ts: float
    trusted: bool
    mono_s: float


class Clock:
    """Wall and monotonic clocks plus a trust probe, injected for tests."""

    def __init__(
        self,
        wall: Callable[[], float],
        mono: Callable[[], float],
        is_synchronised: Callable[[], bool],
    ) -> None:
        self._wall = wall
        self._mono = mono
        self._is_synchronised = is_synchronised
        self._trusted = False

    @property
    def trusted(self) -> bool:
        """Whether the wall clock has been found trustworthy (it never reverts)."""
        if not self._trusted and self._is_synchronised():
            self._trusted = True
        return self._trusted

    def stamp(self) -> Stamp:
        """Read both clocks now."""
        return Stamp(ts=self._wall(), trusted=self.trusted, mono_s=self._mono())

    def offset_s(self) -> float:
        """Return wall - monotonic now."""
        return self._wall() - self._mono()
