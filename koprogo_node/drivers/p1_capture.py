"""Recording a P1 port: its telegrams, byte for byte, in a replayable file.

The stream is cut with the decoder's own framing, so a capture holds exactly
the telegrams the node would have tried to decode, each from "/" to its CRC
and ended with CRLF as DSMR prescribes; `sensors decode p1` and a p1 source
whose `path` is the file replay it. Bytes outside telegrams are counted, not
kept.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO

from ..core.readings import Reject
from .p1_crc import crc16
from .p1_framing import Frame, Framer
from .p1_reader import read_port

if TYPE_CHECKING:
    import serial

# Line ends and padding between telegrams are not worth reporting as skipped.
_BLANK = b" \t\r\n\0"
_LINE_END = b"\r\n"


@dataclass
class CaptureStats:
    """What a capture saw, for the summary shown to the technician."""

    telegrams: int = 0
    crc_good: int = 0
    crc_bad: int = 0
    crc_absent: int = 0  # DSMR 2.2 and 3 send none
    bytes_read: int = 0
    skipped_bytes: int = 0  # outside any telegram kept, blanks not counted
    rejects: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict:
        """The counts as plain values, for JSON."""
        return {
            "telegrams": self.telegrams,
            "crc_good": self.crc_good,
            "crc_bad": self.crc_bad,
            "crc_absent": self.crc_absent,
            "bytes_read": self.bytes_read,
            "skipped_bytes": self.skipped_bytes,
            "rejects": dict(self.rejects),
        }


class TelegramRecorder:
    """Cuts bytes into telegrams and writes each to `out` as it was sent."""

    def __init__(self, out: BinaryIO) -> None:
        self.stats = CaptureStats()
        self._out = out
        self._framer = Framer("capture")
        self._visible_read = 0
        self._visible_kept = 0

    def push(self, data: bytes) -> None:
        """Add bytes read from the port."""
        self.stats.bytes_read += len(data)
        self._visible_read += _visible(data)
        self._take(self._framer.push(data))

    def finish(self) -> None:
        """End of capture: keep a last telegram, count what was left open."""
        self._take(self._framer.finish())

    def _take(self, pieces: list[Frame | Reject]) -> None:
        for piece in pieces:
            if isinstance(piece, Reject):
                self.stats.rejects[piece.reason] += 1
            else:
                self._write(piece)
        self.stats.skipped_bytes = self._visible_read - self._visible_kept

    def _write(self, frame: Frame) -> None:
        """Write one telegram and count it by the state of its CRC."""
        self._out.write(frame.body + frame.crc + _LINE_END)
        self._out.flush()  # a capture cut short keeps what it had
        self._visible_kept += _visible(frame.body) + len(frame.crc)
        self.stats.telegrams += 1
        if not frame.crc:
            self.stats.crc_absent += 1
        elif crc16(frame.body) == int(frame.crc, 16):
            self.stats.crc_good += 1
        else:
            self.stats.crc_bad += 1


def capture(
    port: serial.Serial,
    path: str,
    out: BinaryIO,
    seconds: float | None,
    on_progress: Callable[[CaptureStats], None] = lambda stats: None,
) -> CaptureStats:
    """Record the open `port` into `out` for `seconds` (None: until Ctrl-C).

    Blocking; the caller opens the port with `p1_reader.open_port` and
    closes it. Raises SensorUnavailable when the port fails; Ctrl-C ends the
    capture normally.
    """
    recorder = TelegramRecorder(out)
    deadline = None if seconds is None else time.monotonic() + seconds
    try:
        while deadline is None or time.monotonic() < deadline:
            recorder.push(read_port(port, path))
            on_progress(recorder.stats)
    except KeyboardInterrupt:
        pass  # the technician's way to end an open-ended capture
    recorder.finish()
    return recorder.stats


def _visible(data: bytes) -> int:
    """The number of bytes in `data` that are not blanks."""
    return len(data.translate(None, _BLANK))
