"""Ticks, sleep and JSON that behave alike on MicroPython and CPython."""

import time

try:
    import json
except ImportError:  # MicroPython builds that only ship the u-prefixed name
    import ujson as json  # noqa: F401

TICKS_PERIOD = 1 << 30  # what MicroPython's ports use
_HALF = TICKS_PERIOD // 2

if hasattr(time, "ticks_ms"):
    ticks_ms = time.ticks_ms
    ticks_diff = time.ticks_diff
    ticks_add = time.ticks_add
    sleep_ms = time.sleep_ms
else:

    def ticks_ms():
        """Milliseconds from an arbitrary start, wrapping like MicroPython's."""
        return int(time.monotonic() * 1000) & (TICKS_PERIOD - 1)

    def ticks_diff(end, start):
        """Signed `end - start`, correct across one wrap-around."""
        return ((end - start + _HALF) & (TICKS_PERIOD - 1)) - _HALF

    def ticks_add(ticks, delta_ms):
        """`ticks` moved by `delta_ms`, wrapped."""
        return (ticks + delta_ms) & (TICKS_PERIOD - 1)

    def sleep_ms(ms):
        """Block for `ms` milliseconds."""
        time.sleep(ms / 1000)
