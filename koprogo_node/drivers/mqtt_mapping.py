"""MQTT messages to readings, as the profiles in sensors/mqtt/ describe (pure).

A profile is data. Besides its `[profile]` header it holds `[[topics]]`
tables, each with the topic patterns it covers and `[[topics.values]]` rules
saying where a value sits in the payload and what it means:

    auto_detect = true        # false: only used when named explicitly
    exclude = ["zigbee2mqtt/bridge/#"]

    [[topics]]
    patterns = ["tele/{device}/SENSOR"]
    payload = "json"          # or "plain": the payload is one number or word
    unwrap = ["StatusSNS"]    # descend into the first of these keys present
    time = "Time"             # the device's own time, used when plausible
    time_not_before = "ENERGY.TotalStartTime"
    quiet = false             # true: a payload with no mapped value is normal

    [[topics.values]]
    path = "ENERGY.Total"     # dotted, with [0] indexes; "" is the whole payload
    channel = "import_total"
    unit = "kWh"
    kind = "counter"          # or "gauge" (the default)
    scale = 1.0               # multiplies the raw value
    states = { ON = 1, OFF = 0 }   # words (and true/false) to numbers
    only_with = "power"       # skip unless this path is present too

Patterns use MQTT's `+` (one level) and `#` (any levels, first or last), and
named placeholders matching one level or part of one: `{device}` names the
device, any other (`{id}`, `{name}`) may be used in `channel`. A path may hold
placeholders too (`switch:{id}.apower`, `meters[{id}].power`), which then
match every key or index. A value that is a list or an object of numbers
becomes one reading per element, the channel suffixed `_1`, `_2`... or with
the key. A `[topics.names]` table overrides channel, unit, kind or scale by
the topic's `{name}` (ESPHome object ids).

Sensors are named `<prefix>.<device>.<channel>`, both sanitised to
[A-Za-z0-9_-]. A topic that no profile covers yields nothing. Reject reasons:

    bad_json        the payload is not JSON (or is empty)
    bad_payload     a plain payload that is not UTF-8 text
    not_a_number    a mapped value that is not a finite number or known word
    no_match        the topic is covered but no mapped value is in the payload
    no_device       neither the topic nor the caller names the device
    no_timestamp    no plausible device time and no clock stamp was given
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..core.clock import Stamp
from ..core.readings import Kind, Reading, Reject
from ..errors import ConfigError
from .profiles import list_profiles, load_profile, profiles_dir

__all__ = ["MqttProfile", "decode_message", "mqtt_profile", "sanitise"]

Output = Reading | Reject

# Device clocks before this are unset (a Tasmota without NTP starts in 1970
# or at its firmware build date).
EARLIEST_DEVICE_TS = datetime(2015, 1, 1).timestamp()
# A device time is kept when it is at most this far behind a trusted stamp
# (messages the broker queued while we were away) ...
MAX_DEVICE_DELAY_S = 7 * 24 * 3600.0
# ... and at most this far ahead of it.
MAX_DEVICE_AHEAD_S = 300.0

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")
_PIECE = re.compile(r"([^\[\]]*)((?:\[[^\]]+\])*)")
_TIME_FORMATS = ("%Y-%m-%dT%H:%M:%S", "%Y.%m.%d %H:%M:%S", "%Y-%m-%d %H:%M:%S")


@dataclass(frozen=True, slots=True)
class ValueRule:
    """Where one value sits in a payload and what it means."""

    path: tuple[tuple[str, Any], ...]
    channel: str
    unit: str = ""
    kind: Kind = Kind.GAUGE
    scale: float = 1.0
    states: dict[str, float] = field(default_factory=dict)
    only_with: tuple[tuple[str, Any], ...] | None = None


@dataclass(frozen=True, slots=True)
class TopicRule:
    """Topics read the same way, and the values their payloads carry."""

    patterns: tuple[re.Pattern[str], ...]
    values: tuple[ValueRule, ...]
    payload: str = "json"
    unwrap: tuple[str, ...] = ()
    time: tuple[tuple[str, Any], ...] | None = None
    time_not_before: tuple[tuple[str, Any], ...] | None = None
    quiet: bool = False
    names: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MqttProfile:
    """A parsed mqtt profile."""

    name: str
    title: str
    topics: tuple[TopicRule, ...]
    exclude: tuple[re.Pattern[str], ...] = ()
    auto_detect: bool = True

    def match(self, topic: str) -> tuple[TopicRule, dict[str, str]] | None:
        """The rule covering `topic` and the placeholders it captured."""
        if any(p.fullmatch(topic) for p in self.exclude):
            return None
        for rule in self.topics:
            for pattern in rule.patterns:
                found = pattern.fullmatch(topic)
                if found is not None:
                    return rule, found.groupdict()
        return None


@dataclass(frozen=True, slots=True)
class _When:
    ts: float
    trusted: bool = True
    mono_s: float | None = None


def sanitise(name: str) -> str:
    """Make a device or channel name safe for a sensor name."""
    return _UNSAFE.sub("_", name.strip())


def mqtt_profile(name: str) -> MqttProfile:
    """The parsed mqtt profile `name`; ConfigError when unknown or invalid."""
    return _cached_profile(str(profiles_dir()), name)


@functools.lru_cache(maxsize=64)
def _cached_profile(root: str, name: str) -> MqttProfile:
    raw = load_profile("mqtt", name)
    return _parse_profile(raw.name, raw.title, raw.body, str(raw.path))


def _auto_profiles() -> list[MqttProfile]:
    """Every profile that may be picked by topic, in file order."""
    found = [mqtt_profile(p.name) for p in list_profiles("mqtt")]
    return [p for p in found if p.auto_detect]


def decode_message(
    profile_name: str | None,
    topic: str,
    payload: bytes,
    prefix: str = "mqtt",
    stamp: Stamp | None = None,
    *,
    device: str = "",
) -> list[Output]:
    """Map one MQTT message to readings and rejects.

    `profile_name` None picks the first profile whose patterns cover the
    topic. `device` overrides the device name taken from the topic. `stamp`
    times the readings unless the payload carries a plausible time of its
    own; with neither, the values are rejected as no_timestamp.
    """
    found = _find_rule(profile_name, topic)
    if found is None:
        return []
    rule, groups = found
    device = sanitise(device or groups.get("device", ""))
    if not device:
        return [_reject(prefix, "no_device", f"topic {topic!r} names no device")]
    doc = _parse_payload(rule, payload)
    if isinstance(doc, str):
        return [_reject(prefix, doc, _describe(payload))]
    return _map(rule, groups, doc, _Context(prefix, device, topic, stamp))


def _find_rule(
    profile_name: str | None, topic: str
) -> tuple[TopicRule, dict[str, str]] | None:
    """The profile rule covering `topic`, from one profile or any."""
    if profile_name is not None:
        return mqtt_profile(profile_name).match(topic)
    for profile in _auto_profiles():
        found = profile.match(topic)
        if found is not None:
            return found
    return None


def _parse_payload(rule: TopicRule, payload: bytes) -> Any:
    """The decoded payload, wrapped so a reason string cannot be mistaken."""
    if rule.payload == "plain":
        try:
            return [payload.decode("utf-8").strip()]
        except UnicodeDecodeError:
            return "bad_payload"
    try:
        doc = json.loads(payload)
    except (UnicodeDecodeError, ValueError):
        return "bad_json"
    for key in rule.unwrap:
        if isinstance(doc, dict) and isinstance(doc.get(key), dict):
            doc = doc[key]
            break
    return [doc]


def _describe(payload: bytes) -> str:
    if not payload:
        return "empty payload"
    text = payload[:60].decode("utf-8", "replace")
    return f"payload {text!r}" + ("..." if len(payload) > 60 else "")


@dataclass(frozen=True, slots=True)
class _Context:
    prefix: str
    device: str
    topic: str
    stamp: Stamp | None

    def sensor(self, channel: str) -> str:
        return f"{self.prefix}.{self.device}.{channel}"


def _map(
    rule: TopicRule, groups: dict[str, str], wrapped: list[Any], ctx: _Context
) -> list[Output]:
    """Map a decoded payload through the rule's values."""
    doc = wrapped[0]
    when = _when(rule, doc, ctx.stamp)
    out: list[Output] = []
    for value_rule in rule.values:
        value_rule = _named(rule, value_rule, groups)
        if value_rule.only_with is not None and not _resolve(doc, value_rule.only_with):
            continue
        for raw, captures in _resolve(doc, value_rule.path):
            channel = value_rule.channel.format_map({**groups, **captures})
            out.extend(_readings(value_rule, sanitise(channel), raw, when, ctx))
    if not out and not rule.quiet:
        detail = f"no mapped value in {_describe(json.dumps(doc).encode())}"
        return [_reject(ctx.prefix, "no_match", detail)]
    return out


