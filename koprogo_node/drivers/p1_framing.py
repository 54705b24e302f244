"""Cutting a P1 byte stream into telegrams, and opening encrypted frames.

A telegram runs from "/" to "!", followed by its CRC (1-4 hex digits, CRC-16
over "/" to "!") and a line end. Encrypted meters send DLMS general-glo-cipher
frames instead, which carry their own length. Everything between telegrams
becomes a Reject, so a stream survives junk and cut-off telegrams.
"""

from __future__ import annotations

from dataclasses import dataclass

from dlms_cosem.protocol.xdlms import GeneralGlobalCipher

from ..core.readings import Reject

MAX_TELEGRAM_BYTES = 16 * 1024

_HEX_DIGITS = frozenset(b"0123456789ABCDEFabcdef")
_BLANK = b" \t\r\n\0"
_SYSTEM_TITLE_BYTES = 8
_NOT_A_FRAME = -1


@dataclass(frozen=True, slots=True)
class Frame:
    """One telegram as cut from the stream, not yet checked."""

    body: bytes  # from "/" up to and including "!"
    crc: bytes  # the hex digits after "!"; empty when there are none


class Framer:
    """Cuts a byte stream into telegrams; everything else becomes a Reject."""

    def __init__(self, source: str) -> None:
        self._source = source
        self._buf = bytearray()
        self._scanned = 0  # bytes of a telegram already searched for "!"/"/"
        self._junk_bytes = 0
        self._junk_sample = bytearray()
        self._junk_visible = False
        self._discarding = False  # the tail of an oversize telegram

    def push(self, data: bytes) -> list[Frame | Reject]:
        """Add bytes; return the telegrams and rejects they complete."""
        self._buf += data
        out: list[Frame | Reject] = []
        while self._step(out, final=False):
            pass
        return out

    def finish(self) -> list[Frame | Reject]:
        """End of input: close a telegram left open and report leftovers."""
        out: list[Frame | Reject] = []
        while self._step(out, final=True):
            pass
        if self._buf:
            size = len(self._buf)
            out.append(self._reject("truncated", f"{size} bytes, then end of input"))
            self._drop(size)
        self._end_junk(out)
        return out

    def _step(self, out: list[Frame | Reject], final: bool) -> bool:
        """Consume one junk run or telegram; return False when more is needed."""
        if not self._buf:
            return False
        if self._buf[0] != ord("/"):
            start = self._buf.find(b"/")
            end = len(self._buf) if start < 0 else start
            self._note_junk(self._buf[:end])
            self._drop(end)
            if start < 0:
                return False
        self._end_junk(out)  # at a "/": any junk run before it is over
        return self._cut(out, final)

    def _cut(self, out: list[Frame | Reject], final: bool) -> bool:
        """Cut off the telegram the buffer starts with, or return False to wait."""
        buf = self._buf
        start = max(self._scanned, 1)
        bang = buf.find(b"!", start)
        header = buf.find(b"/", start, bang if bang >= 0 else len(buf))
        if header >= 0:
            out.append(self._reject("truncated", f"{header} bytes, then a new '/'"))
            self._drop(header)
            return True
        if bang < 0:
            return self._wait_or_overflow(out)
        end = bang + 1
        while end < len(buf) and end - bang <= 4 and buf[end] in _HEX_DIGITS:
            end += 1
        if end == len(buf) and end - bang <= 4 and not final:
            self._scanned = bang  # the CRC may still be arriving
            return False
        out.append(Frame(bytes(buf[: bang + 1]), bytes(buf[bang + 1 : end])))
        self._drop(end)
        return True

    def _wait_or_overflow(self, out: list[Frame | Reject]) -> bool:
        """Wait for more bytes, or drop a telegram grown past the bound."""
        self._scanned = len(self._buf)
        if len(self._buf) > MAX_TELEGRAM_BYTES:
            detail = f"no '!' within {MAX_TELEGRAM_BYTES} bytes"
            out.append(self._reject("oversize", detail))
            self._drop(len(self._buf))
            self._discarding = True
        return False

    def _drop(self, size: int) -> None:
        del self._buf[:size]
        self._scanned = 0

    def _note_junk(self, chunk: bytes | bytearray) -> None:
        """Count bytes outside a telegram and keep a short sample."""
        if self._discarding or not chunk:
            return
        self._junk_bytes += len(chunk)
        self._junk_sample += chunk[: 40 - len(self._junk_sample)]
        self._junk_visible = self._junk_visible or bool(chunk.strip(_BLANK))

    def _end_junk(self, out: list[Frame | Reject]) -> None:
        """Report the junk run just ended, unless it was only whitespace."""
        if self._junk_visible:
            sample = bytes(self._junk_sample)
            detail = f"{self._junk_bytes} bytes outside a telegram: {sample!r}"
            out.append(self._reject("junk", detail))
        self._junk_bytes = 0
        self._junk_sample.clear()
        self._junk_visible = False
        self._discarding = False

    def _reject(self, reason: str, detail: str) -> Reject:
        return Reject(source=self._source, reason=reason, detail=detail)


