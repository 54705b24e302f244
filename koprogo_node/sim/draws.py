"""Deterministic random draws keyed by where they are used.

The same seed must give the same building whatever the size or order of the
simulation steps, so a random quantity is a hash of its coordinates (seed,
meter, quarter-hour, ...) rather than the next value of a stream.
"""

from __future__ import annotations

import hashlib
import math
import struct

_UNIT = 1.0 / 2**64
_EIGHT_U64 = struct.Struct("<8Q")


def uniforms(*key: int | str) -> tuple[float, ...]:
    """Return eight independent uniform values in [0, 1) for `key`."""
    digest = hashlib.blake2b(repr(key).encode(), digest_size=64).digest()
    return tuple(n * _UNIT for n in _EIGHT_U64.unpack(digest))


def normal(u1: float, u2: float) -> float:
    """Turn two uniforms into one standard normal value (Box-Muller)."""
    return math.sqrt(-2.0 * math.log(1.0 - u1)) * math.cos(2.0 * math.pi * u2)


def lognormal_factor(u1: float, u2: float, sigma: float) -> float:
    """Return a positive noise factor whose mean is 1."""
    return math.exp(sigma * normal(u1, u2) - sigma * sigma / 2.0)


def between(u: float, low: float, high: float) -> float:
    """Map a uniform value onto [low, high)."""
    return low + (high - low) * u
