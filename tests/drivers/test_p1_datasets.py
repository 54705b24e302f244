"""P1 decoder on every recorded dialect: the values written in the telegrams."""

from __future__ import annotations

import pytest

from koprogo_node.core.readings import Kind
from koprogo_node.drivers.p1 import (
    P1Decoder,
)

from .p1_support import (
    STAMP,
    by_sensor,
    decode,
    load,
    parser_file,
    reader_file,
    readings,
    rejects,
    utc,
)

BELGIAN = {
    ("dsmr_parser", "be_fluvius_emucs171_gas_water.txt"): {
        "p1.import_t1": (0.034, "kWh", utc("2020-05-12 11:54:09")),
        "p1.import_t2": (15.758, "kWh", utc("2020-05-12 11:54:09")),
        "p1.export_t1": (0.0, "kWh", utc("2020-05-12 11:54:09")),
        "p1.export_t2": (0.011, "kWh", utc("2020-05-12 11:54:09")),
        "p1.power_import": (0.0, "kW", utc("2020-05-12 11:54:09")),
        "p1.power_export": (0.0, "kW", utc("2020-05-12 11:54:09")),
        "p1.avg_demand_15min": (2.351, "kW", utc("2020-05-12 11:54:09")),
        "p1.peak_demand_month": (2.589, "kW", utc("2020-05-09 11:45:58")),
        "p1.gas": (112.384, "m3", utc("2020-05-12 11:45:58")),
        "p1.water": (872.234, "m3", utc("2020-05-12 11:45:58")),
    },
    ("dsmr_parser", "be_fluvius_emucs171_alt_gas_water.txt"): {
        "p1.import_t1": (301.548, "kWh", utc("2023-11-02 11:15:48")),
        "p1.import_t2": (270.014, "kWh", utc("2023-11-02 11:15:48")),
        "p1.export_t1": (0.005, "kWh", utc("2023-11-02 11:15:48")),
        "p1.export_t2": (0.0, "kWh", utc("2023-11-02 11:15:48")),
        "p1.power_import": (0.338, "kW", utc("2023-11-02 11:15:48")),
        "p1.power_export": (0.0, "kW", utc("2023-11-02 11:15:48")),
        "p1.avg_demand_15min": (0.052, "kW", utc("2023-11-02 11:15:48")),
        "p1.peak_demand_month": (3.064, "kW", utc("2023-11-02 10:45:00")),
        "p1.gas": (92.287, "m3", utc("2023-11-02 11:10:02")),
        "p1.water": (8.579, "m3", utc("2023-11-02 11:15:32")),
    },
    ("dsmr-reader", "be_fluvius_emucs_50213_monophase_gas.txt"): {
        "p1.import_t1": (1924.771, "kWh", utc("2020-08-07 06:27:11")),
        "p1.import_t2": (2549.919, "kWh", utc("2020-08-07 06:27:11")),
        "p1.export_t1": (1968.71, "kWh", utc("2020-08-07 06:27:11")),
        "p1.export_t2": (692.984, "kWh", utc("2020-08-07 06:27:11")),
        "p1.power_import": (0.0, "kW", utc("2020-08-07 06:27:11")),
        "p1.power_export": (0.611, "kW", utc("2020-08-07 06:27:11")),
        "p1.gas": (1414.287, "m3", utc("2020-08-07 06:25:02")),
    },
    ("dsmr-reader", "be_fluvius_emucs_50213_polyphase_gas.txt"): {
        "p1.import_t1": (260.129, "kWh", utc("2019-08-21 19:00:25")),
        "p1.import_t2": (338.681, "kWh", utc("2019-08-21 19:00:25")),
        "p1.export_t1": (0.01, "kWh", utc("2019-08-21 19:00:25")),
        "p1.export_t2": (0.425, "kWh", utc("2019-08-21 19:00:25")),
        "p1.power_import": (0.261, "kW", utc("2019-08-21 19:00:25")),
        "p1.power_export": (0.0, "kW", utc("2019-08-21 19:00:25")),
        "p1.gas": (29.553, "m3", utc("2019-08-21 19:00:11")),
    },
    ("dsmr-reader", "be_fluvius_emucs_50217_no_gas.txt"): {
        "p1.import_t1": (172.987, "kWh", utc("2020-03-05 21:29:45")),
        "p1.import_t2": (160.643, "kWh", utc("2020-03-05 21:29:45")),
        "p1.export_t1": (23.457, "kWh", utc("2020-03-05 21:29:45")),
        "p1.export_t2": (4.819, "kWh", utc("2020-03-05 21:29:45")),
        "p1.power_import": (0.638, "kW", utc("2020-03-05 21:29:45")),
        "p1.power_export": (0.0, "kW", utc("2020-03-05 21:29:45")),
    },
    ("dsmr-reader", "be_fluvius_emucs_50217_peak_data.txt"): {
        "p1.import_t1": (143.608, "kWh", utc("2023-02-01 14:50:56")),
        "p1.import_t2": (170.853, "kWh", utc("2023-02-01 14:50:56")),
        "p1.export_t1": (2.963, "kWh", utc("2023-02-01 14:50:56")),
        "p1.export_t2": (0.427, "kWh", utc("2023-02-01 14:50:56")),
        "p1.power_import": (0.182, "kW", utc("2023-02-01 14:50:56")),
        "p1.power_export": (0.0, "kW", utc("2023-02-01 14:50:56")),
        "p1.avg_demand_15min": (0.078, "kW", utc("2023-02-01 14:50:56")),
        "p1.peak_demand_month": (1.566, "kW", utc("2023-02-01 01:00:00")),
    },
    ("dsmr-reader", "be_fluvius_emucs_two_gas_devices.txt"): {
        "p1.import_t1": (4423.77, "kWh", utc("2023-01-19 11:46:38")),
        "p1.import_t2": (2607.237, "kWh", utc("2023-01-19 11:46:38")),
        "p1.export_t1": (1194.693, "kWh", utc("2023-01-19 11:46:38")),
        "p1.export_t2": (755.554, "kWh", utc("2023-01-19 11:46:38")),
        "p1.power_import": (0.0, "kW", utc("2023-01-19 11:46:38")),
        "p1.power_export": (0.204, "kW", utc("2023-01-19 11:46:38")),
        "p1.avg_demand_15min": (0.0, "kW", utc("2023-01-19 11:46:38")),
        "p1.peak_demand_month": (11.173, "kW", utc("2023-01-16 08:00:00")),
        "p1.gas": (734.607, "m3", utc("2023-01-19 11:46:16")),
        "p1.gas_2": (0.0, "m3", utc("2023-01-19 11:40:05")),
    },
}