def _named(rule: TopicRule, value_rule: ValueRule, groups: dict[str, str]) -> ValueRule:
    """Apply the `[topics.names]` override for the topic's `{name}`, if any."""
    override = rule.names.get(groups.get("name", ""))
    if not override:
        return value_rule
    return ValueRule(
        path=value_rule.path,
        channel=override.get("channel", value_rule.channel),
        unit=override.get("unit", value_rule.unit),
        kind=Kind(override.get("kind", value_rule.kind)),
        scale=float(override.get("scale", value_rule.scale)),
        states=value_rule.states,
        only_with=value_rule.only_with,
    )


def _readings(
    rule: ValueRule, channel: str, raw: Any, when: _When | Reject, ctx: _Context
) -> list[Output]:
    """One reading per number in `raw` (lists and objects are spread)."""
    out: list[Output] = []
    for suffix, item in _spread(raw):
        name = channel + suffix
        sensor = ctx.sensor(name)
        value = _number(item, rule)
        if value is None:
            out.append(_reject(ctx.prefix, "not_a_number", f"{item!r}", sensor))
        elif isinstance(when, Reject):
            out.append(_reject(ctx.prefix, when.reason, when.detail, sensor))
        else:
            out.append(_reading(sensor, value, rule, when))
    return out


def _spread(raw: Any) -> Iterator[tuple[str, Any]]:
    """Per-channel arrays and per-phase objects, one element at a time."""
    if isinstance(raw, list):
        for index, item in enumerate(raw, start=1):
            yield f"_{index}", item
    elif isinstance(raw, dict):
        for key, item in raw.items():
            yield f"_{sanitise(str(key)).lower()}", item
    else:
        yield "", raw


