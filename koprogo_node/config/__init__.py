"""Load and validate the node's TOML configuration, once, at start."""

from __future__ import annotations

import dataclasses
import os
import tomllib
from pathlib import Path

from ..errors import ConfigError
from .model import (
    Config,
    CsvSource,
    GpioPulseSource,
    ModbusSource,
    MqttSource,
    OneWireSource,
    P1Source,
    SimulatedSource,
    SourceConfig,
)
from .schema import build

DEFAULT_CONFIG_PATH = Path("/etc/koprogo-node/node.toml")
DEFAULT_DATA_DIR = Path("/var/lib/koprogo-node")

__all__ = [
    "Config",
    "ConfigError",
    "CsvSource",
    "GpioPulseSource",
    "ModbusSource",
    "MqttSource",
    "OneWireSource",
    "P1Source",
    "SimulatedSource",
    "SourceConfig",
    "load",
    "plain_data",
    "from_mapping",
    "parse",
    "resolve_config_path",
    "resolve_data_dir",
]


def from_mapping(data: dict) -> Config:
    """Validate a parsed TOML document."""
    return build(Config, data)


def load(path: Path | None) -> Config:
    """Read and validate the file at `path`; None gives the defaults."""
    if path is None:
        return Config()
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no such file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    return parse(text, path)


def parse(text: str, origin: Path | str = "") -> Config:
    """Validate configuration text read from `origin` (named in errors)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        where = f"{origin}: " if origin else ""
        raise ConfigError(f"{where}not valid TOML: {exc}") from exc
    return from_mapping(data)


def plain_data(cfg: Config) -> dict:
    """The configuration as TOML-ready data that `load` reads back."""
    data = dataclasses.asdict(cfg)
    data["sources"] = [
        {"type": given.TYPE, **source}
        for source, given in zip(data["sources"], cfg.sources)
    ]
    return data


def resolve_config_path(given: str | None) -> Path | None:
    """Pick the config file: option, then KOPROGO_CONFIG, then /etc if present."""
    if given:
        return Path(given)
    if os.environ.get("KOPROGO_CONFIG"):
        return Path(os.environ["KOPROGO_CONFIG"])
    return DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.exists() else None


def resolve_data_dir(given: str | None) -> Path:
    """Pick the data directory: option, then KOPROGO_DATA_DIR, then /var/lib."""
    if given:
        return Path(given)
    return Path(os.environ.get("KOPROGO_DATA_DIR") or DEFAULT_DATA_DIR)
