"""Modbus profiles and the register codec, with plain register lists."""

from __future__ import annotations

import pytest

from koprogo_node.core.readings import Kind
from koprogo_node.drivers import modbus_profile
from koprogo_node.drivers.modbus_profile import (
    Channel,
    Group,
    decode_channel,
    decode_group,
    decode_value,
    encode_value,
)
from koprogo_node.drivers.profiles import Profile
from koprogo_node.errors import ConfigError

NAMES = [
    "abb-b21",
    "abb-b23",
    "abb-b24",
    "carlo-gavazzi-em24",
    "eastron-sdm120",
    "eastron-sdm630",
]


def channel(type_: str, scale: float = 1.0, markers: tuple[int, ...] = ()) -> Channel:
    """A channel at address 0 of the given type."""
    return Channel(
        name="x",
        address=0,
        type=type_,
        unit="V",
        kind=Kind.GAUGE,
        scale=scale,
        not_available=frozenset(markers),
    )


@pytest.mark.parametrize(
    ("words", "type_", "order", "expected"),
    [
        ([0x4366, 0x199A], "float32", "big", 230.10000610351562),
        ([0x199A, 0x4366], "float32", "little", 230.10000610351562),
        ([0x0000, 0x08FD], "int32", "big", 2301),
        ([0x08FD, 0x0000], "int32", "little", 2301),
        ([0xFFFF, 0xFFFE], "int32", "big", -2),
        ([0xFFFF, 0xFFFE], "uint32", "big", 4294967294),
        ([0x8000], "int16", "big", -32768),
        ([0x8000], "uint16", "big", 32768),
        ([0x0000, 0x0000, 0x0012, 0xD687], "uint64", "big", 1234567),
        ([0xD687, 0x0012, 0x0000, 0x0000], "uint64", "little", 1234567),
        ([0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF], "int64", "big", -1),
        ([0x4059, 0x0000, 0x0000, 0x0000], "float64", "big", 100.0),
    ],
)
def test_decode_value_reads_types_and_word_orders(words, type_, order, expected):
    """Each type decodes from big-endian registers in either word order."""
    value = decode_value(words, type_, order)

    assert value == expected


@pytest.mark.parametrize("type_", ["int16", "uint32", "int32", "uint64", "float32"])
@pytest.mark.parametrize("order", ["big", "little"])
def test_encode_value_is_the_inverse_of_decode(type_, order):
    """Encoding then decoding gives the number back, in both word orders."""
    words = encode_value(1234, type_, order)

    assert decode_value(words, type_, order) == 1234


def test_decode_value_refuses_a_wrong_register_count():
    """A float32 needs two registers; one is a caller bug, not a value."""
    with pytest.raises(ValueError, match="needs 2 registers"):
        decode_value([1], "float32", "big")


def test_scaled_integer_becomes_engineering_value():
    """An ABB-style uint32 in 0.1 V reads as volts."""
    item = decode_channel([0x0000, 0x08FD], channel("uint32", 0.1), "big")

    assert item.value == pytest.approx(230.1)
    assert item.reason == ""


def test_not_available_marker_is_rejected_not_scaled():
    """0xFFFFFFFF is the meter saying 'no value', never 429496729.5 V."""
    ch = channel("uint32", 0.1, markers=(0xFFFFFFFF,))

    item = decode_channel([0xFFFF, 0xFFFF], ch, "big")

    assert (item.value, item.reason, item.raw) == (None, "not_available", 0xFFFFFFFF)


def test_signed_marker_matches_its_raw_bits():
    """0x7FFFFFFF marks a missing int32, in the profile's word order."""
    ch = channel("int32", 0.01, markers=(0x7FFFFFFF,))

    item = decode_channel([0xFFFF, 0x7FFF], ch, "little")

    assert item.reason == "not_available"


