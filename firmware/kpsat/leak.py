"""A water-leak contact read by polling, debounced (pure)."""

from kpsat.compat import ticks_diff


class LeakInput:
    """The contact's state: 1 wet, 0 dry, None until a level held long enough.

    A new level is taken once it has been seen unchanged for `debounce_ms`;
    a level that flickers back before then is ignored.
    """

    def __init__(self, debounce_ms):
        self.debounce_ms = debounce_ms
        self.state = None
        self._candidate = None
        self._since = None

    def update(self, wet, now_ms):
        """Feed one sample; True when `state` changed with it."""
        level = 1 if wet else 0
        if level == self.state:
            self._candidate = None
            return False
        if level != self._candidate:
            self._candidate = level
            self._since = now_ms
        if ticks_diff(now_ms, self._since) < self.debounce_ms:
            return False
        self.state = level
        self._candidate = None
        return True
