"""P1 decoder on damaged streams: framing, CRC, resync, bad values, keys."""

from __future__ import annotations

import pytest
from dlms_cosem.security import SecurityControlField, encrypt
from dsmr_parser import telegram_specifications
from hypothesis import given, settings
from hypothesis import strategies as st

from koprogo_node.core.readings import Reject
from koprogo_node.drivers.p1 import (
    MAX_TELEGRAM_BYTES,
    P1Decoder,
    decode_file,
)
from koprogo_node.drivers.p1_channels import CHANNEL_NAMES
from koprogo_node.errors import ConfigError, SensorUnavailable

from .p1_support import (
    PARSER_DATA,
    STAMP,
    by_sensor,
    decode,
    load,
    parser_file,
    reader_file,
    readings,
    rejects,
    spec_of,
    utc,
    with_line,
)
from .test_p1_datasets import BELGIAN

GOOD_BE = "be_fluvius_emucs171_gas_water.txt"
GOOD_V4 = "nl_dsmr42_kaifa.txt"
GOOD_V5 = "nl_dsmr50_iskra_mt382.txt"
CORRUPTED = [
    (
        "dsmr_parser",
        "edge-cases/be_fluvius_emucs171__crc_line_missing.txt",
        "belgium",
        GOOD_BE,
        "truncated",
    ),
    (
        "dsmr_parser",
        "edge-cases/be_fluvius_emucs171__line_removed_crc_invalid.txt",
        "belgium",
        GOOD_BE,
        "crc_mismatch",
    ),
    (
        "dsmr_parser",
        "edge-cases/nl_dsmr42_kaifa__crc_line_missing.txt",
        "v4",
        GOOD_V4,
        "truncated",
    ),
    (
        "dsmr_parser",
        "edge-cases/nl_dsmr42_kaifa__line_removed_crc_invalid.txt",
        "v4",
        GOOD_V4,
        "crc_mismatch",
    ),
    (
        "dsmr_parser",
        "edge-cases/nl_dsmr50_iskra__crc_line_missing.txt",
        "v5",
        GOOD_V5,
        "truncated",
    ),
    (
        "dsmr_parser",
        "edge-cases/nl_dsmr50_iskra__line_removed_crc_invalid.txt",
        "v5",
        GOOD_V5,
        "crc_mismatch",
    ),
    (
        "dsmr-reader",
        "nl_kaifa_dsmr42__crc_ABCD_invalid.txt",
        "v4",
        GOOD_V4,
        "crc_mismatch",
    ),
    ("dsmr-reader", "stream__partial_then_kaifa_dsmr42.txt", "v4", GOOD_V4, "junk"),
    (
        "dsmr-reader",
        "stream__truncated_then_iskra_am550_dsmr50.txt",
        "v5",
        GOOD_V5,
        "truncated",
    ),
]


@pytest.mark.parametrize(
    ("dataset", "name", "spec", "good", "reason"),
    CORRUPTED,
    ids=[row[1].split("/")[-1] for row in CORRUPTED],
)
def test_corrupted_telegram_is_rejected_between_good_ones(
    dataset, name, spec, good, reason
):
    """The bad telegram is one Reject; the good ones around it decode."""
    good_bytes = parser_file(good)
    stream = good_bytes + load(dataset, name) + good_bytes
    decoder = P1Decoder(spec=spec)

    out = decoder.feed(stream) + decoder.flush()

    assert [r.reason for r in rejects(out)] == [reason]
    assert decoder.rejects == {reason: 1}
    first_t1 = by_sensor(decode(good_bytes, spec=spec))["p1.import_t1"]
    assert [
        (r.value, r.unit, r.ts) for r in readings(out) if r.sensor == "p1.import_t1"
    ].count(first_t1) == 2


def test_crc_mismatch_detail_names_both_crcs():
    """The detail says which CRC was sent and which was computed."""
    out = decode(reader_file("nl_kaifa_dsmr42__crc_ABCD_invalid.txt"), spec="v4")

    assert rejects(out) == [
        Reject(
            source="p1", reason="crc_mismatch", detail="expected ABCD, computed 4BC6"
        )
    ]