def _number(raw: Any, rule: ValueRule) -> float | None:
    """The scaled value, or None unless a finite number or a known word."""
    if rule.states:
        word = ("true" if raw else "false") if isinstance(raw, bool) else str(raw)
        if word.strip() in rule.states:
            return float(rule.states[word.strip()])
    if isinstance(raw, bool):
        return None
    if isinstance(raw, (int, float)):
        value = float(raw)
    elif isinstance(raw, str):
        try:
            value = float(raw.strip())
        except ValueError:
            return None
    else:
        return None
    return value * rule.scale if math.isfinite(value) else None


def _reading(sensor: str, value: float, rule: ValueRule, when: _When) -> Reading:
    return Reading(
        sensor=sensor,
        ts=when.ts,
        value=value,
        unit=rule.unit,
        kind=rule.kind,
        clock_trusted=when.trusted,
        mono_s=when.mono_s,
    )


def _reject(prefix: str, reason: str, detail: str, sensor: str | None = None) -> Reject:
    return Reject(source=prefix, reason=reason, detail=detail, sensor=sensor)


def _when(rule: TopicRule, doc: Any, stamp: Stamp | None) -> _When | Reject:
    """The device's time when plausible, else the caller's stamp."""
    device_ts = _device_time(rule, doc)
    if device_ts is not None and _plausible(device_ts, stamp):
        return _When(device_ts)
    if stamp is not None:
        return _When(stamp.ts, stamp.trusted, stamp.mono_s)
    return Reject("", "no_timestamp", "no plausible device time and no clock stamp")


def _device_time(rule: TopicRule, doc: Any) -> float | None:
    """The payload's own time, unless absent, unreadable or before its start."""
    if rule.time is None:
        return None
    found = _resolve(doc, rule.time)
    ts = _parse_time(found[0][0]) if found else None
    if ts is None or ts < EARLIEST_DEVICE_TS:
        return None
    if rule.time_not_before is not None:
        start = _resolve(doc, rule.time_not_before)
        start_ts = _parse_time(start[0][0]) if start else None
        # Tasmota's counter start is later than "now" when its clock is unset.
        if start_ts is not None and ts < start_ts:
            return None
    return ts


def _plausible(device_ts: float, stamp: Stamp | None) -> bool:
    """An untrusted stamp cannot judge a device time, so it wins then."""
    if stamp is None:
        return True
    if not stamp.trusted:
        return False
    return -MAX_DEVICE_DELAY_S <= device_ts - stamp.ts <= MAX_DEVICE_AHEAD_S


def _parse_time(raw: Any) -> float | None:
    """Unix seconds from a number or a date-time; naive times are local."""
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        return float(raw) if math.isfinite(raw) else None
    if not isinstance(raw, str):
        return None
    try:
        return datetime.fromisoformat(raw).timestamp()
    except ValueError:
        pass
    for fmt in _TIME_FORMATS:
        try:
            return datetime.strptime(raw, fmt).timestamp()
        except ValueError:
            continue
    return None


def _resolve(doc: Any, path: tuple[tuple[str, Any], ...]) -> list[tuple[Any, dict]]:
    """Every (value, captures) at `path`; missing and null values are absent."""
    found: list[tuple[Any, dict]] = [(doc, {})]
    for step, arg in path:
        found = [hit for node, caps in found for hit in _step(node, caps, step, arg)]
    return [(value, caps) for value, caps in found if value is not None]


