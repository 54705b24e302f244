"""`koprogo-node config show`."""

from __future__ import annotations

import dataclasses

import click

from ..config.model import Config
from .common import print_json

SECRET_KEYS = ("decryption_key", "password", "token", "secret")


def show(cfg: Config, as_json: bool) -> None:
    """Print the effective configuration with secrets masked."""
    data = _masked(dataclasses.asdict(cfg))
    for source, given in zip(data["sources"], cfg.sources):
        source["type"] = given.TYPE
    if as_json:
        print_json(data)
        return
    for section, values in data.items():
        if section == "sources":
            continue
        click.echo(f"[{section}]")
        for key, value in values.items():
            click.echo(f"{key} = {value!r}")
        click.echo()
    for source in data["sources"]:
        click.echo("[[sources]]")
        for key, value in source.items():
            click.echo(f"{key} = {value!r}")
        click.echo()


def _masked(value):
    if isinstance(value, dict):
        return {
            k: ("********" if any(s in k for s in SECRET_KEYS) and v else _masked(v))
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_masked(v) for v in value]
    return value
