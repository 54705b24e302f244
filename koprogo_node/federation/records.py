"""Signed address records: where a node can be reached, in its own words.

A record is the deterministic CBOR of `{v, key, addrs, ts}` plus an Ed25519
signature by `key` over `DOMAIN + those bytes`; on the wire CBOR
`[record_bytes, signature]`. Its own domain tag keeps a record signature from
ever passing as an envelope's or a handshake's. Records travel in the
handshake and in peer exchange; a node believes one only from a roster member.
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import cbor2

from .envelope import decode_signed
from .identity import NodeKey, verify

VERSION = 1
DOMAIN = b"koprogo-address-record-v1\x00"
MAX_RECORD_BYTES = 2048
MAX_ADDRESSES = 8
MAX_ADDRESS_CHARS = 200
MAX_SKEW_S = 300.0  # clocks of honest nodes may differ by this much
MAX_AGE_S = 7 * 86_400.0  # a node re-signs its record well within this
SCHEME = "wss"
_FIELDS = ("v", "key", "addrs", "ts")


@dataclass(frozen=True, slots=True)
class AddressRecord:
    """A verified address record."""

    key: bytes  # Ed25519 public key of the node that signed it
    addrs: tuple[str, ...]
    ts: float


def make_record(key: NodeKey, addrs: Sequence[str], ts: float) -> bytes:
    """The wire bytes of `key`'s node saying it listens on `addrs` at `ts`."""
    for address in addrs:
        split_address(address)  # refuse what no reader would accept
    if len(addrs) > MAX_ADDRESSES:
        raise ValueError(f"at most {MAX_ADDRESSES} addresses, got {len(addrs)}")
    fields = {"v": VERSION, "key": key.public_key, "addrs": list(addrs), "ts": ts}
    encoded = cbor2.dumps(fields, canonical=True)
    return cbor2.dumps([encoded, key.sign(DOMAIN + encoded)], canonical=True)


def read_record(
    blob: bytes, now: float, roster: Container[bytes]
) -> AddressRecord | str:
    """Validate `blob`; return the record, or the reason it is refused."""
    if len(blob) > MAX_RECORD_BYTES:
        return "too_large"
    decoded = _decode(blob)
    if isinstance(decoded, str):
        return decoded
    fields, encoded, signature = decoded
    if not now - MAX_AGE_S <= fields["ts"] <= now + MAX_SKEW_S:
        return "outside_time_window"
    if fields["key"] not in roster:
        return "not_on_roster"
    if not verify(fields["key"], DOMAIN + encoded, signature):
        return "bad_signature"
    return AddressRecord(fields["key"], tuple(fields["addrs"]), float(fields["ts"]))


def format_address(host: str, port: int) -> str:
    """The `wss://host:port` address of a listener, brackets around IPv6."""
    shown = f"[{host}]" if ":" in host else host
    return f"{SCHEME}://{shown}:{port}"


def split_address(address: str) -> tuple[str, int]:
    """The host and port of a `wss://host:port` address; ValueError if not one."""
    if not isinstance(address, str) or len(address) > MAX_ADDRESS_CHARS:
        raise ValueError(f"not an address: {address!r}")
    parts = urlsplit(address)
    port = parts.port  # raises ValueError when out of range
    if parts.scheme != SCHEME or not parts.hostname or port is None:
        raise ValueError(f"expected wss://host:port, got {address!r}")
    if parts.path not in ("", "/") or parts.query or parts.username:
        raise ValueError(f"expected wss://host:port, got {address!r}")
    return parts.hostname, port


def _decode(blob: bytes) -> tuple[dict, bytes, bytes] | str:
    return decode_signed(blob, _well_formed)


def _well_formed(fields: Any) -> bool:
    return (
        isinstance(fields, dict)
        and tuple(sorted(fields)) == tuple(sorted(_FIELDS))
        and fields["v"] == VERSION
        and isinstance(fields["key"], bytes)
        and len(fields["key"]) == 32
        and isinstance(fields["ts"], (int, float))
        and isinstance(fields["addrs"], list)
        and len(fields["addrs"]) <= MAX_ADDRESSES
        and all(_is_address(address) for address in fields["addrs"])
    )


def _is_address(address: Any) -> bool:
    try:
        split_address(address)
    except ValueError:
        return False
    return True
