"""The signed handshake that binds a TLS channel to two node keys (no I/O).

Four messages, each one binary WebSocket frame, deterministic CBOR maps:

    client -> server  HELLO   {v, nonce: Nc, key: Kc}
    server -> client  REPLY   {v, nonce: Ns, key: Ks, record, sig: Ss}
    client -> server  FINISH  {v, record, sig: Sc}
    server -> client  ACCEPTED

Ss signs DOMAIN + CBOR ["server", Nc, Ns, H, Ks, Kc] with Ks, and Sc signs
DOMAIN + CBOR ["client", Nc, Ns, H, Kc, Ks] with Kc, where H is the SHA-256
of the server's TLS certificate: as the server knows it, and as the client
received it. A man in the middle terminating TLS with another certificate
shows the client another H, so the server's signature fails there; fresh
nonces on both sides make every recorded signature useless in a later
session; the role keeps a signature from being reflected back as the other
side's. `record` is the sender's signed address record (records.py), kept as
bytes for peer exchange.

Each failure raises HandshakeRefused with a short reason string.
"""

from __future__ import annotations

import secrets
from collections.abc import Container
from dataclasses import dataclass
from typing import Any

import cbor2

from ..errors import KoprogoError
from .identity import NodeKey, verify

VERSION = 1
DOMAIN = b"koprogo-handshake-v1\x00"
NONCE_BYTES = 32
MAX_MESSAGE_BYTES = 4096
ACCEPTED = cbor2.dumps({"v": VERSION, "ok": True}, canonical=True)
_CLIENT, _SERVER = "client", "server"


class HandshakeRefused(KoprogoError):
    """Raised when a handshake message fails a check; `reason` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class HandshakeResult:
    """The authenticated peer: its public key and the record it sent."""

    peer_key: bytes
    peer_record: bytes


class ClientHandshake:
    """The dialling side: hello, then finish on the server's reply."""

    def __init__(
        self,
        key: NodeKey,
        roster: Container[bytes],
        record: bytes,
        nonce: bytes | None = None,
    ) -> None:
        self._key = key
        self._roster = roster
        self._record = record
        self._nonce = nonce or secrets.token_bytes(NONCE_BYTES)
        self._result: HandshakeResult | None = None

    def hello(self) -> bytes:
        """The first message."""
        return _encode({"nonce": self._nonce, "key": self._key.public_key})

    def finish(self, reply: bytes, cert_sha256: bytes) -> bytes:
        """Check the server's reply against the certificate seen; the answer."""
        fields = _decode(reply, {"nonce": bytes, "key": bytes, "record": bytes})
        server_key, server_nonce = fields["key"], fields["nonce"]
        own_key = self._key.public_key
        _check_nonce(server_nonce, self._nonce)
        _check_peer(server_key, self._key, self._roster)
        signed = _transcript(
            _SERVER, self._nonce, server_nonce, cert_sha256, server_key, own_key
        )
        if not verify(server_key, signed, fields["sig"]):
            raise HandshakeRefused("bad_signature")
        self._result = HandshakeResult(server_key, fields["record"])
        own = _transcript(
            _CLIENT, self._nonce, server_nonce, cert_sha256, own_key, server_key
        )
        return _encode({"record": self._record, "sig": self._key.sign(own)})

    @property
    def server_key(self) -> bytes | None:
        """The server's key, once its reply has been checked."""
        return self._result.peer_key if self._result else None

    def accepted(self, message: bytes) -> HandshakeResult:
        """The authenticated server, once it has accepted us."""
        if self._result is None:
            raise HandshakeRefused("out_of_order")
        if message != ACCEPTED:
            raise HandshakeRefused("not_accepted")
        return self._result


class ServerHandshake:
    """The listening side: reply to the hello, then accept the finish."""

    def __init__(
        self,
        key: NodeKey,
        roster: Container[bytes],
        record: bytes,
        cert_sha256: bytes,
        nonce: bytes | None = None,
    ) -> None:
        self._key = key
        self._roster = roster
        self._record = record
        self._cert_sha256 = cert_sha256
        self._nonce = nonce or secrets.token_bytes(NONCE_BYTES)
        self._client: tuple[bytes, bytes] | None = None  # key, nonce

    def reply(self, hello: bytes) -> bytes:
        """Check the client's hello; the signed reply."""
        fields = _decode(hello, {"nonce": bytes, "key": bytes}, signed=False)
        client_key, client_nonce = fields["key"], fields["nonce"]
        _check_nonce(client_nonce, self._nonce)
        _check_peer(client_key, self._key, self._roster)
        self._client = client_key, client_nonce
        signed = _transcript(
            _SERVER,
            client_nonce,
            self._nonce,
            self._cert_sha256,
            self._key.public_key,
            client_key,
        )
        return _encode(
            {
                "nonce": self._nonce,
                "key": self._key.public_key,
                "record": self._record,
                "sig": self._key.sign(signed),
            }
        )

    def accept(self, finish: bytes) -> HandshakeResult:
        """Check the client's signature; then send ACCEPTED."""
        if self._client is None:
            raise HandshakeRefused("out_of_order")
        client_key, client_nonce = self._client
        fields = _decode(finish, {"record": bytes})
        signed = _transcript(
            _CLIENT,
            client_nonce,
            self._nonce,
            self._cert_sha256,
            client_key,
            self._key.public_key,
        )
        if not verify(client_key, signed, fields["sig"]):
            raise HandshakeRefused("bad_signature")
        return HandshakeResult(client_key, fields["record"])


def _transcript(
    role: str,
    client_nonce: bytes,
    server_nonce: bytes,
    cert_sha256: bytes,
    signer_key: bytes,
    peer_key: bytes,
) -> bytes:
    """What a side signs: everything both sides must agree on."""
    fields = [role, client_nonce, server_nonce, cert_sha256, signer_key, peer_key]
    return DOMAIN + cbor2.dumps(fields, canonical=True)


def _check_nonce(peer_nonce: bytes, own_nonce: bytes) -> None:
    if len(peer_nonce) != NONCE_BYTES:
        raise HandshakeRefused("malformed")
    if peer_nonce == own_nonce:  # our own nonce reflected back at us
        raise HandshakeRefused("nonce_reused")


def _check_peer(peer_key: bytes, own: NodeKey, roster: Container[bytes]) -> None:
    if len(peer_key) != 32:
        raise HandshakeRefused("malformed")
    if peer_key == own.public_key:
        raise HandshakeRefused("self_connection")
    if peer_key not in roster:
        raise HandshakeRefused("not_on_roster")


def _encode(fields: dict[str, Any]) -> bytes:
    return cbor2.dumps({"v": VERSION, **fields}, canonical=True)


def _decode(
    message: bytes, types: dict[str, type], signed: bool = True
) -> dict[str, Any]:
    """The fields of a handshake message, each of the expected type."""
    if len(message) > MAX_MESSAGE_BYTES:
        raise HandshakeRefused("too_large")
    expected = {"v": int, **types, **({"sig": bytes} if signed else {})}
    try:
        fields = cbor2.loads(message)
    except (cbor2.CBORDecodeError, RecursionError, ValueError, TypeError):
        raise HandshakeRefused("malformed") from None
    if not isinstance(fields, dict) or set(fields) != set(expected):
        raise HandshakeRefused("malformed")
    if not all(isinstance(fields[name], kind) for name, kind in expected.items()):
        raise HandshakeRefused("malformed")
    if fields["v"] != VERSION:
        raise HandshakeRefused("unsupported_version")
    return fields
