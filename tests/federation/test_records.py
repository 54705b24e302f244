"""Address records: signed by their node, refused for the first reason."""

import cbor2
import pytest

from koprogo_node.federation import envelope
from koprogo_node.federation.identity import NodeKey
from koprogo_node.federation.records import (
    DOMAIN,
    MAX_AGE_S,
    MAX_RECORD_BYTES,
    MAX_SKEW_S,
    AddressRecord,
    format_address,
    make_record,
    read_record,
    split_address,
)

NOW = 1_800_000_000.0
ADDRS = ["wss://192.0.2.7:47470", "wss://[fd00::7]:47470"]


@pytest.fixture
def keys(tmp_path):
    made = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        made.append(NodeKey.load_or_create(tmp_path / name))
    return made


def test_record_reads_back_its_fields(keys):
    """A member's record reads back as key, addresses and time."""
    a, _ = keys
    blob = make_record(a, ADDRS, NOW)

    got = read_record(blob, NOW + 10, roster={a.public_key})

    assert got == AddressRecord(a.public_key, tuple(ADDRS), NOW)


def test_record_domain_differs_from_envelope_domain():
    """A record signature can never pass as an envelope signature."""
    assert DOMAIN == b"koprogo-address-record-v1\x00"
    assert DOMAIN != envelope.DOMAIN


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda blob: blob + b"\x00" * MAX_RECORD_BYTES, "too_large"),
        (lambda blob: b"\xff" + blob[1:], "malformed"),
        (lambda blob: cbor2.dumps([b"x", b"y"]), "malformed"),
        (lambda blob: cbor2.dumps({"key": 1}), "malformed"),
    ],
)
def test_broken_records_are_refused(keys, mutate, reason):
    """Oversized or undecodable records are refused before any crypto."""
    a, _ = keys

    assert read_record(mutate(make_record(a, ADDRS, NOW)), NOW, {a.public_key}) == (
        reason
    )


@pytest.mark.parametrize(
    ("ts", "reason"),
    [
        (NOW - MAX_AGE_S - 1, "outside_time_window"),
        (NOW + MAX_SKEW_S + 1, "outside_time_window"),
        (NOW - MAX_AGE_S + 1, None),
    ],
)
def test_age_window(keys, ts, reason):
    """Records older than a week or from the future are refused."""
    a, _ = keys

    got = read_record(make_record(a, ADDRS, ts), NOW, {a.public_key})

    assert got == reason if reason else isinstance(got, AddressRecord)


def test_record_of_a_non_member_is_refused(keys):
    """Only roster members' records are believed."""
    a, b = keys

    assert read_record(make_record(a, ADDRS, NOW), NOW, {b.public_key}) == (
        "not_on_roster"
    )


def test_record_claiming_another_key_is_refused(keys):
    """A record re-labelled with another member's key fails its signature."""
    a, b = keys
    encoded, signature = cbor2.loads(make_record(a, ADDRS, NOW))
    fields = cbor2.loads(encoded)
    fields["key"] = b.public_key
    forged = cbor2.dumps([cbor2.dumps(fields, canonical=True), signature])

    assert read_record(forged, NOW, {a.public_key, b.public_key}) == "bad_signature"


def test_envelope_signature_does_not_make_a_record(keys):
    """Bytes signed under the envelope domain do not verify as a record."""
    a, _ = keys
    fields = {"v": 1, "key": a.public_key, "addrs": ADDRS, "ts": NOW}
    encoded = cbor2.dumps(fields, canonical=True)
    blob = cbor2.dumps([encoded, a.sign(envelope.DOMAIN + encoded)])

    assert read_record(blob, NOW, {a.public_key}) == "bad_signature"


def test_record_with_a_non_wss_address_is_refused(keys):
    """Addresses must be wss://host:port, on writing and on reading."""
    a, _ = keys
    fields = {"v": 1, "key": a.public_key, "addrs": ["http://x:1"], "ts": NOW}
    encoded = cbor2.dumps(fields, canonical=True)
    blob = cbor2.dumps([encoded, a.sign(DOMAIN + encoded)])

    assert read_record(blob, NOW, {a.public_key}) == "malformed"
    with pytest.raises(ValueError, match="expected wss://host:port"):
        make_record(a, ["http://x:1"], NOW)


@pytest.mark.parametrize(
    ("host", "port", "address"),
    [
        ("192.0.2.7", 47470, "wss://192.0.2.7:47470"),
        ("fd00::7", 1, "wss://[fd00::7]:1"),
        ("node.local", 443, "wss://node.local:443"),
    ],
)
def test_addresses_round_trip(host, port, address):
    """format_address and split_address are inverses, IPv6 included."""
    assert format_address(host, port) == address
    assert split_address(address) == (host, port)


@pytest.mark.parametrize(
    "address",
    ["wss://host", "ws://host:1", "wss://host:99999", "wss://host:1/path", "x"],
)
def test_bad_addresses_are_refused(address):
    """Anything but wss://host:port raises ValueError."""
    with pytest.raises(ValueError):
        split_address(address)