@pytest.mark.parametrize(
    "words", [[0x7FC0, 0x0000], [0x7F80, 0x0000], [0xFF80, 0x0000]]
)
def test_nan_and_infinity_are_rejected(words):
    """NaN, +inf and -inf floats become a not_a_number reject."""
    item = decode_channel(words, channel("float32"), "big")

    assert item.value is None
    assert item.reason == "not_a_number"


def test_decode_group_places_channels_by_offset():
    """Channels are cut from a group's registers at address - start."""
    volts = Channel("v", 0x10, "float32", "V", Kind.GAUGE)
    hertz = Channel("f", 0x14, "uint16", "Hz", Kind.GAUGE, scale=0.01)
    group = Group(start=0x10, count=5, channels=(volts, hertz))

    items = decode_group(group, [0x4366, 0x0000, 0, 0, 5000], "big")

    assert [(i.channel.name, i.value) for i in items] == [("v", 230.0), ("f", 50.0)]


def test_every_profile_loads_and_groups_fit_one_request():
    """All six profiles parse, and no group exceeds 125 registers."""
    profiles = modbus_profile.load_all()

    assert [p.name for p in profiles] == NAMES
    for profile in profiles:
        assert all(1 <= g.count <= 125 for g in profile.groups)
        assert profile.identify, profile.name


def test_profiles_use_the_p1_channel_names_for_energy():
    """Energy counters are import_total/export_total in kWh, as from P1."""
    for profile in modbus_profile.load_all():
        by_name = {c.name: c for c in profile.channels}

        assert by_name["import_total"].kind is Kind.COUNTER
        assert by_name["import_total"].unit == "kWh"
        assert by_name["export_total"].unit == "kWh"


def test_abb_profile_carries_its_not_available_markers():
    """ABB's uint64 energy marker is read from a hex string in the TOML."""
    abb = modbus_profile.load("abb-b23")
    by_name = {c.name: c for c in abb.channels}

    assert by_name["import_total"].not_available == {0xFFFFFFFFFFFFFFFF}
    assert by_name["voltage_l2"].not_available == {0xFFFFFFFF}
    assert by_name["power"].not_available == {0x7FFFFFFF}


def test_em24_follows_the_map_with_frequency_at_0x33():
    """The EM24 profile uses the Ethernet/protocol-document map."""
    em24 = {c.name: c for c in modbus_profile.load("carlo-gavazzi-em24").channels}

    assert (em24["frequency"].address, em24["import_total"].address) == (0x33, 0x34)
    assert em24["export_total"].address == 0x4E


def test_channel_outside_every_group_is_a_config_error(tmp_path):
    """A channel no group covers would never be read: refused at load."""
    body = {
        "modbus": {
            "groups": [{"start": 0, "count": 2}],
            "channels": [{"name": "v", "address": 4, "type": "float32"}],
        }
    }
    profile = Profile("bad", "modbus", "", tmp_path / "bad.toml", body)

    with pytest.raises(ConfigError, match="lies in no"):
        modbus_profile.parse(profile)


def test_group_larger_than_protocol_limit_is_a_config_error(tmp_path):
    """126 registers cannot be read in one request."""
    body = {
        "modbus": {
            "groups": [{"start": 0, "count": 126}],
            "channels": [{"name": "v", "address": 0, "type": "uint16"}],
        }
    }
    profile = Profile("bad", "modbus", "", tmp_path / "bad.toml", body)

    with pytest.raises(ConfigError, match="count must be 1-125"):
        modbus_profile.parse(profile)


def test_unknown_type_names_the_choices(tmp_path):
    """A typo in a type lists the valid types."""
    body = {
        "modbus": {
            "groups": [{"start": 0, "count": 2}],
            "channels": [{"name": "v", "address": 0, "type": "float"}],
        }
    }
    profile = Profile("bad", "modbus", "", tmp_path / "bad.toml", body)

    with pytest.raises(ConfigError, match="float32"):
        modbus_profile.parse(profile)
