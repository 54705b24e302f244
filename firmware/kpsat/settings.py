"""config.json on the device: read, checked and completed with defaults (pure).

Every value is checked for its type and range before anything runs, and keys
the firmware does not know are refused: a misspelt key would otherwise leave
its default in force without a word.
"""

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
# The device id names MQTT topics, the MQTT client and the node's sensors.
DEVICE_ID_MAX = 32
# ESP32 GPIO 0-39 (ESP32-S3 up to 48), Pico W GP0-GP28: one range for all.
PIN_MAX = 48
# Intervals become ticks_ms deadlines, which wrap after about 6 days.
DAY_S = 86400
MS_MAX = 60000
# Sections that are objects; the optional ones may be null or left out.
SECTIONS = ("wifi", "broker", "meter", "leak", "onewire")
OPTIONAL = ("meter", "leak", "onewire")


def _whole(low, high=None):
    if high is None:
        return ("whole", low, high, "a whole number >= %d" % low)
    return ("whole", low, high, "a whole number from %d to %d" % (low, high))


KINDS = tuple(sorted(METERS))
TEXT = ("text", 0, 0, "text")
FLAG = ("flag", 0, 0, "true or false")
PIN = ("whole", 0, PIN_MAX, "a GPIO number from 0 to 48 (ESP32 0-39, Pico W 0-28)")
SECONDS = ("number", 0, DAY_S, "a number of seconds above 0, at most %d" % DAY_S)
# (dotted key, rule): each rule is (kind, low, high, what is expected).
RULES = (
    ("device_id", ("name", 1, DEVICE_ID_MAX, "1 to 32 letters, digits, '-' or '_'")),
    ("wifi.ssid", TEXT),
    ("wifi.password", TEXT),
    ("broker.host", TEXT),
    ("broker.port", _whole(1, 65535)),
    ("broker.user", TEXT),
    ("broker.password", TEXT),
    ("broker.keepalive_s", _whole(0, 65535)),  # MQTT's 16-bit field; 0: off
    ("broker.timeout_s", SECONDS),
    ("meter.kind", ("choice", KINDS, 0, "one of " + ", ".join(KINDS))),
    ("meter.pin", PIN),
    ("meter.pulses_per_unit", _whole(1)),
    ("meter.active_low", FLAG),
    ("meter.debounce_ms", _whole(0, MS_MAX)),
    ("leak.pin", PIN),
    ("leak.active_high", FLAG),
    ("leak.debounce_ms", _whole(0, MS_MAX)),
    ("onewire.pin", PIN),
    ("onewire.conversion_ms", _whole(0, MS_MAX)),
    ("interval_s", SECONDS),
    ("deep_sleep_s", _whole(0, DAY_S)),
    ("buffer_size", _whole(1)),
    # Below a minute the count could wear the flash out within months.
    ("persist_every_s", _whole(60, DAY_S)),
    ("wifi_timeout_s", _whole(1, DAY_S)),
    ("retry_max_s", _whole(1, DAY_S)),
    ("ntp_host", TEXT),
    (
        "discovery_prefix",
        ("topic", 0, 0, "MQTT topic levels, no '+', '#' or empty level"),
    ),
)


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
    try:
        return check(raw, path)
    except ConfigError:
        raise
    except Exception as exc:  # a case the checks miss must still stop cleanly
        raise ConfigError(
            "%s cannot be used (%s: %s); compare it with config.example.json"
            % (path, type(exc).__name__, exc)
        ) from exc


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
    _refuse(where, _shape_problems(raw))
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
    _refuse(where, _value_problems(config))
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


def _refuse(where, problems):
    if problems:
        raise ConfigError("%s: %s" % (where, "; ".join(problems)))


def _shape_problems(raw):
    """Sections that are not objects, and keys no rule knows."""
    problems = _unknown(raw, "")
    for section in SECTIONS:
        value = raw.get(section)
        if isinstance(value, dict):
            problems.extend(_unknown(value, section + "."))
        elif section in OPTIONAL and value is not None:
            problems.append(_expected(section, "an object or null", value))
        elif section not in OPTIONAL and section in raw:
            problems.append(_expected(section, "an object", value))
    return problems


def _unknown(node, prefix):
    known = []
    for key, _ in RULES:
        if key.startswith(prefix):
            name = key[len(prefix) :].split(".")[0]
            if name not in known:
                known.append(name)
    problems = []
    for key in sorted(node):
        if key not in known:
            problem = "unknown key %s" % _shown(prefix + key)
            near = _nearest(key, known)
            if near is not None:
                problem += " (did you mean '%s'?)" % (prefix + near)
            problems.append(problem)
    return problems


def _value_problems(config):
    problems = []
    for key, rule in RULES:
        section = key.split(".")[0]
        if section != key and config[section] is None:
            continue
        value = _get(config, key)
        if not _fits(rule, value):
            problems.append(_expected(key, rule[3], value))
    owners = {}
    for section in OPTIONAL:
        pin = _get(config, section + ".pin")
        if not _fits(PIN, pin):
            continue
        if pin in owners:
            problems.append(
                "%s.pin: GPIO %d is already %s.pin; each input needs its own pin"
                % (section, pin, owners[pin])
            )
        owners[pin] = section
    return problems


def _fits(rule, value):
    kind, low, high = rule[0], rule[1], rule[2]
    if kind == "flag":
        return isinstance(value, bool)
    if kind == "choice":
        return isinstance(value, str) and value in low
    if kind == "text":
        return isinstance(value, str)
    if kind == "name":
        return (
            isinstance(value, str)
            and low <= len(value) <= high
            and all(c in SAFE for c in value)
        )
    if kind == "topic":
        return (
            isinstance(value, str)
            and "" not in value.split("/")
            and not any(c in "+#\0" for c in value)
        )
    # bool is an int subclass: true must not pass for 1.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if kind == "whole":
        return (
            isinstance(value, int) and low <= value and (high is None or value <= high)
        )
    return value - value == 0 and low < value <= high  # NaN and infinities fail


def _expected(key, what, value):
    return "%s: expected %s, got %s" % (key, what, _shown(value))


def _shown(value):
    """repr(value), cut short: a stray long string should not flood the console."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _nearest(word, choices):
    """The choice at most two edits from `word`, if any: the likely intended key."""
    best, best_edits = None, 3
    for choice in choices:
        if abs(len(choice) - len(word)) < best_edits:
            edits = _edits(word, choice)
            if edits < best_edits:
                best, best_edits = choice, edits
    return best


def _edits(a, b):
    """Levenshtein distance: insertions, deletions and substitutions."""
    row = list(range(len(b) + 1))
    for i, char in enumerate(a):
        diagonal, row[0] = row[0], i + 1
        for j, other in enumerate(b):
            cost = diagonal + (char != other)
            diagonal = row[j + 1]
            row[j + 1] = min(row[j + 1] + 1, row[j] + 1, cost)
    return row[-1]


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