@pytest.mark.parametrize(
    ("dataset", "name"), list(BELGIAN), ids=[name for _, name in BELGIAN]
)
def test_belgian_telegram_yields_the_values_written_in_it(dataset, name):
    """Each Belgian telegram gives exactly its default channels, in UTC."""
    data = load(dataset, name)

    out = decode(data)

    assert by_sensor(out) == BELGIAN[(dataset, name)]


def test_belgian_readings_have_counter_and_gauge_kinds():
    """Energy and volume are counters; power and demand are gauges."""
    out = decode(parser_file("be_fluvius_emucs171_gas_water.txt"))

    kinds = {r.sensor: r.kind for r in readings(out)}

    assert kinds["p1.import_t1"] == Kind.COUNTER
    assert kinds["p1.water"] == Kind.COUNTER
    assert kinds["p1.power_import"] == Kind.GAUGE
    assert kinds["p1.peak_demand_month"] == Kind.GAUGE


def test_meter_stamps_are_trusted_without_monotonic_time():
    """The meter's own clock stamps readings as trusted."""
    out = decode(parser_file("be_fluvius_emucs171_gas_water.txt"), stamp=STAMP)

    assert {(r.clock_trusted, r.mono_s) for r in readings(out)} == {(True, None)}


def test_belgian_meter_without_gas_rejects_its_placeholder_reading():
    """An M-Bus slot reporting 632525252525W is a bad_timestamp, once."""
    out = decode(reader_file("be_fluvius_emucs_50217_no_gas.txt"))

    assert [(r.reason, r.sensor) for r in rejects(out)] == [("bad_timestamp", "p1.gas")]


