"""Stand-in for MicroPython's `ds18x20`: probes a test plugs in and out.

PROBES maps a ROM to what reading it gives: degC, None, or an exception to
raise (the real driver raises a bare Exception("CRC error")).
"""

from tests.firmware import standin_onewire

PROBES = {}
BUS = {"fault": False, "conversions": 0}


class DS18X20:
    def __init__(self, bus):
        self.bus = bus

    def scan(self):
        if BUS["fault"]:
            raise standin_onewire.OneWireError("bus shorted")
        return [bytearray(rom) for rom in PROBES]

    def convert_temp(self):
        BUS["conversions"] += 1

    def read_temp(self, rom):
        value = PROBES[bytes(rom)]
        if isinstance(value, Exception):
            raise value
        return value


def reset_state():
    PROBES.clear()
    BUS["fault"] = False
    BUS["conversions"] = 0