class CipherFramer:
    """Cuts DLMS general-glo-cipher frames (encrypted telegrams) and opens them.

    A frame is: tag 0xDB, system-title length and title, an A-XDR length,
    then security byte, frame counter, ciphertext and GCM tag.
    """

    def __init__(self, source: str, key: bytes, auth_key: bytes) -> None:
        self._source = source
        self._key = key
        self._auth_key = auth_key
        self._buf = bytearray()

    def push(self, data: bytes) -> list[bytes | Reject]:
        """Add bytes; return the plain telegrams and rejects they complete."""
        self._buf += data
        out: list[bytes | Reject] = []
        while (frame := self._next_frame()) is not None:
            out.append(self._open(frame))
        return out

    def finish(self) -> list[Reject]:
        """End of input: report a frame cut short."""
        if not self._buf:
            return []
        detail = f"{len(self._buf)} bytes of an encrypted frame, then end of input"
        self._buf.clear()
        return [Reject(source=self._source, reason="truncated", detail=detail)]

    def _next_frame(self) -> bytes | None:
        """Take the next complete frame off the buffer, if there is one."""
        while True:
            start = self._buf.find(GeneralGlobalCipher.TAG)
            del self._buf[: start if start >= 0 else len(self._buf)]
            size = self._frame_size()
            if size != _NOT_A_FRAME:
                break
            del self._buf[:1]  # a stray tag byte: look for the next one
        if size is None or len(self._buf) < size:
            return None
        frame = bytes(self._buf[:size])
        del self._buf[:size]
        return frame

    def _frame_size(self) -> int | None:
        """Return the whole frame's size, or None until the header is in."""
        if len(self._buf) < 3:
            return None
        if self._buf[1] != _SYSTEM_TITLE_BYTES:
            return _NOT_A_FRAME
        at = 2 + _SYSTEM_TITLE_BYTES
        if len(self._buf) <= at:
            return None
        first = self._buf[at]
        # A-XDR length: one byte below 0x80, else 0x80 + the count of bytes
        # holding it (Smarty sends 0x82 and two bytes).
        width = first - 0x80 if first >= 0x80 else 0
        if width > 2:
            return _NOT_A_FRAME
        if len(self._buf) < at + 1 + width:
            return None
        length = int.from_bytes(self._buf[at + 1 : at + 1 + width], "big")
        length = length if width else first
        # A bounded size keeps a stray 0xDB from swallowing the frames after it.
        if length > MAX_TELEGRAM_BYTES:
            return _NOT_A_FRAME
        return at + 1 + width + length

    def _open(self, frame: bytes) -> bytes | Reject:
        """Decrypt one frame into a plain telegram."""
        try:
            apdu = GeneralGlobalCipher.from_bytes(frame)
            return bytes(apdu.to_plain_apdu(self._key, self._auth_key))
        # dlms_cosem raises several unrelated types on a bad key or frame.
        except Exception as exc:  # noqa: BLE001
            detail = f"{type(exc).__name__}: {exc}"
            return Reject(source=self._source, reason="decrypt_failed", detail=detail)
