"""Signed envelopes for gossip, and their validation, cheapest check first.

An envelope is the deterministic CBOR of `{v, topic, origin, seq, ts, body}`
(map keys in canonical order) plus an Ed25519 signature over
`DOMAIN + those bytes`, so a signature made for another purpose can never be
replayed here. On the wire: CBOR `[envelope_bytes, signature]`. The message
id is the SHA-256 of the wire bytes.

Validation order (DESIGN.md): size cap, bounded decode, time window, roster,
duplicate, signature, application check. Each failure is a reason string.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Callable, Container

import cbor2

from .identity import NodeKey, verify

VERSION = 1
DOMAIN = b"koprogo-gossip-envelope-v1\x00"
MAX_MESSAGE_BYTES = 64 * 1024
MAX_SKEW_S = 300.0  # clocks of honest nodes may differ by this much
MAX_AGE_S = 7 * 86_400.0  # catch-up after a week offline is still accepted
_FIELDS = ("v", "topic", "origin", "seq", "ts", "body")


@dataclass(frozen=True, slots=True)
class Envelope:
    """A validated message."""

    topic: str
    origin: bytes  # Ed25519 public key of the publishing node
    seq: int
    ts: float
    body: Any
    message_id: bytes


def seal(key: NodeKey, topic: str, seq: int, ts: float, body: Any) -> bytes:
    """The wire bytes of a message published by `key`'s node."""
    fields = {
        "v": VERSION,
        "topic": topic,
        "origin": key.public_key,
        "seq": seq,
        "ts": ts,
        "body": body,
    }
    encoded = cbor2.dumps(fields, canonical=True)
    return cbor2.dumps([encoded, key.sign(DOMAIN + encoded)], canonical=True)


def message_id(wire: bytes) -> bytes:
    """The id of a message: the SHA-256 of its wire bytes."""
    return hashlib.sha256(wire).digest()


def open_envelope(
    wire: bytes,
    now: float,
    roster: Container[bytes],
    seen: Container[bytes],
    check: Callable[[Envelope], str | None] = lambda envelope: None,
    check_time: bool = True,
) -> Envelope | str:
    """Validate `wire`; return the envelope, or the reason it is refused."""
    if len(wire) > MAX_MESSAGE_BYTES:
        return "too_large"
    decoded = _decode(wire)
    if isinstance(decoded, str):
        return decoded
    fields, encoded, signature = decoded
    if check_time and not now - MAX_AGE_S <= fields["ts"] <= now + MAX_SKEW_S:
        return "outside_time_window"
    if fields["origin"] not in roster:
        return "not_on_roster"
    msg_id = message_id(wire)
    if msg_id in seen:
        return "duplicate"
    if not verify(fields["origin"], DOMAIN + encoded, signature):
        return "bad_signature"
    envelope = Envelope(
        fields["topic"],
        fields["origin"],
        fields["seq"],
        float(fields["ts"]),
        fields["body"],
        msg_id,
    )
    return check(envelope) or envelope


def authentic(wire: bytes) -> Envelope | str:
    """Decode and check the signature only: for messages stored long ago."""
    return open_envelope(wire, 0.0, _Everyone(), (), lambda envelope: None, False)


class _Everyone:
    def __contains__(self, key: object) -> bool:
        return True


def _decode(wire: bytes) -> tuple[dict, bytes, bytes] | str:
    return decode_signed(wire, _well_formed)


def decode_signed(
    blob: bytes, well_formed: Callable[[Any], bool]
) -> tuple[dict, bytes, bytes] | str:
    """Decode CBOR `[encoded, signature]` and the fields inside `encoded`.

    Returns (fields, encoded, signature), or "malformed" when a layer does not
    decode, `well_formed(fields)` is false, or the encoding is not canonical.
    """
    try:
        outer = cbor2.loads(blob)
        if not (isinstance(outer, list) and len(outer) == 2):
            return "malformed"
        encoded, signature = outer
        if not isinstance(encoded, bytes) or not isinstance(signature, bytes):
            return "malformed"
        fields = cbor2.loads(encoded)
    except (cbor2.CBORDecodeError, RecursionError, ValueError, TypeError):
        return "malformed"
    if not well_formed(fields) or cbor2.dumps(fields, canonical=True) != encoded:
        return "malformed"  # also refuses non-canonical encodings
    return fields, encoded, signature


def _well_formed(fields: Any) -> bool:
    return (
        isinstance(fields, dict)
        and tuple(sorted(fields)) == tuple(sorted(_FIELDS))
        and fields["v"] == VERSION
        and isinstance(fields["topic"], str)
        and isinstance(fields["origin"], bytes)
        and len(fields["origin"]) == 32
        and isinstance(fields["seq"], int)
        and fields["seq"] >= 0
        and isinstance(fields["ts"], (int, float))
    )
