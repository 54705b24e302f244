"""DS18B20 probes on one 1-Wire bus: values, or the reason there is none (pure).

`ds` is MicroPython's `ds18x20.DS18X20` (or anything with its scan,
convert_temp and read_temp methods); this module imports no hardware.
"""

# What the DS18B20 holds before its first conversion; reading it means the
# conversion did not happen (power dropped, parasite supply too weak). A
# loop really at 85.0000 degC is reported as this error too.
POWER_ON_VALUE = 85.0


def rom_id(rom):
    """A probe's 64-bit ROM as 16 lower-case hex digits."""
    return "".join("%02x" % b for b in bytes(rom))


class Probes:
    """The bus's probes; one seen before and absent now is reported missing."""

    def __init__(self, ds, known=()):
        self.ds = ds
        self.known = list(known)
        self._roms = {}
        self._bus_error = False

    def start(self):
        """Find the probes and start a conversion; True if one is running."""
        self._bus_error = False
        try:
            found = self.ds.scan()
            self._roms = dict((rom_id(rom), rom) for rom in found)
            if found:
                self.ds.convert_temp()
        except Exception:  # onewire raises OneWireError, a bare Exception subclass
            self._roms = {}
            self._bus_error = True
            return False
        for probe in sorted(self._roms):
            if probe not in self.known:
                self.known.append(probe)
        return bool(self._roms)

    def read(self):
        """{probe id: degC, or an error word} for every known probe."""
        values = {}
        for probe in self.known:
            rom = self._roms.get(probe)
            if rom is not None:
                values[probe] = self._read_one(rom)
            else:
                values[probe] = "bus_error" if self._bus_error else "missing"
        return values

    def _read_one(self, rom):
        try:
            value = self.ds.read_temp(rom)
        except Exception as exc:  # ds18x20 raises a bare Exception("CRC error")
            return "crc_error" if "CRC" in str(exc) else "no_answer"
        if value is None:
            return "no_value"
        if value == POWER_ON_VALUE:
            return "power_on_value"
        return value
