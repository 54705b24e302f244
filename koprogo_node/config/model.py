"""The node's configuration as frozen, typed values.

Every key is documented in config/node.example.toml; defaults live here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import ClassVar

from .schema import option

SERIAL_FORMATS = ("8N1", "7E1")
NAME = {"pattern": r"[A-Za-z0-9_-]+", "pattern_doc": "letters, digits, '-' or '_'"}
NAME_OR_EMPTY = {"pattern": r"[A-Za-z0-9_-]*", "pattern_doc": NAME["pattern_doc"]}
BUILDING_ID = {
    "pattern": r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?",
    "pattern_doc": "a hostname label: lower-case letters, digits and '-'",
}
HEATING_TYPES = (
    "unknown",
    "gas",
    "oil",
    "heat_network",
    "heat_pump",
    "electric",
    "individual",
)
P1_SPECS = (
    "belgium",
    "v5",
    "v4",
    "v3",
    "v2_2",
    "luxembourg",
    "sweden",
    "austria",
    "iskra_ie",
    "eon_hungary",
    "easymeter",
)


@dataclass(frozen=True, kw_only=True)
class NodeConfig:
    building_id: str = option(
        "unnamed-building", "short id, used as hostname", **BUILDING_ID
    )
    name: str = option("", "human name of the building, shown on the dashboard")


@dataclass(frozen=True, kw_only=True)
class AlertsConfig:
    """Leak and anomaly detection, and what an alert is said to cost."""

    enabled: bool = option(True, "run the detectors on the ledger's data")
    check_every_s: float = option(60.0, "how often the detectors run", min=1)
    electricity_eur_per_kwh: float = option(0.35, "tariff for cost estimates", min=0)
    water_eur_per_m3: float = option(5.0, "water and sewerage, per m³", min=0)
    gas_eur_per_m3: float = option(1.2, "gas, per m³", min=0)
    heat_eur_per_kwh: float = option(0.15, "district heat, per kWh", min=0)
    water_min_history_days: int = option(
        14, "days of a water meter's history before its leak rules arm", min=1
    )
    models: bool = option(True, "also run the shipped ONNX models")
    release_key: str = option(
        "",
        "hex Ed25519 key that signs model files; empty: sha256 check only",
        pattern=r"([0-9a-fA-F]{64})?",
        pattern_doc="64 hex digits",
    )
    mqtt_topic: str = option(
        "koprogo/{building_id}/alerts",
        "topic prefix for alerts on the MQTT sources' brokers; empty: none",
    )

    def __post_init__(self) -> None:
        try:
            topic = self.mqtt_topic.format(building_id="b")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"mqtt_topic: got {self.mqtt_topic!r}; only {{building_id}}"
                " may be filled in"
            ) from exc
        if "+" in topic or "#" in topic:
            raise ValueError(
                f"mqtt_topic: got {self.mqtt_topic!r}; MQTT wildcards + and #"
                " are not allowed"
            )


@dataclass(frozen=True, kw_only=True)
class WebhooksConfig:
    """Where alert transitions are POSTed, signed with HMAC-SHA256."""

    urls: tuple[str, ...] = option((), "http(s) URLs to POST each alert change to")
    secret: str = option("", "shared secret for the X-Koprogo-Signature header")

    def __post_init__(self) -> None:
        if self.urls and not self.secret:
            raise ValueError("secret is required when urls are set")


@dataclass(frozen=True, kw_only=True)
class BuildingConfig:
    """What the building is; only coarse bands of it leave the node."""

    lots: int = option(0, "apartments and other private lots; 0: unknown", min=0)
    floor_area_m2: float = option(0.0, "heated floor area; 0: unknown", min=0)
    construction_year: int = option(0, "0: unknown", min=0, max=2100)
    postcode: str = option(
        "", "Belgian postcode", pattern=r"([1-9][0-9]{3})?", pattern_doc="4 digits"
    )
    heating: str = option(
        "unknown",
        "main heating of the building",
        choices=HEATING_TYPES,
    )


@dataclass(frozen=True, kw_only=True)
class PrivacyConfig:
    min_lots: int = option(
        10, "publish a total only if this many lots add to it", min=2
    )
    max_lot_share: float = option(
        0.15, "and no single lot is above this share of it", min=0.01, max=1.0
    )
    lot_pattern: str = option(
        r"lot\d+",
        "regex matching the device part of a sensor name that is one lot's meter",
    )
    noise_epsilon: float = option(
        0.0, "Laplace noise per published value; 0: none", min=0
    )
    noise_budget_per_day: float = option(
        10.0, "epsilon that may be spent per day when noise is on", min=0.01
    )

    def __post_init__(self) -> None:
        try:
            re.compile(self.lot_pattern)
        except re.error as exc:
            raise ValueError(
                f"lot_pattern: {self.lot_pattern!r} is not a regular expression ({exc})"
            ) from exc


@dataclass(frozen=True, kw_only=True)
class FederationConfig:
    enabled: bool = option(False, "exchange aggregates with other buildings")
    host: str = option("0.0.0.0", "listen address for gossip (TLS WebSocket)")
    port: int = option(4610, "listen port for gossip", min=0, max=65535)
    advertise: tuple[str, ...] = option(
        (), "wss://host:port addresses others reach us at; empty: derived"
    )
    bootstrap: tuple[str, ...] = option((), "wss://host:port peers to dial")
    lan_discovery: bool = option(True, "find peers on the LAN with zeroconf")
    federation_key: str = option(
        "",
        "hex public key of the federation that signs the roster",
        pattern=r"([0-9a-fA-F]{64})?",
        pattern_doc="64 hex digits",
    )
    roster: str = option("roster.cbor", "signed roster, relative to the data dir")
    publish: tuple[str, ...] = option(
        ("quarter", "hour", "day"), "aggregate tiers to publish"
    )
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)

    def __post_init__(self) -> None:
        if self.enabled and not self.federation_key:
            raise ValueError("federation_key is required when federation is enabled")
        unknown = set(self.publish) - {"quarter", "hour", "day"}
        if unknown:
            raise ValueError(
                f"publish: unknown tier {sorted(unknown)[0]!r};"
                " allowed: quarter, hour, day"
            )


@dataclass(frozen=True, kw_only=True)
class TimeConfig:
    trust: str = option(
        "kernel", "when the wall clock is trusted", choices=("kernel", "always")
    )


@dataclass(frozen=True, kw_only=True)
class RetentionConfig:
    raw_days: int = option(14, "raw readings", min=1)
    r15m_days: int = option(400, "15-minute rollups", min=1)
    r1h_days: int = option(1830, "hourly rollups", min=1)
    r1d_days: int = option(0, "daily rollups; 0 keeps them for ever", min=0)


@dataclass(frozen=True, kw_only=True)
class LedgerConfig:
    file: str = option("ledger.db", "database file, relative to the data dir")
    batch_rows: int = option(10_000, "commit when this many rows wait", min=1)
    batch_ms: int = option(30_000, "commit at least this often", min=10)
    retention: RetentionConfig = field(default_factory=RetentionConfig)


@dataclass(frozen=True, kw_only=True)
class IngestConfig:
    queue_size: int = option(
        2_000, "deliveries (a telegram, a poll) waiting for the ledger", min=10
    )


@dataclass(frozen=True, kw_only=True)
class WebConfig:
    enabled: bool = option(True, "serve the dashboard and API")
    host: str = option("127.0.0.1", "listen address")
    port: int = option(8080, "listen port", min=0, max=65535)
    anonymous_read: bool = option(
        False, "let anyone who reaches the port read the dashboard and GET API"
    )
    secure_cookies: bool = option(
        False, "always mark the session cookie Secure (behind an HTTPS proxy)"
    )


@dataclass(frozen=True, kw_only=True)
class ControlConfig:
    socket: str = option(
        "", "the CLI's Unix socket; empty: control.sock in the data directory"
    )
    group: str = option("koprogo", "group given the socket (mode 0660), if it exists")


@dataclass(frozen=True, kw_only=True)
class LogConfig:
    level: str = option(
        "info", "minimum level", choices=("debug", "info", "warning", "error")
    )
    format: str = option(
        "auto",
        "json, console, or auto (json unless on a TTY)",
        choices=("auto", "json", "console"),
    )


@dataclass(frozen=True, kw_only=True)
class P1Source:
    TYPE: ClassVar[str] = "p1"
    name: str = option("p1", "prefix of the sensor names", **NAME)
    path: str = option("", "serial device or a file of recorded telegrams")
    baudrate: int = option(115200, "serial speed", choices=(9600, 115200))
    serial_format: str = option("8N1", "bits, parity, stop", choices=SERIAL_FORMATS)
    spec: str = option("belgium", "telegram dialect", choices=P1_SPECS)
    interval_s: float = option(10.0, "keep one telegram per interval", min=0)
    channels: tuple[str, ...] = option((), "channels to keep; empty: defaults")
    decryption_key: str = option("", "hex key for encrypted meters (Smarty)")

    def __post_init__(self) -> None:
        _require_path(self, "path")


@dataclass(frozen=True, kw_only=True)
class SimulatedSource:
    TYPE: ClassVar[str] = "simulated"
    name: str = option("sim", "prefix of the sensor names", **NAME)
    lots: int = option(10, "apartments, each with a P1 meter", min=1, max=200)
    seed: int = option(1, "random seed, for repeatable buildings")
    speed: float = option(1.0, "simulated seconds per real second", min=0.01)
    step_s: float = option(60.0, "simulated seconds between telegrams", min=1)
    start: str = option("", "ISO start time; empty: yesterday 00:00 local")
    resume: str = option(
        "", "ISO time to start emitting at; meters run from `start` until then"
    )
    emit: str = option(
        "p1",
        "p1: telegrams on pseudo-terminals; readings: straight to ingest",
        choices=("p1", "readings"),
    )
    water_leak_l_per_h: float = option(0.0, "leak added to the water meter", min=0)
    water_leak_start_h: float = option(12.0, "simulated hours before leak", min=0)
    heating: str = option("gas", "building heating meter", choices=("gas", "heat"))
    extra_gauges: int = option(0, "extra simulated gauges (bench load)", min=0)


@dataclass(frozen=True, kw_only=True)
class CsvSource:
    TYPE: ClassVar[str] = "csv"
    name: str = option("replay", "prefix of the sensor names", **NAME)
    path: str = option("", "CSV file with a header row")
    sensor: str = option("value", "channel name under the prefix", **NAME)
    unit: str = option("", "unit of the values")
    kind: str = option("gauge", "counter or gauge", choices=("counter", "gauge"))
    timestamp_column: str = option("timestamp", "column holding the time")
    value_column: str = option("value", "column holding the value")
    time_format: str = option("%Y-%m-%d %H:%M:%S", "strptime format")
    timezone: str = option("UTC", "zone of naive timestamps (IANA name)")
    speed: float = option(1.0, "replay speed; 0 replays as fast as possible", min=0)
    rebase: bool = option(
        False, "shift the series so that it starts now (demo replays)"
    )
    loop: bool = option(False, "start again at the end")

    def __post_init__(self) -> None:
        _require_path(self, "path")


@dataclass(frozen=True, kw_only=True)
class ModbusDevice:
    name: str = option("", "device name, under the source's prefix", **NAME)
    profile: str = option("", "profile name from sensors/modbus/")
    unit_id: int = option(1, "Modbus slave address", min=1, max=247)
    poll_s: float = option(10.0, "seconds between polls", min=0.1)

    def __post_init__(self) -> None:
        if not self.name or not self.profile:
            raise ValueError("each device needs a name and a profile")


@dataclass(frozen=True, kw_only=True)
class ModbusSource:
    TYPE: ClassVar[str] = "modbus"
    name: str = option("modbus", "prefix of the sensor names", **NAME)
    transport: str = option("rtu", "rtu (RS-485) or tcp", choices=("rtu", "tcp"))
    port: str = option("", "serial device, for rtu")
    host: str = option("", "host name or address, for tcp")
    tcp_port: int = option(502, "TCP port, for tcp", min=1, max=65535)
    baudrate: int = option(9600, "serial speed, for rtu", min=1200, max=115200)
    serial_format: str = option(
        "8N1", "bits, parity, stop", choices=("8N1", "8E1", "8O1", "8N2")
    )
    timeout_s: float = option(1.0, "answer timeout per request", min=0.05)
    frame_gap_ms: float = option(5.0, "silence between frames on the bus", min=0)
    stale_after_s: float = option(60.0, "no answer this long: stale", min=1)
    devices: tuple[ModbusDevice, ...] = ()

    def __post_init__(self) -> None:
        key = "port" if self.transport == "rtu" else "host"
        _require_path(self, key)


@dataclass(frozen=True, kw_only=True)
class MqttSubscription:
    profile: str = option("", "profile name from sensors/mqtt/")
    topic: str = option("", "topic filter (+ and # allowed)")
    device: str = option(
        "", "device name; empty: taken from the topic", **NAME_OR_EMPTY
    )

    def __post_init__(self) -> None:
        if not self.profile or not self.topic:
            raise ValueError("each subscription needs a profile and a topic")
        problem = topic_filter_problem(self.topic)
        if problem:
            raise ValueError(f"topic {self.topic!r}: {problem}")


@dataclass(frozen=True, kw_only=True)
class MqttSource:
    TYPE: ClassVar[str] = "mqtt"
    name: str = option("mqtt", "prefix of the sensor names", **NAME)
    host: str = option("127.0.0.1", "broker host")
    port: int = option(1883, "broker port", min=1, max=65535)
    username: str = option("", "broker user")
    password: str = option("", "broker password (masked by config show)")
    tls: bool = option(False, "connect with TLS")
    ca_file: str = option("", "CA bundle for TLS; empty: the system's")
    client_id: str = option("", "empty: koprogo-<building_id>-<name>")
    keepalive_s: int = option(60, "MQTT keep-alive", min=5, max=3600)
    subscriptions: tuple[MqttSubscription, ...] = ()
    ha_discovery: bool = option(False, "publish readings with HA discovery")
    discovery_prefix: str = option("homeassistant", "HA discovery topic prefix")


@dataclass(frozen=True, kw_only=True)
class GpioPulseSource:
    TYPE: ClassVar[str] = "gpio_pulse"
    name: str = option("pulses", "prefix of the sensor name", **NAME)
    channel: str = option("water", "channel name under the prefix", **NAME)
    pin: int = option(17, "BCM pin number", min=0, max=53)
    pulses_per_unit: float = option(1.0, "S0: 1000 per kWh; water: 1 per L", min=1e-6)
    unit: str = option("L", "unit of the counter")
    debounce_ms: float = option(20.0, "edges closer than this are bounce", min=0)
    report_s: float = option(10.0, "emit the counter this often", min=0.1)
    pull_up: bool = option(True, "internal pull-up (contact to ground)")


@dataclass(frozen=True, kw_only=True)
class OneWireSource:
    TYPE: ClassVar[str] = "onewire"
    name: str = option("onewire", "prefix of the sensor names", **NAME)
    devices_dir: str = option("/sys/bus/w1/devices", "the kernel's 1-Wire folder")
    interval_s: float = option(30.0, "seconds between reads", min=1)


SourceConfig = (
    P1Source
    | SimulatedSource
    | CsvSource
    | ModbusSource
    | MqttSource
    | GpioPulseSource
    | OneWireSource
)


@dataclass(frozen=True, kw_only=True)
class Config:
    node: NodeConfig = field(default_factory=NodeConfig)
    time: TimeConfig = field(default_factory=TimeConfig)
    ledger: LedgerConfig = field(default_factory=LedgerConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    web: WebConfig = field(default_factory=WebConfig)
    control: ControlConfig = field(default_factory=ControlConfig)
    log: LogConfig = field(default_factory=LogConfig)
    building: BuildingConfig = field(default_factory=BuildingConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    webhooks: WebhooksConfig = field(default_factory=WebhooksConfig)
    federation: FederationConfig = field(default_factory=FederationConfig)
    sources: tuple[SourceConfig, ...] = ()

    def __post_init__(self) -> None:
        names = [s.name for s in self.sources]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"sources: name {name!r} is used twice")


def topic_filter_problem(topic: str) -> str | None:
    """Why `topic` is not a valid MQTT subscription filter, or None."""
    if not topic or "\0" in topic:
        return "a topic filter must be non-empty text"
    levels = topic.split("/")
    for n, level in enumerate(levels):
        if "#" in level and (level != "#" or n != len(levels) - 1):
            return "'#' must be a whole level, and the last one"
        if "+" in level and level != "+":
            return "'+' must be a whole level"
    return None


def _require_path(source: object, key: str) -> None:
    if not getattr(source, key):
        raise ValueError(f"{key} is required for a {source.TYPE} source")
