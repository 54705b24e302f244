"""The main loop's states, with the hardware behind `board` (pure otherwise)."""

from kpsat import messages
from kpsat.compat import ticks_add, ticks_diff
from kpsat.errors import LinkError
from kpsat.leak import LeakInput
from kpsat.probes import Probes
from kpsat.pulse import PulseCounter
from kpsat.ring import Ring
from kpsat.store import Store

TICK_MS = 50
RETRY_FIRST_S = 5


class Satellite:
    """One satellite between two resets.

    Every report walks the same states: SAMPLE puts a reading in the ring;
    LINK brings up Wi-Fi, then the broker; ANNOUNCE publishes the retained
    discovery documents; FLUSH publishes the ring oldest first at QoS 1, a
    reading leaving the ring only once the broker acknowledged it; REST
    idles while watching the leak contact, or deep-sleeps. A failed LINK or
    FLUSH keeps the ring and tries again after a back-off that doubles up
    to `retry_max_s`, so delivery is in order and at least once.
    """

    def __init__(self, config, board):
        self.config = config
        self.board = board
        self.store = Store(board.root, board.rtc_memory(), config["persist_every_s"])
        self.state = self.store.load()
        meter = config["meter"]
        debounce_ms = meter["debounce_ms"] if meter is not None else 0
        self.counter = PulseCounter(debounce_ms, self.state["count"])
        self.ring = Ring(
            config["buffer_size"], self.store.load_buffer(), self.state["dropped"]
        )
        leak = config["leak"]
        self.leak = LeakInput(leak["debounce_ms"]) if leak is not None else None
        thermometers = board.thermometers()
        self.probes = None
        if thermometers is not None:
            self.probes = Probes(thermometers, self.state["roms"])
        self.uplink = None
        self.reports = 0
        self._seq = self.state.get("seq", 0)
        self._retry_s = 0
        self._retry_at = None

    def run(self, until=None):
        """Report every interval_s until `until()` holds, or one deep-sleep wake."""
        self.start()
        if self.config["deep_sleep_s"]:
            self.wake_cycle()
            return
        interval_ms = int(self.config["interval_s"] * 1000)
        self.settle_leak()
        due = self.board.ticks_ms()
        while until is None or not until():
            now = self.board.ticks_ms()
            self.counter.settle(now)
            leak_changed = self.watch_leak(now)
            if leak_changed or ticks_diff(now, due) >= 0:
                self.sample()
                due = ticks_add(now, interval_ms)
            self.deliver(now)
            if self.counter.count != self.state["count"] or leak_changed:
                self.persist()
            self.board.sleep_ms(TICK_MS)
        self.close()

    def start(self):
        """Count the pulse that woke the board, if one did, and arm the IRQ."""
        if self.config["meter"] is None:
            return
        if self.board.woke_by_pulse():
            self.counter.woke(self.board.ticks_ms())
        self.board.watch_pulses(self.counter)

    def wake_cycle(self):
        """One deep-sleep wake: report if due, then sleep again."""
        period_s = self.config["deep_sleep_s"]
        now_s = self.board.seconds()
        due_s = self.state.get("due_s")
        if self.board.woke_by_pulse() and due_s is not None and now_s < due_s:
            # Only a pulse: keep it and sleep out the rest of the period.
            self.persist()
            self.board.deep_sleep((due_s - now_s) * 1000, self.leak_state())
            return
        self.settle_leak()
        self.sample()
        self.deliver(self.board.ticks_ms())
        self.state["due_s"] = now_s + period_s
        # Without RTC memory the file is all that outlives the sleep.
        self.persist(force=self.store.rtc is None)
        self.store.save_buffer(self.ring.items)
        self.close()
        self.board.deep_sleep(period_s * 1000, self.leak_state())

    def leak_state(self):
        """The debounced leak state, or None without a leak contact."""
        return self.leak.state if self.leak is not None else None

    def settle_leak(self):
        """Poll the leak contact until its level held for the debounce time."""
        if self.leak is None:
            return
        start = self.board.ticks_ms()
        limit_ms = 4 * self.leak.debounce_ms + 100
        while self.leak.state is None:
            now = self.board.ticks_ms()
            self.leak.update(self.board.leak_wet(), now)
            if ticks_diff(now, start) > limit_ms:
                return
            if self.leak.state is None:
                self.board.sleep_ms(10)

    def watch_leak(self, now_ms):
        """Feed the leak debouncer; True on a debounced change."""
        if self.leak is None:
            return False
        return self.leak.update(self.board.leak_wet(), now_ms)

    def sample(self):
        """SAMPLE: take one reading into the ring."""
        temperatures = self._temperatures()
        self._seq += 1
        entry = messages.record(
            self.config,
            self._seq,
            self.board.unix_time(),
            self.counter.count,
            self.leak_state(),
            temperatures,
            self.board.rssi(),
        )
        self.ring.push(entry)
        self.reports += 1
        return entry

    def deliver(self, now_ms):
        """LINK, ANNOUNCE, FLUSH; True when nothing is left to send."""
        if not len(self.ring):
            return True
        if self._retry_at is not None and ticks_diff(now_ms, self._retry_at) < 0:
            return False
        try:
            fresh = self.uplink is None
            if fresh:
                self.uplink = self.board.connect()
            self._announce(fresh)
            self._flush()
        except LinkError as exc:
            self._link_down(now_ms, exc)
            return False
        if self._retry_at is not None:
            self.board.log("link_up", sent=self._seq, dropped=self.ring.dropped)
        self._retry_s = 0
        self._retry_at = None
        return True

    def persist(self, force=False):
        """Save the count and its companions (see Store for when flash is hit)."""
        self.state["count"] = self.counter.count
        self.state["dropped"] = self.ring.dropped
        self.state["seq"] = self._seq
        self.state["roms"] = list(self.probes.known) if self.probes else []
        self.store.save(self.state, self.board.seconds(), force)

    def close(self):
        """Leave the broker cleanly, if connected."""
        if self.uplink is not None:
            self.uplink.close()
            self.uplink = None

    def _announce(self, fresh):
        """Publish discovery on a new connection or when the probes changed.

        After a deep-sleep wake the RTC state says what was announced since
        power-on; the documents are retained, so they are not sent again.
        """
        probes = list(self.probes.known) if self.probes else []
        announced = self.state.get("announced")
        repeat = fresh and not self.config["deep_sleep_s"]
        if announced == probes and not repeat:
            return
        for topic, payload in messages.discovery(self.config, probes):
            self.uplink.publish(topic, payload, True)
        self.state["announced"] = probes

    def _flush(self):
        topic = messages.state_topic(self.config["device_id"])
        while len(self.ring):
            payload = messages.state_payload(self.ring.oldest(), self.ring.dropped)
            self.uplink.publish(topic, payload, False)
            self.ring.pop()

    def _link_down(self, now_ms, exc):
        if self._retry_at is None:
            self.board.log("link_down", reason=str(exc), waiting=len(self.ring))
        if self.uplink is not None:
            self.uplink.close()
            self.uplink = None
        self._retry_s = min(max(RETRY_FIRST_S, 2 * self._retry_s), self._retry_max())
        self._retry_at = ticks_add(now_ms, self._retry_s * 1000)

    def _retry_max(self):
        return self.config["retry_max_s"]

    def _temperatures(self):
        if self.probes is None:
            return None
        if self.probes.start():
            self.board.sleep_ms(self.config["onewire"]["conversion_ms"])
        return self.probes.read()
