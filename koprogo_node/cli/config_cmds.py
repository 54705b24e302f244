"""`koprogo-node config show`."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import click
import tomli_w

from ..config import plain_data
from ..config.model import Config
from .common import print_json

SECRET_KEYS = ("decryption_key", "password", "token", "secret")
STARS = "********"


def show(cfg: Config, as_json: bool) -> None:
    """Print the effective configuration with secrets masked, as TOML or JSON."""
    data = masked(plain_data(cfg))
    if as_json:
        print_json(data)
    else:
        click.echo(tomli_w.dumps(data), nl=False)


def masked(value):
    """A copy of a config's plain data with every secret replaced by stars.

    Secrets are the values of secret-named keys, and the password and query
    of any URL (where integrations put their tokens).
    """
    if isinstance(value, dict):
        return {
            k: (STARS if any(s in k for s in SECRET_KEYS) and v else masked(v))
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [masked(v) for v in value]
    if isinstance(value, str) and "://" in value:
        return masked_url(value)
    return value


def masked_url(url: str) -> str:
    """`url` with the password of its user part and its query starred."""
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return STARS  # unparsable: do not guess what is secret in it
    netloc = parts.netloc
    if parts.password is not None:
        netloc = f"{parts.username}:{STARS}@{parts.hostname}{port}"
    query = STARS if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
