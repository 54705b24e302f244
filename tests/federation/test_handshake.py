"""The signed handshake: both keys proven, bound to the server certificate."""

import hashlib

import cbor2
import pytest

from koprogo_node.federation.handshake import (
    ACCEPTED,
    DOMAIN,
    ClientHandshake,
    HandshakeRefused,
    HandshakeResult,
    ServerHandshake,
)
from koprogo_node.federation.identity import NodeKey

SERVER_CERT = hashlib.sha256(b"server certificate DER").digest()
MITM_CERT = hashlib.sha256(b"attacker certificate DER").digest()


@pytest.fixture
def keys(tmp_path):
    made = []
    for name in ("client", "server", "outsider"):
        (tmp_path / name).mkdir()
        made.append(NodeKey.load_or_create(tmp_path / name))
    return made


@pytest.fixture
def roster(keys):
    client, server, _ = keys
    return {client.public_key, server.public_key}


def run(client: ClientHandshake, server: ServerHandshake, seen_cert: bytes):
    """Pass the four messages; the results on both sides."""
    reply = server.reply(client.hello())
    server_side = server.accept(client.finish(reply, seen_cert))
    return client.accepted(ACCEPTED), server_side


def test_good_handshake_authenticates_both_sides(keys, roster):
    """Each side learns the other's key and address record."""
    client_key, server_key, _ = keys
    client = ClientHandshake(client_key, roster, b"client record")
    server = ServerHandshake(server_key, roster, b"server record", SERVER_CERT)

    client_side, server_side = run(client, server, SERVER_CERT)

    assert client_side == HandshakeResult(server_key.public_key, b"server record")
    assert server_side == HandshakeResult(client_key.public_key, b"client record")


def test_client_not_on_roster_is_refused_at_hello(keys, roster):
    """The server refuses an outsider before signing anything."""
    _, server_key, outsider = keys
    client = ClientHandshake(outsider, roster | {outsider.public_key}, b"")
    server = ServerHandshake(server_key, roster, b"", SERVER_CERT)

    with pytest.raises(HandshakeRefused) as refused:
        server.reply(client.hello())

    assert refused.value.reason == "not_on_roster"


def test_server_not_on_roster_is_refused_by_client(keys, roster):
    """The client refuses a server that is not a member."""
    client_key, _, outsider = keys
    client = ClientHandshake(client_key, roster, b"")
    server = ServerHandshake(outsider, {client_key.public_key}, b"", SERVER_CERT)

    with pytest.raises(HandshakeRefused) as refused:
        client.finish(server.reply(client.hello()), SERVER_CERT)

    assert refused.value.reason == "not_on_roster"


def test_man_in_the_middle_certificate_is_refused(keys, roster):
    """A client that saw another certificate than the server's refuses it."""
    client_key, server_key, _ = keys
    client = ClientHandshake(client_key, roster, b"")
    server = ServerHandshake(server_key, roster, b"", SERVER_CERT)
    reply = server.reply(client.hello())

    with pytest.raises(HandshakeRefused) as refused:
        client.finish(reply, MITM_CERT)

    assert refused.value.reason == "bad_signature"


def test_client_signature_over_mitm_certificate_is_refused(keys, roster):
    """A server refuses a client signature made over another certificate."""
    client_key, server_key, _ = keys
    client = ClientHandshake(client_key, roster, b"")
    server = ServerHandshake(server_key, roster, b"", SERVER_CERT, nonce=b"n" * 32)
    # Even were the client fooled into signing the certificate it saw, that
    # signature does not cover the real server's certificate.
    fooled = ServerHandshake(server_key, roster, b"", MITM_CERT, nonce=b"n" * 32)
    hello = client.hello()
    server.reply(hello)
    finish = client.finish(fooled.reply(hello), MITM_CERT)

    with pytest.raises(HandshakeRefused) as refused:
        server.accept(finish)

    assert refused.value.reason == "bad_signature"


def test_bad_server_signature_is_refused(keys, roster):
    """A reply whose signature was tampered with is refused."""
    client_key, server_key, _ = keys
    client = ClientHandshake(client_key, roster, b"")
    server = ServerHandshake(server_key, roster, b"", SERVER_CERT)
    fields = cbor2.loads(server.reply(client.hello()))
    fields["sig"] = bytes(64)

    with pytest.raises(HandshakeRefused) as refused:
        client.finish(cbor2.dumps(fields), SERVER_CERT)

    assert refused.value.reason == "bad_signature"


def test_bad_client_signature_is_refused(keys, roster):
    """A finish signed by another key is refused."""
    client_key, server_key, outsider = keys
    client = ClientHandshake(client_key, roster, b"")
    server = ServerHandshake(server_key, roster, b"", SERVER_CERT)
    fields = cbor2.loads(client.finish(server.reply(client.hello()), SERVER_CERT))
    fields["sig"] = outsider.sign(b"anything")

    with pytest.raises(HandshakeRefused) as refused:
        server.accept(cbor2.dumps(fields))

    assert refused.value.reason == "bad_signature"