def test_stream_files_yield_the_telegram_after_the_damage():
    """A stream cut mid-telegram still gives the next telegram's values."""
    partial = decode(reader_file("stream__partial_then_kaifa_dsmr42.txt"), spec="v4")
    cut = decode(reader_file("stream__truncated_then_iskra_am550_dsmr50.txt"))

    assert by_sensor(partial)["p1.import_t1"] == (
        1073.079,
        "kWh",
        utc("2016-03-03 15:43:47"),
    )
    assert by_sensor(cut)["p1.import_t1"] == (
        9012.345,
        "kWh",
        utc("2017-01-10 19:40:57"),
    )
    assert by_sensor(cut)["p1.gas"] == (123.456, "m3", utc("2017-01-10 19:40:09"))


def test_bad_gas_timestamp_rejects_only_the_gas_value():
    """'632525252525S' on the gas line: gas rejected, electricity kept."""
    name = "edge-cases/nl_dsmr50_iskra__gas_timestamp_invalid_632525252525S.txt"

    out = decode(parser_file(name), spec="v5")

    assert [(r.reason, r.sensor) for r in rejects(out)] == [("bad_timestamp", "p1.gas")]
    assert by_sensor(out)["p1.import_t1"] == (4.426, "kWh", utc("2017-01-02 18:20:02"))


def test_bare_bang_is_crc_missing_where_the_dialect_needs_a_crc():
    """A DSMR 4 telegram ending in '!' alone is rejected as crc_missing."""
    telegram = parser_file(GOOD_V4).replace(b"!6796", b"!")

    out = decode(telegram, spec="v4")

    assert [r.reason for r in rejects(out)] == ["crc_missing"]
    assert readings(out) == []


def test_three_digit_crc_is_accepted():
    """Warmtelink's '!B9F' is CRC 0x0B9F."""
    out = decode(parser_file("nl_dsmr50_warmtelink_heat_unpadded_crc.txt"))

    assert rejects(out) == []
    assert list(by_sensor(out)) == ["p1.heat"]


def test_final_telegram_without_line_end_decodes_on_flush():
    """'!B9F' with nothing after it is complete only at end of input."""
    telegram = parser_file("nl_dsmr50_warmtelink_heat_unpadded_crc.txt").rstrip()
    decoder = P1Decoder(spec="v5")

    fed = decoder.feed(telegram)
    flushed = decoder.flush()

    assert fed == []
    assert by_sensor(flushed)["p1.heat"][0] == 240.86


def test_four_digit_crc_completes_a_telegram_without_waiting():
    """After '!' and four hex digits the telegram decodes at once."""
    telegram = parser_file(GOOD_BE).rstrip()
    decoder = P1Decoder()

    out = decoder.feed(telegram)

    assert len(readings(out)) == 10


def test_partial_telegram_at_end_of_input_is_truncated():
    """Half a telegram left at flush becomes one 'truncated' reject."""
    telegram = parser_file(GOOD_BE)

    out = decode(telegram[:300])

    assert [r.reason for r in rejects(out)] == ["truncated"]


def test_junk_between_telegrams_is_survived():
    """Noise between telegrams is one junk reject; both telegrams decode."""
    telegram = parser_file(GOOD_V4)
    decoder = P1Decoder(spec="v4")

    out = decoder.feed(telegram + b"\x00\xffnoise!12\r\n" + telegram)

    assert [r.reason for r in rejects(out)] == ["junk"]
    assert decoder.telegrams == 2


def test_whitespace_between_telegrams_is_not_junk():
    """Blank lines and spaces between telegrams are not rejects."""
    telegram = parser_file(GOOD_V4)

    out = decode(b"\r\n  \r\n" + telegram + b"\n\n\t" + telegram, spec="v4")

    assert rejects(out) == []


def test_runaway_telegram_is_oversize_and_the_stream_recovers():
    """A '/' never followed by '!' is dropped at the bound, not kept growing."""
    runaway = b"/" + b"A" * (MAX_TELEGRAM_BYTES + 5000)
    decoder = P1Decoder(spec="v4")

    out = decoder.feed(runaway) + decoder.feed(parser_file(GOOD_V4))

    assert [r.reason for r in rejects(out)] == ["oversize"]
    assert decoder.telegrams == 1


