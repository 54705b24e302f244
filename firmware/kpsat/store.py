"""The counter and what goes with it, kept across resets and deep sleep (pure).

Two places hold the state. RTC memory (ESP32) survives deep sleep and soft
resets but not a power cut, and costs no flash wear, so it takes every save.
The flash file survives everything; it is rewritten only when what it holds
changed and `every_s` passed since it was last written, or when forced
(before a deep sleep on a board without RTC memory). After a power cut the
count resumes from the file, so pulses counted since its last write are
lost: at most `every_s` worth.
"""

from kpsat.compat import json

# Fields worth a flash write when they change.
DURABLE = ("count", "dropped", "roms")
STATE_FILE = "state.json"
BUFFER_FILE = "buffer.json"


class Store:
    """Loads and saves the state dict and the unsent readings."""

    def __init__(self, root, rtc=None, every_s=3600):
        self.root = root
        self.rtc = rtc
        self.every_s = every_s
        self.file_writes = 0
        self._on_file = None

    def load(self):
        """The saved state: RTC memory when valid, else the file, else fresh."""
        state = None
        if self.rtc is not None:
            state = _decode(self.rtc.read())
        from_file = _decode(self._read(STATE_FILE))
        if from_file is not None:
            self._on_file = _durable(from_file)
            if state is None:
                # A power cut: announce again, the broker may have lost them.
                from_file.pop("announced", None)
        state = state or from_file or {}
        state.setdefault("count", 0)
        state.setdefault("dropped", 0)
        state.setdefault("roms", [])
        return state

    def save(self, state, now_s, force=False):
        """Save `state`; True when the flash file was written too."""
        durable = _durable(state)
        last = state.get("file_at")
        due = force or last is None or now_s - last >= self.every_s
        to_file = due and durable != self._on_file
        if to_file:
            state["file_at"] = now_s
        if self.rtc is not None:
            self.rtc.write(json.dumps(state).encode())
        if to_file:
            self._write(STATE_FILE, json.dumps(state))
            self._on_file = durable
            self.file_writes += 1
        return to_file

    def load_buffer(self):
        """Readings left unsent before a deep sleep, oldest first."""
        records = _decode(self._read(BUFFER_FILE))
        return records if isinstance(records, list) else []

    def save_buffer(self, records):
        """Keep unsent readings through deep sleep; nothing is written if none."""
        if records:
            self._write(BUFFER_FILE, json.dumps(records))
        elif self._read(BUFFER_FILE) is not None:
            _remove(self._path(BUFFER_FILE))

    def _path(self, name):
        return self.root.rstrip("/") + "/" + name if self.root else name

    def _read(self, name):
        try:
            with open(self._path(name)) as handle:
                return handle.read()
        except OSError:
            return None

    def _write(self, name, text):
        """Write through a temporary file so a reset mid-write keeps the old one."""
        path = self._path(name)
        with open(path + ".tmp", "w") as handle:
            handle.write(text)
        try:
            _rename(path + ".tmp", path)
        except OSError:
            # FAT refuses to rename onto an existing file; littlefs does not.
            _remove(path)
            _rename(path + ".tmp", path)


def _durable(state):
    return [state.get(key) for key in DURABLE]


def _decode(raw):
    """Parsed JSON, or None for nothing, a blank RTC or a torn write."""
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _rename(old, new):
    import os

    os.rename(old, new)


def _remove(path):
    import os

    try:
        os.remove(path)
    except OSError:
        pass
