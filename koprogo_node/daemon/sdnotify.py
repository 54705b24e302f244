"""systemd's notification protocol (sd_notify), when NOTIFY_SOCKET is set.

Written here rather than taken from a library: the protocol is one datagram
per message, the `sdnotify` package has been unmaintained for years, and
`systemd-python` needs libsystemd headers and a compiler on the Pi.
"""

from __future__ import annotations

import os
import socket

import structlog

log = structlog.get_logger(__name__)


class Notifier:
    """Sends READY=1, WATCHDOG=1, STOPPING=1 and STATUS= to systemd."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        if address.startswith("@"):
            address = "\0" + address[1:]
        self._address = address or None
        usec = env.get("WATCHDOG_USEC", "")
        self.watchdog_s = int(usec) / 1e6 if usec.isdigit() else None

    @property
    def enabled(self) -> bool:
        """Whether systemd is listening."""
        return self._address is not None

    def send(self, message: str) -> None:
        """Send one notification; failures are logged, never raised."""
        if self._address is None:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.connect(self._address)
                sock.sendall(message.encode())
        except OSError as exc:
            log.warning("sd_notify_failed", message=message, error=str(exc))

    def ready(self) -> None:
        self.send("READY=1")

    def watchdog(self) -> None:
        self.send("WATCHDOG=1")

    def extend_start(self, seconds: int) -> None:
        """Ask for `seconds` more before the start times out (slow but busy)."""
        self.send(f"EXTEND_TIMEOUT_USEC={seconds * 1_000_000}")

    def stopping(self) -> None:
        self.send("STOPPING=1")
