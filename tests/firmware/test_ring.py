"""Ring: the bounded buffer drops the oldest readings and counts them."""

import pytest
from kpsat.ring import Ring


def test_full_ring_drops_oldest_and_counts() -> None:
    """Seven pushes into a ring of four keep the newest four and count three."""
    ring = Ring(4)

    for seq in range(1, 8):
        ring.push({"seq": seq})

    assert [r["seq"] for r in ring.items] == [4, 5, 6, 7]
    assert ring.dropped == 3


def test_restored_drop_count_keeps_growing() -> None:
    """A ring rebuilt after a reset carries its earlier drops on."""
    ring = Ring(2, items=[{"seq": 1}, {"seq": 2}], dropped=5)

    ring.push({"seq": 3})

    assert ring.dropped == 6
    assert ring.oldest() == {"seq": 2}


def test_zero_size_is_refused() -> None:
    """A ring must hold at least one reading."""
    with pytest.raises(ValueError, match="at least 1"):
        Ring(0)
