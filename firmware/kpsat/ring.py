"""Readings waiting for the broker: bounded, oldest first, drops counted (pure)."""


class Ring:
    """At most `size` records; a push onto a full ring drops the oldest.

    `dropped` counts every record ever dropped. It is carried across resets
    by the caller and published with each state, so a loss is never silent.
    """

    def __init__(self, size, items=None, dropped=0):
        if size < 1:
            raise ValueError("ring size must be at least 1")
        self.size = size
        self.items = list(items or [])[-size:]
        self.dropped = dropped + max(0, len(items or []) - size)

    def __len__(self):
        return len(self.items)

    def push(self, record):
        """Append `record`, dropping the oldest one when full."""
        self.items.append(record)
        while len(self.items) > self.size:
            self.items.pop(0)
            self.dropped += 1

    def oldest(self):
        """The record to send next (the ring must not be empty)."""
        return self.items[0]

    def pop(self):
        """Forget the oldest record once the broker acknowledged it."""
        return self.items.pop(0)
