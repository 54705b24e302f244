"""`koprogo-node config show`."""

from __future__ import annotations

import dataclasses

import click
import tomli_w

from ..config.model import Config
from .common import print_json

SECRET_KEYS = ("decryption_key", "password", "token", "secret")


def show(cfg: Config, as_json: bool) -> None:
    """Print the effective configuration with secrets masked, as TOML or JSON."""
    data = masked(dataclasses.asdict(cfg))
    data["sources"] = [
        {"type": given.TYPE, **source}
        for source, given in zip(data["sources"], cfg.sources)
    ]
    if as_json:
        print_json(data)
    else:
        click.echo(tomli_w.dumps(data), nl=False)


def masked(value):
    """A copy of a config's plain data with every secret replaced by stars."""
    if isinstance(value, dict):
        return {
            k: ("********" if any(s in k for s in SECRET_KEYS) and v else masked(v))
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [masked(v) for v in value]
    return value