DIALECTS = [
    (
        "dsmr_parser",
        "nl_dsmr22_iskra_mt382.txt",
        "v2_2",
        "p1.gas",
        1.001,
        "m3",
        utc("2016-11-07 18:00:00"),
    ),
    (
        "dsmr_parser",
        "nl_dsmr22_iskra_mt382.txt",
        "v2_2",
        "p1.import_t1",
        1.001,
        "kWh",
        STAMP.ts,
    ),
    (
        "dsmr_parser",
        "nl_dsmr30_iskra_mt382.txt",
        "v3",
        "p1.import_t1",
        12345.678,
        "kWh",
        STAMP.ts,
    ),
    (
        "dsmr_parser",
        "nl_dsmr30_iskra_mt382.txt",
        "v3",
        "p1.gas",
        1.001,
        "m3",
        utc("2009-02-12 15:00:00"),
    ),
    (
        "dsmr_parser",
        "nl_dsmr42_kaifa.txt",
        "v4",
        "p1.import_t1",
        1581.123,
        "kWh",
        utc("2016-11-13 19:57:57"),
    ),
    (
        "dsmr_parser",
        "nl_dsmr42_kaifa.txt",
        "v4",
        "p1.gas",
        981.443,
        "m3",
        utc("2016-11-29 19:00:00"),
    ),
    (
        "dsmr_parser",
        "nl_dsmr50_iskra_mt382.txt",
        "v5",
        "p1.import_t1",
        4.426,
        "kWh",
        utc("2017-01-02 18:20:02"),
    ),
    (
        "dsmr_parser",
        "nl_dsmr50_iskra_mt382.txt",
        "v5",
        "p1.gas",
        0.107,
        "m3",
        utc("2017-01-02 15:10:05"),
    ),
    (
        "dsmr_parser",
        "nl_dsmr50_iskra_am550_two_mbus.txt",
        "v5",
        "p1.gas",
        246.138,
        "m3",
        utc("2020-04-26 20:30:01"),
    ),
    (
        "dsmr_parser",
        "nl_dsmr50_warmtelink_heat_unpadded_crc.txt",
        "v5",
        "p1.heat",
        240.86,
        "GJ",
        utc("2026-02-15 19:05:23"),
    ),
    (
        "dsmr_parser",
        "de_easymeter_q3d_b1024_com1_gateway.txt",
        "easymeter",
        "p1.export_total",
        19949.3221493,
        "kWh",
        STAMP.ts,
    ),
    (
        "dsmr_parser",
        "de_easymeter_q3d_a1004_com1_gateway.txt",
        "easymeter",
        "p1.power_import",
        1688.21,
        "W",
        STAMP.ts,
    ),
    (
        "dsmr_parser",
        "at_sagemcom_t210dr_plain.txt",
        "austria",
        "p1.import_total",
        6545766.0,
        "Wh",
        utc("2022-10-06 13:50:14"),
    ),
    (
        "dsmr_parser",
        "at_sagemcom_t210dr_plain.txt",
        "austria",
        "p1.power_import",
        286.0,
        "W",
        utc("2022-10-06 13:50:14"),
    ),
    (
        "dsmr_parser",
        "ie_iskra_ie5t.txt",
        "iskra_ie",
        "p1.power_export",
        0.27,
        "kW",
        utc("2023-02-02 12:27:47"),
    ),
    (
        "dsmr_parser",
        "hu_eon_sagemcom_v5.txt",
        "eon_hungary",
        "p1.export_total",
        627.177,
        "kWh",
        utc("2023-07-24 13:07:30"),
    ),
    (
        "dsmr-reader",
        "lu_smarty_plain.txt",
        "luxembourg",
        "p1.import_total",
        5675.956,
        "kWh",
        utc("2019-10-31 13:22:39"),
    ),
    (
        "dsmr-reader",
        "se_kamstrup.txt",
        "sweden",
        "p1.import_total",
        3.997,
        "kWh",
        utc("2021-11-15 09:09:40"),
    ),
    (
        "dsmr-reader",
        "nl_kaifa_dsmr42.txt",
        "v4",
        "p1.import_t1",
        1073.079,
        "kWh",
        utc("2016-03-03 15:43:47"),
    ),
    (
        "dsmr-reader",
        "nl_landisgyr_e350_dsmr40.txt",
        "v4",
        "p1.gas",
        845.206,
        "m3",
        utc("2015-07-01 17:00:00"),
    ),
    (
        "dsmr-reader",
        "nl_landisgyr_e350_dsmr42.txt",
        "v4",
        "p1.gas",
        1197.484,
        "m3",
        utc("2016-02-10 19:00:00"),
    ),
    (
        "dsmr-reader",
        "nl_landisgyr_e350_dsmr42_other.txt",
        "v4",
        "p1.import_t1",
        1255.252,
        "kWh",
        utc("2016-03-17 21:10:58"),
    ),
    (
        "dsmr-reader",
        "nl_landisgyr_e350_dsmr42__future_timestamp.txt",
        "v4",
        "p1.import_t1",
        510.747,
        "kWh",
        utc("2017-01-02 11:00:00"),
    ),
    (
        "dsmr-reader",
        "nl_iskra_mt382_dsmr50.txt",
        "v5",
        "p1.gas",
        12785.123,
        "m3",
        utc("2010-12-09 10:25:00"),
    ),
    (
        "dsmr-reader",
        "nl_iskra_am550_dsmr50_gas_on_mbus2.txt",
        "v5",
        "p1.gas",
        241.773,
        "m3",
        utc("2019-11-08 13:55:05"),
    ),
    (
        "dsmr-reader",
        "nl_iskra_mt382_dsmr22_or_3_no_crc.txt",
        "v2_2",
        "p1.gas",
        7890.693,
        "m3",
        utc("2016-04-10 11:00:00"),
    ),
]


