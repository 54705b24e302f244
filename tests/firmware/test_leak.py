"""LeakInput: a debounced leak contact, 1 wet and 0 dry."""

from kpsat.leak import LeakInput


def feed(leak: LeakInput, samples: list[tuple[int, bool]]) -> list[int]:
    """The states taken along `samples` of (ms, wet)."""
    changes = []
    for now_ms, wet in samples:
        if leak.update(wet, now_ms):
            changes.append(leak.state)
    return changes


def test_first_state_needs_a_steady_level() -> None:
    """Nothing is reported until the level held for the debounce time."""
    leak = LeakInput(debounce_ms=100)

    changes = feed(leak, [(0, False), (50, False), (100, False)])

    assert changes == [0]
    assert leak.state == 0


def test_wet_then_dry_edges_are_reported_once_each() -> None:
    """Dry to wet and back give exactly two changes, after the debounce time."""
    leak = LeakInput(debounce_ms=100)
    feed(leak, [(0, False), (100, False)])

    changes = feed(
        leak, [(200, True), (250, True), (300, True), (350, True), (1000, False)]
    )
    changes += feed(leak, [(1050, False), (1100, False), (1200, False)])

    assert changes == [1, 0]


def test_flicker_shorter_than_window_is_ignored() -> None:
    """Splashes that wet the contact for 30 ms at a time do not raise a leak."""
    leak = LeakInput(debounce_ms=100)
    feed(leak, [(0, False), (100, False)])

    samples = []
    for start in range(200, 1200, 100):
        samples += [(start, True), (start + 30, False), (start + 60, False)]
    changes = feed(leak, samples)

    assert changes == []
    assert leak.state == 0