def _step(node: Any, caps: dict, step: str, arg: Any) -> list[tuple[Any, dict]]:
    if step == "key":
        return [(node[arg], caps)] if isinstance(node, dict) and arg in node else []
    if step == "index":
        fits = isinstance(node, list) and -len(node) <= arg < len(node)
        return [(node[arg], caps)] if fits else []
    if step == "keys" and isinstance(node, dict):
        hits = ((arg.fullmatch(str(k)), v) for k, v in node.items())
        return [(v, {**caps, **m.groupdict()}) for m, v in hits if m]
    if step == "indexes" and isinstance(node, list):
        return [(v, {**caps, arg: str(i)}) for i, v in enumerate(node)]
    return []


# Parsing profiles -------------------------------------------------------------


def _parse_profile(name: str, title: str, body: dict, where: str) -> MqttProfile:
    topics = body.get("topics")
    if not isinstance(topics, list) or not topics:
        raise ConfigError(f"mqtt profile {where}: needs at least one [[topics]]")
    try:
        return MqttProfile(
            name=name,
            title=title,
            topics=tuple(_parse_topic(t) for t in topics),
            exclude=tuple(_compile_pattern(p) for p in body.get("exclude", ())),
            auto_detect=bool(body.get("auto_detect", True)),
        )
    except (KeyError, TypeError, ValueError, re.error) as exc:
        raise ConfigError(f"mqtt profile {where}: {exc}") from exc


def _parse_topic(table: dict) -> TopicRule:
    patterns = table.get("patterns") or [table["pattern"]]
    payload = table.get("payload", "json")
    if payload not in ("json", "plain"):
        raise ValueError(f"payload must be 'json' or 'plain', got {payload!r}")
    return TopicRule(
        patterns=tuple(_compile_pattern(p) for p in patterns),
        values=tuple(_parse_value(v) for v in table["values"]),
        payload=payload,
        unwrap=tuple(table.get("unwrap", ())),
        time=_optional_path(table.get("time")),
        time_not_before=_optional_path(table.get("time_not_before")),
        quiet=bool(table.get("quiet", False)),
        names=dict(table.get("names", {})),
    )


def _parse_value(table: dict) -> ValueRule:
    return ValueRule(
        path=_parse_path(table.get("path", "")),
        channel=table["channel"],
        unit=table.get("unit", ""),
        kind=Kind(table.get("kind", "gauge")),
        scale=float(table.get("scale", 1.0)),
        states={str(k): float(v) for k, v in table.get("states", {}).items()},
        only_with=_optional_path(table.get("only_with")),
    )


def _optional_path(text: str | None) -> tuple[tuple[str, Any], ...] | None:
    return None if text is None else _parse_path(text)


def _parse_path(text: str) -> tuple[tuple[str, Any], ...]:
    """`a.b[0].c:{id}` to steps: key, index, keys (a pattern), indexes."""
    steps: list[tuple[str, Any]] = []
    for piece in text.split(".") if text else ():
        match = _PIECE.fullmatch(piece)
        if match is None:
            raise ValueError(f"path {text!r}: cannot read {piece!r}")
        key, indexes = match.groups()
        if key:
            steps.append(_key_step(key))
        for index in re.findall(r"\[([^\]]+)\]", indexes):
            steps.append(_index_step(index, text))
    return tuple(steps)


def _key_step(key: str) -> tuple[str, Any]:
    if _PLACEHOLDER.search(key) is None:
        return ("key", key)
    return ("keys", re.compile(_level_regex(key)))


def _index_step(index: str, text: str) -> tuple[str, Any]:
    placeholder = _PLACEHOLDER.fullmatch(index)
    if placeholder is not None:
        return ("indexes", placeholder.group(1))
    if re.fullmatch(r"-?\d+", index) is None:
        raise ValueError(f"path {text!r}: index {index!r} is not a number")
    return ("index", int(index))


def _compile_pattern(pattern: str) -> re.Pattern[str]:
    """A topic pattern with +, # and {placeholders} as an anchored regex."""
    levels = pattern.split("/")
    regex = ""
    for position, level in enumerate(levels):
        if level == "#" and position == 0:
            regex += "(?:.*/)?"
        elif level == "#" and position == len(levels) - 1:
            regex += "(?:/.*)?"
        elif level == "#":
            raise ValueError(f"pattern {pattern!r}: '#' must be first or last")
        else:
            joint = "" if position == 0 or regex.endswith("(?:.*/)?") else "/"
            regex += joint + _level_regex(level)
    return re.compile(regex)


def _level_regex(level: str) -> str:
    """One topic level: `+`, or literal text around `{placeholders}`."""
    if level == "+":
        return "[^/]+"
    parts = _PLACEHOLDER.split(level)
    literal = (re.escape(p) for p in parts[0::2])
    named = (f"(?P<{n}>[^/]+?)" for n in parts[1::2])
    regex = ""
    for text, group in zip(literal, [*named, ""]):
        regex += text + group
    return regex