def test_connecting_to_itself_is_refused(keys, roster):
    """A node that dials its own address refuses the connection, both ways."""
    _, server_key, _ = keys
    client = ClientHandshake(server_key, roster, b"")
    server = ServerHandshake(server_key, roster, b"", SERVER_CERT)

    with pytest.raises(HandshakeRefused) as refused:
        server.reply(client.hello())

    assert refused.value.reason == "self_connection"


def test_replayed_finish_fails_in_a_new_session(keys, roster):
    """A recorded finish is useless against a fresh server nonce."""
    client_key, server_key, _ = keys
    old_client = ClientHandshake(client_key, roster, b"", nonce=b"c" * 32)
    old_server = ServerHandshake(server_key, roster, b"", SERVER_CERT)
    recorded_hello = old_client.hello()
    recorded_finish = old_client.finish(old_server.reply(recorded_hello), SERVER_CERT)
    new_server = ServerHandshake(server_key, roster, b"", SERVER_CERT)
    new_server.reply(recorded_hello)

    with pytest.raises(HandshakeRefused) as refused:
        new_server.accept(recorded_finish)

    assert refused.value.reason == "bad_signature"


def test_replayed_reply_fails_against_a_new_client_nonce(keys, roster):
    """A recorded server reply is useless against a fresh client nonce."""
    client_key, server_key, _ = keys
    old_client = ClientHandshake(client_key, roster, b"")
    recorded_reply = ServerHandshake(server_key, roster, b"", SERVER_CERT).reply(
        old_client.hello()
    )
    new_client = ClientHandshake(client_key, roster, b"")
    new_client.hello()

    with pytest.raises(HandshakeRefused) as refused:
        new_client.finish(recorded_reply, SERVER_CERT)

    assert refused.value.reason == "bad_signature"


def test_reflected_nonce_is_refused(keys, roster):
    """A server that echoes the client's nonce as its own is refused."""
    client_key, server_key, _ = keys
    client = ClientHandshake(client_key, roster, b"", nonce=b"x" * 32)
    server = ServerHandshake(server_key, roster, b"", SERVER_CERT, nonce=b"x" * 32)

    with pytest.raises(HandshakeRefused) as refused:
        server.reply(client.hello())

    assert refused.value.reason == "nonce_reused"


def test_signature_is_domain_separated(keys, roster):
    """The server signs under the handshake domain, never bare bytes."""
    client_key, server_key, _ = keys
    client = ClientHandshake(client_key, roster, b"", nonce=b"c" * 32)
    server = ServerHandshake(server_key, roster, b"", SERVER_CERT, nonce=b"s" * 32)
    fields = cbor2.loads(server.reply(client.hello()))
    transcript = [
        "server",
        b"c" * 32,
        b"s" * 32,
        SERVER_CERT,
        server_key.public_key,
        client_key.public_key,
    ]

    assert fields["sig"] == server_key.sign(
        DOMAIN + cbor2.dumps(transcript, canonical=True)
    )


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (b"\xff", "malformed"),
        (cbor2.dumps([1, 2]), "malformed"),
        (cbor2.dumps({"v": 1, "nonce": b"short", "key": bytes(32)}), "malformed"),
        (
            cbor2.dumps({"v": 2, "nonce": bytes(32), "key": bytes(32)}),
            "unsupported_version",
        ),
        (b"\x00" * 5000, "too_large"),
    ],
)
def test_malformed_hello_is_refused(keys, roster, message, reason):
    """Garbage is refused with a reason before any signature check."""
    _, server_key, _ = keys
    server = ServerHandshake(server_key, roster, b"", SERVER_CERT)

    with pytest.raises(HandshakeRefused) as refused:
        server.reply(message)

    assert refused.value.reason == reason


def test_finish_before_hello_is_refused(keys, roster):
    """Messages out of order are refused, not crashed on."""
    _, server_key, _ = keys
    server = ServerHandshake(server_key, roster, b"", SERVER_CERT)

    with pytest.raises(HandshakeRefused) as refused:
        server.accept(b"")

    assert refused.value.reason == "out_of_order"


def test_client_waits_for_acceptance(keys, roster):
    """Anything but ACCEPTED after the finish means refusal."""
    client_key, server_key, _ = keys
    client = ClientHandshake(client_key, roster, b"")
    server = ServerHandshake(server_key, roster, b"", SERVER_CERT)
    client.finish(server.reply(client.hello()), SERVER_CERT)

    with pytest.raises(HandshakeRefused) as refused:
        client.accepted(b"nope")

    assert refused.value.reason == "not_accepted"
