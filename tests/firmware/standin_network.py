"""Stand-in for MicroPython's `network`: a station link tests switch on and off."""

STA_IF = 0
STAT_GOT_IP = 3
LINK = {"up": True, "rssi": -61}


class WLAN:
    def __init__(self, interface=STA_IF):
        self.interface = interface
        self.is_active = False

    def active(self, on=None):
        if on is None:
            return self.is_active
        self.is_active = on
        return None

    def connect(self, ssid, password):
        self.ssid = ssid

    def isconnected(self):
        return LINK["up"] and self.is_active

    def status(self, param=None):
        if param == "rssi":
            return LINK["rssi"]
        return STAT_GOT_IP if LINK["up"] else 1


def reset_state():
    LINK["up"] = True
    LINK["rssi"] = -61