def test_byte_at_a_time_gives_the_same_output_as_whole_input():
    """Feeding one byte per call changes nothing in the output."""
    stream = (
        b"tail of an earlier telegram\r\n!1234\r\n"
        + parser_file(GOOD_BE)
        + parser_file("edge-cases/be_fluvius_emucs171__line_removed_crc_invalid.txt")
        + b"junk"
        + parser_file("be_fluvius_emucs171_alt_gas_water.txt")[:500]
        + parser_file("be_fluvius_emucs171_alt_gas_water.txt")
    )
    bytewise = P1Decoder()

    whole = decode(stream)
    pieces = [r for i in range(len(stream)) for r in bytewise.feed(stream[i : i + 1])]
    pieces += bytewise.flush()

    assert pieces == whole
    reasons = [r.reason for r in rejects(whole)]
    assert reasons == ["junk", "crc_mismatch", "junk", "truncated"]


@pytest.mark.parametrize(
    "name", sorted(p.name for p in PARSER_DATA.glob("*.txt")), ids=str
)
def test_every_data_file_decodes_the_same_byte_by_byte(name):
    """Each dsmr_parser file gives the same output whole or byte by byte."""
    data = parser_file(name)
    spec = spec_of(name)
    bytewise = P1Decoder(spec=spec)

    whole = decode(data, stamp=STAMP, spec=spec)
    pieces = []
    for i in range(len(data)):
        pieces += bytewise.feed(data[i : i + 1], STAMP)

    assert pieces + bytewise.flush(STAMP) == whole


def test_value_that_is_not_a_number_is_rejected_and_the_rest_kept():
    """'00abc.034', 'NaN' and '12,5' each become not_a_number for their sensor."""
    telegram = parser_file(GOOD_BE)
    telegram = with_line(telegram, b"(000000.034*kWh)", b"(00abc.034*kWh)")
    telegram = with_line(telegram, b"(000015.758*kWh)", b"(NaN*kWh)")
    telegram = with_line(telegram, b"2.8.1(000000.000*kWh)", b"2.8.1(12,5*kWh)")

    out = decode(telegram)

    assert sorted((r.reason, r.sensor) for r in rejects(out)) == [
        ("not_a_number", "p1.export_t1"),
        ("not_a_number", "p1.import_t1"),
        ("not_a_number", "p1.import_t2"),
    ]
    assert by_sensor(out)["p1.export_t2"] == (0.011, "kWh", utc("2020-05-12 11:54:09"))
    assert by_sensor(out)["p1.gas"][0] == 112.384


def test_unreadable_gas_value_is_rejected():
    """A gas line whose value is not a number is one not_a_number reject."""
    telegram = with_line(parser_file(GOOD_BE), b"(00112.384*m3)", b"(0011x.384*m3)")

    out = decode(telegram)

    assert [r.reason for r in rejects(out)] == ["not_a_number"]
    assert "p1.gas" not in by_sensor(out)
    assert by_sensor(out)["p1.water"][0] == 872.234


def test_impossible_telegram_time_rejects_meter_values_but_keeps_gas():
    """Month 13 in 0-0:1.0.0: one bad_timestamp; own-stamped values remain."""
    telegram = with_line(
        parser_file(GOOD_BE), b"0-0:1.0.0(200512135409S)", b"0-0:1.0.0(201312135409S)"
    )

    out = decode(telegram, stamp=STAMP)

    assert [(r.reason, r.sensor) for r in rejects(out)] == [("bad_timestamp", None)]
    assert sorted(by_sensor(out)) == ["p1.gas", "p1.peak_demand_month", "p1.water"]


def test_telegram_without_time_and_without_stamp_is_rejected():
    """DSMR 2.2 with no clock stamp: no_timestamp, yet gas has its own time."""
    out = decode(parser_file("nl_dsmr22_iskra_mt382.txt"), spec="v2_2")

    assert [r.reason for r in rejects(out)] == ["no_timestamp"]
    assert list(by_sensor(out)) == ["p1.gas"]


def test_telegram_without_time_takes_the_callers_stamp():
    """DSMR 2.2 values carry the stamp's time, trust and monotonic clock."""
    out = decode(parser_file("nl_dsmr22_iskra_mt382.txt"), stamp=STAMP, spec="v2_2")

    t1 = next(r for r in readings(out) if r.sensor == "p1.import_t1")
    assert (t1.ts, t1.clock_trusted, t1.mono_s) == (STAMP.ts, False, 42.0)


def test_repeated_mbus_reading_is_emitted_once():
    """Gas, water and peak repeat in every telegram but are stored once."""
    telegram = parser_file(GOOD_BE)
    decoder = P1Decoder()

    first = decoder.feed(telegram)
    second = decoder.feed(telegram)

    assert len(readings(first)) == 10
    assert sorted(by_sensor(second)) == [
        "p1.avg_demand_15min",
        "p1.export_t1",
        "p1.export_t2",
        "p1.import_t1",
        "p1.import_t2",
        "p1.power_export",
        "p1.power_import",
    ]
    assert rejects(second) == []


def test_new_gas_capture_time_is_emitted_again():
    """A gas reading with a new capture time is a new reading."""
    telegram = parser_file(GOOD_BE)
    later = with_line(
        telegram,
        b"0-1:24.2.3(200512134558S)(00112.384*m3)",
        b"0-1:24.2.3(200512135058S)(00112.390*m3)",
    )
    decoder = P1Decoder(channels=("gas",))

    out = decoder.feed(telegram) + decoder.feed(later)

    assert [(r.value, r.ts) for r in readings(out)] == [
        (112.384, utc("2020-05-12 11:45:58")),
        (112.39, utc("2020-05-12 11:50:58")),
    ]


def test_interval_keeps_one_telegram_per_interval():
    """25 telegrams a second apart with interval_s=10: 3 kept, 22 skipped."""
    base = parser_file(GOOD_BE)
    stream = b"".join(
        with_line(base, b"(200512135409S)", b"(2005121354%02dS)" % second)
        for second in range(25)
    )
    decoder = P1Decoder(channels=("import_t1",), interval_s=10.0)

    out = decoder.feed(stream)

    assert [r.ts for r in out] == [
        utc("2020-05-12 11:54:00"),
        utc("2020-05-12 11:54:10"),
        utc("2020-05-12 11:54:20"),
    ]
    assert (decoder.telegrams, decoder.skipped) == (3, 22)


def test_selected_channels_are_exactly_those_emitted():
    """channels=(...) limits output to the named channels, phases included."""
    data = parser_file("be_fluvius_emucs171_alt_gas_water.txt")
    channels = ("voltage_l1", "current_l2", "power_import_l2", "water")

    out = decode(data, channels=channels, prefix="flat3")

    assert {s: v for s, (v, _, _) in by_sensor(out).items()} == {
        "flat3.voltage_l1": 232.9,
        "flat3.current_l2": 0.88,
        "flat3.power_import_l2": 0.179,
        "flat3.water": 8.579,
    }


def test_rejects_carry_the_prefix_as_source():
    """Each reject names the configured prefix as its source."""
    data = parser_file("edge-cases/nl_dsmr42_kaifa__line_removed_crc_invalid.txt")

    out = decode(data, spec="v4", prefix="flat7")

    assert [r.source for r in rejects(out)] == ["flat7"]


def test_unknown_channel_is_a_config_error_listing_valid_names():
    """A misspelt channel fails at construction and lists the valid ones."""
    with pytest.raises(ConfigError) as caught:
        P1Decoder(channels=("import_t1", "gaz"))

    assert "'gaz'" in str(caught.value)
    assert all(name in str(caught.value) for name in CHANNEL_NAMES)


def test_unknown_spec_is_a_config_error():
    """An unknown dialect fails at construction."""
    with pytest.raises(ConfigError, match="valid specs: belgium"):
        P1Decoder(spec="dsmr6")


def test_decoder_counts_telegrams_and_rejects_by_reason():
    """Status counters: decoded telegrams and rejects per reason."""
    good = parser_file(GOOD_BE)
    bad = parser_file("edge-cases/be_fluvius_emucs171__line_removed_crc_invalid.txt")
    decoder = P1Decoder()

    decoder.feed(good + bad + bad + b"noise" + good)

    assert decoder.telegrams == 2
    assert decoder.rejects == {"crc_mismatch": 2, "junk": 1}


