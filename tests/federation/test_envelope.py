"""Envelopes: signed, deterministic, refused for the first reason that applies."""

import cbor2
import pytest

from koprogo_node.federation.envelope import (
    MAX_MESSAGE_BYTES,
    Envelope,
    message_id,
    open_envelope,
    seal,
)
from koprogo_node.federation.identity import NodeKey

NOW = 1_800_000_000.0


@pytest.fixture
def keys(tmp_path):
    made = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        made.append(NodeKey.load_or_create(tmp_path / name))
    return made


def test_sealed_message_opens_with_its_fields(keys):
    """A message from a roster member opens to what was sealed."""
    a, _ = keys
    wire = seal(a, "aggregates/15m", 7, NOW, {"kwh": 12.5})

    got = open_envelope(wire, NOW, roster={a.public_key}, seen=set())

    assert isinstance(got, Envelope)
    assert (got.topic, got.origin, got.seq, got.ts) == (
        "aggregates/15m",
        a.public_key,
        7,
        NOW,
    )
    assert got.body == {"kwh": 12.5}
    assert got.message_id == message_id(wire)


def test_sealing_is_deterministic(keys):
    """The same message sealed twice gives the same bytes and id."""
    a, _ = keys

    assert seal(a, "t", 1, NOW, {"x": 1, "y": 2}) == seal(
        a, "t", 1, NOW, {"y": 2, "x": 1}
    )


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda w: w + b"\x00" * MAX_MESSAGE_BYTES, "too_large"),
        (lambda w: b"\xff" + w[1:], "malformed"),
        (lambda w: cbor2.dumps([b"x", b"y"]), "malformed"),
    ],
)
def test_damaged_wire_is_refused_cheaply(keys, mutate, reason):
    """Oversized or undecodable input is refused before any crypto."""
    a, _ = keys
    wire = mutate(seal(a, "t", 1, NOW, {}))

    assert open_envelope(wire, NOW, roster={a.public_key}, seen=set()) == reason


def test_checks_apply_in_the_documented_order(keys):
    """Time window, then roster, then duplicate, then signature, then the app."""
    a, b = keys
    old = seal(a, "t", 1, NOW - 30 * 86_400, {})
    stranger = seal(b, "t", 1, NOW, {})
    good = seal(a, "t", 2, NOW, {})
    encoded, signature = cbor2.loads(good)
    forged = cbor2.dumps([encoded, bytes(64)], canonical=True)

    assert open_envelope(old, NOW, {a.public_key}, set()) == "outside_time_window"
    assert open_envelope(stranger, NOW, {a.public_key}, set()) == "not_on_roster"
    assert open_envelope(good, NOW, {a.public_key}, {message_id(good)}) == "duplicate"
    assert open_envelope(forged, NOW, {a.public_key}, set()) == "bad_signature"
    assert (
        open_envelope(good, NOW, {a.public_key}, set(), check=lambda e: "not_private")
        == "not_private"
    )


def test_future_stamp_beyond_skew_is_refused(keys):
    """A stamp more than five minutes ahead is outside the window."""
    a, _ = keys
    wire = seal(a, "t", 1, NOW + 600, {})

    assert open_envelope(wire, NOW, {a.public_key}, set()) == "outside_time_window"


def test_signature_from_another_purpose_does_not_verify(keys):
    """A signature over the bare bytes (no domain tag) is refused."""
    a, _ = keys
    encoded, _ = cbor2.loads(seal(a, "t", 1, NOW, {}))
    replayed = cbor2.dumps([encoded, a.sign(encoded)], canonical=True)

    assert open_envelope(replayed, NOW, {a.public_key}, set()) == "bad_signature"
