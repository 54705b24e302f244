"""The federation's roster: which node keys are admitted, signed by the
federation's own key (the cooperative that runs the network).

On disk and on the wire: CBOR `[roster_bytes, signature]`, the signature by
the federation key over `DOMAIN + roster_bytes`. The roster holds a serial
number that only grows, so a node keeps the newest roster it has seen and a
replayed older one (with a revoked key still in it) is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cbor2

from ..errors import ConfigError
from .identity import NodeKey, public_key_of, verify

VERSION = 1
DOMAIN = b"koprogo-roster-v1\x00"


@dataclass(frozen=True)
class Roster:
    """A verified roster."""

    federation: bytes
    serial: int
    issued_ts: float
    members: dict[bytes, str] = field(default_factory=dict)  # key -> name
    revoked: dict[bytes, float] = field(default_factory=dict)  # key -> when

    def admitted(self) -> frozenset[bytes]:
        """Keys whose messages are accepted."""
        return frozenset(k for k in self.members if k not in self.revoked)

    def __contains__(self, key: object) -> bool:
        return key in self.members and key not in self.revoked


def empty(federation_key: NodeKey, now: float) -> bytes:
    """A first, signed roster with no members."""
    return _sign(Roster(federation_key.public_key, 0, now), federation_key)


def admit(
    signed: bytes, federation_key: NodeKey, peer: str, name: str, now: float
) -> bytes:
    """The next roster, with `peer` (a peer id) admitted under `name`."""
    roster = read(signed, federation_key.public_key)
    key = _key_of(peer)
    members = {**roster.members, key: name}
    revoked = {k: t for k, t in roster.revoked.items() if k != key}
    return _sign(
        Roster(roster.federation, roster.serial + 1, now, members, revoked),
        federation_key,
    )


def revoke(signed: bytes, federation_key: NodeKey, peer: str, now: float) -> bytes:
    """The next roster, with `peer` revoked from now on."""
    roster = read(signed, federation_key.public_key)
    key = _key_of(peer)
    if key not in roster.members:
        raise ConfigError(f"{peer} is not on the roster")
    revoked = {**roster.revoked, key: now}
    return _sign(
        Roster(roster.federation, roster.serial + 1, now, roster.members, revoked),
        federation_key,
    )


def read(signed: bytes, federation: bytes) -> Roster:
    """Verify a signed roster against the federation key; ConfigError if not."""
    try:
        encoded, signature = cbor2.loads(signed)
        data = cbor2.loads(encoded)
        roster = Roster(
            federation=data["federation"],
            serial=int(data["serial"]),
            issued_ts=float(data["issued"]),
            members=dict(data["members"]),
            revoked=dict(data["revoked"]),
        )
    except (cbor2.CBORDecodeError, ValueError, TypeError, KeyError) as exc:
        raise ConfigError(f"not a roster: {exc}") from exc
    if roster.federation != federation:
        raise ConfigError("roster is signed for another federation key")
    if not verify(federation, DOMAIN + encoded, signature):
        raise ConfigError("roster signature does not verify")
    return roster


def newer(current: Roster | None, candidate: Roster) -> bool:
    """Whether `candidate` should replace `current` (serials only grow)."""
    return current is None or candidate.serial > current.serial


def _key_of(peer: str) -> bytes:
    try:
        return public_key_of(peer)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


def _sign(roster: Roster, federation_key: NodeKey) -> bytes:
    encoded = cbor2.dumps(
        {
            "v": VERSION,
            "federation": roster.federation,
            "serial": roster.serial,
            "issued": roster.issued_ts,
            "members": roster.members,
            "revoked": roster.revoked,
        },
        canonical=True,
    )
    signature = federation_key.sign(DOMAIN + encoded)
    return cbor2.dumps([encoded, signature], canonical=True)