@pytest.mark.parametrize(
    ("dataset", "name", "spec", "sensor", "value", "unit", "ts"),
    DIALECTS,
    ids=[f"{row[1]}-{row[3]}" for row in DIALECTS],
)
def test_other_dialects_parse(dataset, name, spec, sensor, value, unit, ts):
    """Dutch, Luxembourg, Swedish, Austrian, Irish, Hungarian, German telegrams."""
    data = load(dataset, name)

    out = decode(data, stamp=STAMP, spec=spec)

    assert by_sensor(out)[sensor] == (value, unit, ts)


def test_lowercase_summer_flag_is_read_as_summer_time():
    """Landis+Gyr E350 writes '150701190000s'; it means 19:00 CEST."""
    out = decode(reader_file("nl_landisgyr_e350_dsmr40.txt"), spec="v4")

    assert rejects(out) == []
    assert by_sensor(out)["p1.gas"][2] == utc("2015-07-01 17:00:00")


def test_empty_mbus_channel_is_ignored_and_gas_keeps_its_name():
    """Channel 1 empty (epoch placeholder) and gas on channel 2: 'gas'."""
    out = decode(parser_file("nl_dsmr50_iskra_am550_two_mbus.txt"), spec="v5")

    assert rejects(out) == []
    assert [r.sensor for r in readings(out) if "gas" in r.sensor] == ["p1.gas"]


def test_gateway_trailer_after_easymeter_telegram_is_junk():
    """The two lines a COM1 gateway appends after '!' are counted as junk."""
    data = parser_file("de_easymeter_q3d_b1024_com1_gateway.txt")
    decoder = P1Decoder(spec="easymeter")

    out = decoder.feed(data, STAMP) + decoder.flush(STAMP)

    assert [r.reason for r in rejects(out)] == ["junk"]
    assert decoder.telegrams == 1
