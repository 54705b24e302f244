"""Router frames: round trips, and refusal of anything off the format."""

import cbor2
import pytest

from koprogo_node.federation.wire import (
    MAX_MESSAGES,
    Frame,
    Prune,
    decode_frame,
    encode_frame,
)

ID = bytes(32)
ORIGIN = bytes(range(32))


def test_full_frame_round_trips():
    """Every field survives encoding and decoding."""
    frame = Frame(
        subscribe=(("t", True), ("u", False)),
        messages=(b"m1", b"m2"),
        hops=(0, 255),
        ihave=(("t", (ID,)),),
        iwant=(ID,),
        graft=("t",),
        prune=(Prune("t", 60, (b"record",)),),
        fingerprint=(bytes(16), True),
        want_summary=True,
        sync=(True, ((ORIGIN, ((0, 4), (7, 7))),)),
        fetch=((ORIGIN, ((5, 6),)),),
        fetched=(b"m3",),
    )

    assert decode_frame(encode_frame(frame)) == frame


def test_empty_frame_is_an_empty_map():
    """Fields left empty are left off the wire."""
    assert encode_frame(Frame()) == cbor2.dumps({})


@pytest.mark.parametrize(
    "raw",
    [
        b"\xff\x00garbage",
        cbor2.dumps([1, 2, 3]),
        cbor2.dumps({"m": "not a list"}),
        cbor2.dumps({"m": [1]}),
        cbor2.dumps({"iw": [b"short id"]}),
        cbor2.dumps({"g": [""]}),
        cbor2.dumps({"p": [["t", -1, []]]}),
        cbor2.dumps({"y": [True, [[ORIGIN, [[5, 4]]]]]}),
        cbor2.dumps({"f": [[b"short", [[0, 1]]]]}),
        cbor2.dumps({"s": [["t", 1]]}),
        cbor2.dumps({"m": [b"x"], "mh": [0, 1]}),
        cbor2.dumps({"m": [b"x"], "mh": [256]}),
        cbor2.dumps({"yf": [bytes(15), False]}),
        cbor2.dumps({"yq": 1}),
        cbor2.dumps({"m": [b"x"] * (MAX_MESSAGES + 1)}),
        b"\x81" * 100_000,
    ],
)
def test_off_format_frames_are_malformed(raw):
    """Wrong types, bad ranges and lists over their caps are refused."""
    assert decode_frame(raw) == "malformed"


def test_size_cap_is_checked_before_decoding():
    """A frame over the cap is refused without being parsed."""
    assert decode_frame(b"\x00" * 101, max_bytes=100) == "too_large"
