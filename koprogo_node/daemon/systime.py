"""The host's clocks and whether the kernel considers the wall clock synced."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import time
from pathlib import Path

from ..core.clock import Clock

_TIME_ERROR = 5  # adjtimex(2): clock not synchronised
_TIMEX_BYTES = 512  # larger than struct timex on every Linux ABI


@functools.cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    return ctypes.CDLL(name, use_errno=True) if name else None


def kernel_clock_synchronised() -> bool:
    """Return True when adjtimex(2) reports a synchronised clock."""
    libc = _libc()
    if libc is None:
        return False
    timex = ctypes.create_string_buffer(_TIMEX_BYTES)  # modes = 0: read only
    state = libc.adjtimex(timex)
    return state not in (-1, _TIME_ERROR)


def boot_id() -> str:
    """Return the kernel's id of the current boot."""
    path = Path("/proc/sys/kernel/random/boot_id")
    try:
        return path.read_text().strip()
    except OSError:
        return "unknown-boot"


def system_clock(trust: str) -> Clock:
    """Build the clock for this host; `trust` is "kernel" or "always"."""
    probe = (lambda: True) if trust == "always" else kernel_clock_synchronised
    return Clock(wall=time.time, mono=time.monotonic, is_synchronised=probe)
