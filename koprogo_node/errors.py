"""Errors raised by koprogo-node.

KoprogoError
├── ConfigError            invalid configuration file or value
├── SensorError
│   ├── SensorUnavailable  a device or file cannot be opened or read now
│   └── DecodeError        bytes from a device are not a valid frame
└── LedgerError
    ├── LedgerBusy         another process holds the ledger for writing
    └── LedgerCorrupt      the database cannot be read as a ledger
"""


class KoprogoError(Exception):
    """Base of every error this package raises on purpose."""


class ConfigError(KoprogoError):
    """Raised when configuration is invalid; the message names key and fix."""


class SensorError(KoprogoError):
    """Base of errors met while reading a sensor."""


class SensorUnavailable(SensorError):
    """Raised when a device, port or file cannot be opened or read right now."""


class DecodeError(SensorError):
    """Raised when bytes from a device do not form a valid frame."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class LedgerError(KoprogoError):
    """Base of errors met while using the ledger."""


class LedgerBusy(LedgerError):
    """Raised when another process already writes to the ledger."""


class LedgerCorrupt(LedgerError):
    """Raised when the database file is not a readable ledger."""


class KeyFileError(KoprogoError):
    """Raised when the node's key file cannot be read, made or trusted."""


class WebUnavailable(KoprogoError):
    """Raised when the web server cannot bind its configured address."""


class FederationUnavailable(KoprogoError):
    """Raised when gossip cannot listen on its configured address."""

    def __init__(self, message: str, errno: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno
