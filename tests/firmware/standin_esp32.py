"""Stand-in for MicroPython's `esp32`: records which wake sources were armed."""

WAKEUP_ALL_LOW = 0
WAKEUP_ANY_HIGH = 1
ARMED = {}


def wake_on_ext0(pin, level):
    ARMED["ext0"] = (pin.id, level)


def wake_on_ext1(pins, level):
    ARMED["ext1"] = (tuple(p.id for p in pins), level)


def reset_state():
    ARMED.clear()
