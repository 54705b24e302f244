"""config.json on the device: read, checked and completed with defaults (pure)."""

from kpsat.compat import json
from kpsat.errors import ConfigError

PLACEHOLDER = "CHANGE-ME"
# Meter kinds and the node's channel names and units for them.
METERS = {
    "water": ("water", "m3"),
    "gas": ("gas", "m3"),
    "electricity": ("import_total", "kWh"),
}
REQUIRED = (
    "device_id",
    "wifi.ssid",
    "wifi.password",
    "broker.host",
    "broker.user",
    "broker.password",
)
DEFAULTS = {
    "broker": {"port": 1883, "keepalive_s": 60, "timeout_s": 10},
    "meter": None,
    "leak": None,
    "onewire": None,
    "interval_s": 60,
    "deep_sleep_s": 0,
    "buffer_size": 200,
    "persist_every_s": 3600,
    "wifi_timeout_s": 15,
    "retry_max_s": 300,
    "ntp_host": "",
    "discovery_prefix": "homeassistant",
}
METER_DEFAULTS = {"kind": "water", "active_low": True, "debounce_ms": 20}
LEAK_DEFAULTS = {"active_high": True, "debounce_ms": 500}
ONEWIRE_DEFAULTS = {"conversion_ms": 750}
SAFE = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"


def load(path):
    """The checked config from the JSON file at `path`."""
    try:
        with open(path) as handle:
            raw = json.load(handle)
    except OSError as exc:
        raise ConfigError(
            "cannot read %s (%s): copy config.example.json there and fill it in"
            % (path, exc)
        ) from exc
    except ValueError as exc:
        raise ConfigError("%s is not valid JSON: %s" % (path, exc)) from exc
    return check(raw, path)


def check(raw, where="config.json"):
    """`raw` completed with defaults; ConfigError naming every key to fix."""
    if not isinstance(raw, dict):
        raise ConfigError("%s must hold a JSON object" % where)
    left = placeholders(raw)
    if left:
        raise ConfigError(
            "%s still has placeholders in: %s. Put the real values there "
            "(see config.example.json) and reset the board" % (where, ", ".join(left))
        )
    missing = [key for key in REQUIRED if not _get(raw, key)]
    if missing:
        raise ConfigError("%s lacks: %s" % (where, ", ".join(missing)))
    config = _merged(DEFAULTS, raw)
    for key, defaults in (
        ("meter", METER_DEFAULTS),
        ("leak", LEAK_DEFAULTS),
        ("onewire", ONEWIRE_DEFAULTS),
    ):
        if config[key] is not None:
            config[key] = _merged(defaults, config[key])
    _validate(config, where)
    return config


def placeholders(node, prefix=""):
    """Dotted keys whose value still contains PLACEHOLDER."""
    found = []
    if isinstance(node, dict):
        for key in sorted(node):
            found.extend(placeholders(node[key], prefix + key + "."))
    elif isinstance(node, str) and PLACEHOLDER in node:
        found.append(prefix[:-1])
    return found


def _validate(config, where):
    device_id = config["device_id"]
    if not isinstance(device_id, str) or any(c not in SAFE for c in device_id):
        raise ConfigError(
            "%s: device_id must be letters, digits, '-' or '_', got %r"
            % (where, device_id)
        )
    meter = config["meter"]
    if meter is not None:
        if meter.get("kind") not in METERS:
            raise ConfigError(
                "%s: meter.kind must be one of %s, got %r"
                % (where, ", ".join(sorted(METERS)), meter.get("kind"))
            )
        ppu = meter.get("pulses_per_unit")
        if not isinstance(ppu, int) or ppu < 1:
            raise ConfigError(
                "%s: meter.pulses_per_unit must be a whole number >= 1, got %r"
                % (where, ppu)
            )
    for key in ("meter", "leak", "onewire"):
        if config[key] is not None and not isinstance(config[key].get("pin"), int):
            raise ConfigError("%s: %s.pin must be a pin number" % (where, key))
    if config["buffer_size"] < 1 or config["interval_s"] <= 0:
        raise ConfigError("%s: buffer_size and interval_s must be > 0" % where)


def _merged(defaults, given):
    """`given` over `defaults`, one level of nested objects deep."""
    merged = {}
    for key in defaults:
        merged[key] = defaults[key]
    for key in given:
        value = given[key]
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            inner = dict(merged[key])
            inner.update(value)
            value = inner
        merged[key] = value
    return merged


def _get(raw, dotted):
    node = raw
    for part in dotted.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node
