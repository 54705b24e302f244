"""The satellite's two failures: a bad config, and a link that is down.

Exception
 +-- ConfigError   config.json cannot be used; the device stops
 +-- LinkError     Wi-Fi or the broker is unreachable; readings wait
"""


class ConfigError(Exception):
    """Raised when config.json is missing, invalid or still has placeholders."""


class LinkError(Exception):
    """Raised when Wi-Fi or the broker cannot be reached or drops a publish."""