def test_decode_file_reads_a_recording(tmp_path):
    """decode_file returns what feeding the whole file gives."""
    path = tmp_path / "capture.txt"
    path.write_bytes(parser_file(GOOD_BE))

    out = decode_file(path)

    assert by_sensor(out) == BELGIAN[("dsmr_parser", GOOD_BE)]


def test_decode_file_of_a_missing_file_is_sensor_unavailable(tmp_path):
    """A missing recording raises SensorUnavailable."""
    with pytest.raises(SensorUnavailable):
        decode_file(tmp_path / "absent.txt")


KEY = "000102030405060708090A0B0C0D0E0F"


def smarty_frame(plain: bytes, key_hex: str = KEY, counter: int = 1) -> bytes:
    """Encrypt a telegram the way a Luxembourg Smarty meter frames it."""
    control = SecurityControlField(security_suite=0, authenticated=True, encrypted=True)
    title = b"SAG\x10\x20\x30\x40\x50"
    auth_key = bytes.fromhex(telegram_specifications.MSN["authentication_key"])
    sealed = encrypt(control, title, counter, bytes.fromhex(key_hex), plain, auth_key)
    body = control.to_bytes() + counter.to_bytes(4, "big") + sealed
    return b"\xdb\x08" + title + b"\x82" + len(body).to_bytes(2, "big") + body


def test_encrypted_smarty_frames_are_decrypted():
    """With the key, Smarty frames decode like the plain telegram."""
    plain = reader_file("lu_smarty_plain.txt")
    frames = smarty_frame(plain, counter=1) + smarty_frame(plain, counter=2)
    stream = b"\x00\xdb" + frames  # a stray tag byte before the first frame
    decoder = P1Decoder(spec="luxembourg", decryption_key=KEY)

    out = decoder.feed(stream) + decoder.flush()

    assert by_sensor(out)["p1.import_total"] == (
        5675.956,
        "kWh",
        utc("2019-10-31 13:22:39"),
    )
    assert decoder.telegrams == 2
    assert rejects(out) == []


def test_wrong_smarty_key_is_decrypt_failed():
    """A frame the key cannot open is one decrypt_failed reject."""
    frame = smarty_frame(reader_file("lu_smarty_plain.txt"), key_hex="11" * 16)

    out = decode(frame, spec="luxembourg", decryption_key=KEY)

    assert [r.reason for r in out] == ["decrypt_failed"]


def test_decryption_key_outside_luxembourg_is_a_config_error():
    """Only the Smarty dialect takes a decryption key."""
    with pytest.raises(ConfigError, match="luxembourg"):
        P1Decoder(spec="belgium", decryption_key=KEY)


def test_malformed_decryption_key_is_a_config_error():
    """The key must be 32 hex digits."""
    with pytest.raises(ConfigError, match="32 hex digits"):
        P1Decoder(spec="luxembourg", decryption_key="not-a-key")


GOOD_TELEGRAM = (PARSER_DATA / GOOD_BE).read_bytes()
# Bytes that mean something to the framer, so junk often contains them.
FRAMING_BYTES = [b"/", b"!", b"!12", b"!ABCD", b"/FLU5", b"\r\n", b"\n", b"\x00"]
junk = st.lists(
    st.one_of(st.binary(max_size=40), st.sampled_from(FRAMING_BYTES)), max_size=6
).map(b"".join)


@settings(max_examples=150, deadline=None, database=None)
@given(
    parts=st.lists(st.one_of(junk, st.none()), max_size=8),
    cuts=st.lists(st.integers(min_value=1, max_value=400), max_size=30),
)
def test_random_junk_never_hides_a_valid_telegram(parts, cuts):
    """Junk anywhere between valid telegrams never raises nor loses one."""
    # None marks a valid telegram; a line end closes any junk before it.
    chunks = [GOOD_TELEGRAM if p is None else p + b"\r\n" for p in parts]
    stream = b"".join(chunks)
    decoder = P1Decoder()
    out = []

    for size in cuts:
        out += decoder.feed(stream[:size])
        stream = stream[size:]
    out += decoder.feed(stream) + decoder.flush()

    valid = parts.count(None)
    assert [r.sensor for r in readings(out)].count("p1.import_t1") == valid
