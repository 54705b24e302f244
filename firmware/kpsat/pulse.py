"""Meter pulses counted from pin edges, debounced without timers (pure)."""

from kpsat.compat import ticks_diff


class PulseCounter:
    """Counts pulses; `count` is the running total, restored after a reset.

    An edge to the active level counts only when the line had been quiet,
    with no edge at all, for `debounce_ms` before it. The bounces of a
    closing or opening contact follow each other closely, so a whole burst
    counts once, and only on closing. `edge` is called from the pin IRQ: it
    does integer arithmetic only.
    """

    def __init__(self, debounce_ms, count=0):
        self.debounce_ms = debounce_ms
        self.count = count
        self._last_edge = None

    def edge(self, active, now_ms):
        """Note one edge; `active` is the line's level just after it."""
        last = self._last_edge
        self._last_edge = now_ms
        if active and (last is None or ticks_diff(now_ms, last) >= self.debounce_ms):
            self.count += 1

    def woke(self, now_ms):
        """Count the pulse whose edge woke the board from deep sleep.

        That edge happened just now as far as debouncing goes, so the bounces
        of the same contact seen once the IRQ is armed do not count again.
        """
        self.count += 1
        self._last_edge = now_ms

    def settle(self, now_ms):
        """Forget an edge older than the window (called from the main loop).

        Ticks wrap after about 12 days; without this, a meter idle that long
        could make its next pulse look like a bounce.
        """
        last = self._last_edge
        if last is not None and ticks_diff(now_ms, last) >= self.debounce_ms:
            self._last_edge = None
