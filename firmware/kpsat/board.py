"""The hardware edge: pins, 1-Wire, Wi-Fi, MQTT, RTC memory and deep sleep.

The only module importing machine, network, onewire, ds18x20 and
umqtt.simple; the tests put stand-ins for them in sys.modules. It turns
their failures into LinkError so nothing above it knows their exceptions.
"""

import time

import ds18x20
import machine
import network
import onewire
from umqtt.simple import MQTTClient, MQTTException

from kpsat.compat import sleep_ms, ticks_diff, ticks_ms
from kpsat.errors import LinkError

try:
    import esp32
except ImportError:  # RP2040 (Pico W): no wake on pin, no RTC memory
    esp32 = None

QOS = 1
EPOCH_2000_S = 946684800
CLOCK_VALID_FROM_S = 1704067200  # 2024-01-01: before that the RTC was never set
RELEASE_WAIT_MS = 1000


class Board:
    """The satellite's hardware as `config` describes it."""

    def __init__(self, config, root=""):
        self.config = config
        self.root = root
        self._wlan = network.WLAN(network.STA_IF)
        self._pulse_pin = None
        self._leak_pin = None
        meter = config["meter"]
        if meter is not None:
            pull = machine.Pin.PULL_UP if meter["active_low"] else machine.Pin.PULL_DOWN
            self._pulse_pin = machine.Pin(meter["pin"], machine.Pin.IN, pull)
        leak = config["leak"]
        if leak is not None:
            self._leak_pin = machine.Pin(leak["pin"], machine.Pin.IN)

    # Inputs ------------------------------------------------------------------

    def watch_pulses(self, counter):
        """Feed every edge of the pulse pin to `counter` from the IRQ."""
        pin = self._pulse_pin
        active = 0 if self.config["meter"]["active_low"] else 1

        def on_edge(changed):
            counter.edge(changed.value() == active, self.ticks_ms())

        trigger = machine.Pin.IRQ_FALLING | machine.Pin.IRQ_RISING
        pin.irq(trigger=trigger, handler=on_edge)

    def pulse_active(self):
        """Whether the pulse contact is closed right now."""
        active = 0 if self.config["meter"]["active_low"] else 1
        return self._pulse_pin.value() == active

    def leak_wet(self):
        """The raw leak contact: True when it reads wet."""
        wet = 1 if self.config["leak"]["active_high"] else 0
        return self._leak_pin.value() == wet

    def thermometers(self):
        """The DS18X20 driver on the 1-Wire pin, or None without one."""
        bus = self.config["onewire"]
        if bus is None:
            return None
        return ds18x20.DS18X20(onewire.OneWire(machine.Pin(bus["pin"])))

    # Time and state ----------------------------------------------------------

    def ticks_ms(self):
        return ticks_ms()

    def sleep_ms(self, ms):
        sleep_ms(ms)

    def seconds(self):
        """RTC seconds; on the ESP32 they keep counting through deep sleep."""
        return int(time.time())

    def unix_time(self):
        """Unix seconds, or None while the clock was never set."""
        now = int(time.time())
        if time.gmtime(0)[0] == 2000:
            now += EPOCH_2000_S
        return now if now >= CLOCK_VALID_FROM_S else None

    def rtc_memory(self):
        """RTC memory that outlives deep sleep, or None where there is none."""
        rtc = machine.RTC()
        return _RtcMemory(rtc) if hasattr(rtc, "memory") else None

    def woke_by_pulse(self):
        return self._woke_by(getattr(machine, "EXT0_WAKE", machine.PIN_WAKE))

    def woke_by_leak(self):
        return self._woke_by(getattr(machine, "EXT1_WAKE", None))

    def _woke_by(self, reason):
        if esp32 is None or reason is None:
            return False
        if machine.reset_cause() != machine.DEEPSLEEP_RESET:
            return False
        return machine.wake_reason() == reason

    def deep_sleep(self, ms, leak_state):
        """Sleep `ms`, waking early on a pulse or a leak change where possible.

        XXX: pulses are counted during deep sleep only on the ESP32, and only
        as wake-ups: each costs a boot of about a second, so only slow meters
        (a gas or water meter at 10 L per pulse) are counted fully, and the
        RP2040 counts none. Counting in the ESP32's ULP coprocessor, or with
        an external counter chip, would count every pulse while asleep.
        """
        self._arm_wakes(leak_state)
        self._wlan.active(False)
        machine.deepsleep(max(1, int(ms)))

    def _arm_wakes(self, leak_state):
        if esp32 is None:
            return
        if self._pulse_pin is not None and self._pulse_released():
            level = esp32.WAKEUP_ALL_LOW
            if not self.config["meter"]["active_low"]:
                level = esp32.WAKEUP_ANY_HIGH
            esp32.wake_on_ext0(pin=self._pulse_pin, level=level)
        if self._leak_pin is not None and leak_state is not None:
            # Wake when the contact leaves its present state, not while in it.
            high_is_wet = self.config["leak"]["active_high"]
            wake_high = high_is_wet != bool(leak_state)
            level = esp32.WAKEUP_ANY_HIGH if wake_high else esp32.WAKEUP_ALL_LOW
            esp32.wake_on_ext1(pins=(self._leak_pin,), level=level)

    def _pulse_released(self):
        """Wait for the contact to open: a level wake would fire at once."""
        start = ticks_ms()
        while self.pulse_active():
            if ticks_diff(ticks_ms(), start) > RELEASE_WAIT_MS:
                return False
            sleep_ms(10)
        return True

    # Network -----------------------------------------------------------------

    def connect(self):
        """Wi-Fi, then the broker; an Uplink, or LinkError saying which failed."""
        self._wifi_up()
        self._sync_clock()
        broker = self.config["broker"]
        client = MQTTClient(
            self.config["device_id"],
            broker["host"],
            port=broker["port"],
            user=broker["user"],
            password=broker["password"],
            keepalive=broker["keepalive_s"],
        )
        where = "%s:%d" % (broker["host"], broker["port"])
        try:
            client.connect()
        except MQTTException as exc:
            # 4: bad user name or password, 5: not authorised
            raise LinkError("broker %s refused: code %s" % (where, exc)) from exc
        except OSError as exc:
            raise LinkError("broker %s unreachable: %s" % (where, exc)) from exc
        sock = getattr(client, "sock", None)
        if sock is not None and hasattr(sock, "settimeout"):
            # umqtt.simple waits for PUBACK without a limit; a silent network
            # would hang the loop instead of buffering.
            sock.settimeout(broker["timeout_s"])
        return Uplink(client, where)

    def rssi(self):
        """Wi-Fi signal in dBm, or None when not connected."""
        if not self._wlan.isconnected():
            return None
        try:
            return self._wlan.status("rssi")
        except (OSError, ValueError):
            return None

    def log(self, event, **values):
        """One line on the serial console: an event name and key=value pairs."""
        pairs = " ".join("%s=%s" % (k, values[k]) for k in sorted(values))
        print(event, pairs)

    def _wifi_up(self):
        wlan = self._wlan
        if wlan.isconnected():
            return
        wifi = self.config["wifi"]
        wlan.active(True)
        try:
            wlan.connect(wifi["ssid"], wifi["password"])
        except OSError as exc:
            raise LinkError("wifi %r: %s" % (wifi["ssid"], exc)) from exc
        start = ticks_ms()
        limit_ms = self.config["wifi_timeout_s"] * 1000
        while not wlan.isconnected():
            if ticks_diff(ticks_ms(), start) > limit_ms:
                raise LinkError(
                    "wifi %r: not connected after %d s (status %s)"
                    % (wifi["ssid"], self.config["wifi_timeout_s"], wlan.status())
                )
            sleep_ms(100)

    def _sync_clock(self):
        """Set the RTC from NTP when configured; failures leave it as is."""
        host = self.config["ntp_host"]
        if not host:
            return
        try:
            import ntptime

            ntptime.host = host
            ntptime.settime()
        except (ImportError, OSError, OverflowError) as exc:
            self.log("ntp_failed", host=host, reason=str(exc))


class Uplink:
    """A connected umqtt.simple client, publishing at QoS 1."""

    def __init__(self, client, where):
        self.client = client
        self.where = where

    def publish(self, topic, payload, retain):
        """Publish and wait for PUBACK; LinkError when that did not happen."""
        # umqtt.simple counts len() of what it is given: bytes, or a
        # non-ASCII str (°C, m³) would get a wrong length on the wire.
        if isinstance(payload, str):
            payload = payload.encode()
        try:
            self.client.publish(topic.encode(), payload, retain, QOS)
        except (OSError, MQTTException) as exc:
            raise LinkError("publish to %s failed: %s" % (self.where, exc)) from exc

    def close(self):
        """Disconnect; a link already gone is not an error here."""
        try:
            self.client.disconnect()
        except (OSError, MQTTException):
            pass


class _RtcMemory:
    """The ESP32's RTC user memory (2 KiB) as read and write."""

    def __init__(self, rtc):
        self.rtc = rtc

    def read(self):
        return self.rtc.memory()

    def write(self, data):
        self.rtc.memory(data)
