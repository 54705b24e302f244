"""Stand-in for MicroPython's `onewire`."""


class OneWireError(Exception):
    """No presence pulse: nothing answered on the bus."""


class OneWire:
    def __init__(self, pin):
        self.pin = pin
