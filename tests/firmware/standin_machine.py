"""Stand-in for MicroPython's `machine`: pins driven by tests, RTC memory, sleep.

Pin levels and RTC memory live at module level, like the hardware, so they
outlive a simulated reset; `reset_state` clears them between tests.
"""

PWRON_RESET = 1
DEEPSLEEP_RESET = 4
PIN_WAKE = EXT0_WAKE = 2
EXT1_WAKE = 3
TIMER_WAKE = 4

LEVELS = {}
PINS = {}
_rtc = {"memory": b""}
_boot = {"cause": PWRON_RESET, "wake": 0}


class DeepSleep(Exception):
    """Raised by deepsleep: on a board, execution ends there."""

    def __init__(self, ms):
        super().__init__(ms)
        self.ms = ms


class Pin:
    IN = 1
    OUT = 3
    PULL_UP = 1
    PULL_DOWN = 2
    IRQ_FALLING = 4
    IRQ_RISING = 8

    def __init__(self, pin_id, mode=-1, pull=-1):
        self.id = pin_id
        self.pull = pull
        LEVELS.setdefault(pin_id, 1 if pull == Pin.PULL_UP else 0)
        self.handler = None
        self.trigger = 0
        PINS[pin_id] = self

    def value(self, level=None):
        if level is None:
            return LEVELS[self.id]
        LEVELS[self.id] = level
        return None

    def irq(self, handler=None, trigger=IRQ_FALLING | IRQ_RISING):
        self.handler = handler
        self.trigger = trigger


def drive(pin_id, level):
    """Set a pin's level as the outside world would, firing its IRQ on an edge."""
    if LEVELS.get(pin_id) == level:
        return
    LEVELS[pin_id] = level
    pin = PINS.get(pin_id)
    if pin is not None and pin.handler is not None:
        pin.handler(pin)


class RTC:
    def memory(self, data=None):
        if data is None:
            return _rtc["memory"]
        if len(data) > 2048:
            raise ValueError("RTC memory holds 2048 bytes")
        _rtc["memory"] = bytes(data)
        return None


def deepsleep(ms=0):
    raise DeepSleep(ms)


def reset():
    raise SystemExit("machine.reset")


def reset_cause():
    return _boot["cause"]


def wake_reason():
    return _boot["wake"]


def boot_as(cause, wake=0, power_cut=False):
    """Make the next start look like this reset (and wake reason)."""
    _boot["cause"] = cause
    _boot["wake"] = wake
    if power_cut:
        _rtc["memory"] = b""


def reset_state():
    LEVELS.clear()
    PINS.clear()
    _rtc["memory"] = b""
    boot_as(PWRON_RESET)
