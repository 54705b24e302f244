"""P1 telegrams from the simulation, checked with dsmr_parser (CRC on)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import pytest
from dsmr_parser import telegram_specifications
from dsmr_parser.exceptions import InvalidChecksumError
from dsmr_parser.parsers import TelegramParser

from koprogo_node.sim import (
    BRUSSELS,
    Building,
    BuildingSpec,
    Frame,
    MbusValue,
    building_frames,
    crc16_arc,
    encode_telegram,
)
from koprogo_node.sim.telegram import MBUS_GAS, MBUS_WATER

SUMMER = datetime(2025, 7, 1, 14, 30, 5, tzinfo=BRUSSELS).timestamp()
WINTER = datetime(2025, 1, 14, 6, 0, 0, tzinfo=BRUSSELS).timestamp()


def parse(telegram: bytes) -> Any:
    """Parse as a Belgian Fluvius meter, validating the CRC."""
    parser = TelegramParser(
        telegram_specifications.BELGIUM_FLUVIUS, apply_checksum_validation=True
    )
    return parser.parse(telegram.decode("latin-1"), throw_ex=True)


def utc(ts: float) -> datetime:
    """Return a Unix time as an aware UTC datetime."""
    return datetime.fromtimestamp(ts, timezone.utc)


def sample_frame(ts: float = SUMMER) -> Frame:
    """A frame with distinctive values in every field."""
    return Frame(
        ts=ts,
        equipment_id="1KPG0000420007",
        import_kwh=(1234.567, 89.012),
        export_kwh=(3.456, 0.789),
        tariff=1,
        avg_demand_kw=2.351,
        month_peak_kw=4.318,
        month_peak_ts=ts - 86_400,
        power_import_kw=1.234,
        power_export_kw=0.0,
        phase_import_kw=(0.5, 0.334, 0.4),
        phase_export_kw=(0.0, 0.0, 0.0),
        voltage_v=(231.4, 229.8, 233.0),
        current_a=(2.16, 1.45, 1.72),
        mbus=(
            MbusValue(
                channel=1,
                device_type=MBUS_GAS,
                equipment_id="7KPG0000420001",
                ts=ts - 300,
                value=112.384,
                unit="m3",
            ),
            MbusValue(
                channel=2,
                device_type=MBUS_WATER,
                equipment_id="8KPG0000420002",
                ts=ts - 300,
                value=872.234,
                unit="m3",
            ),
        ),
    )


def test_crc_is_crc16_arc() -> None:
    """The CRC gives CRC-16/ARC's published check value for "123456789"."""
    assert crc16_arc(b"123456789") == 0xBB3D


def test_telegram_parses_to_the_exact_values_put_in() -> None:
    """dsmr_parser reads back every value of the frame, CRC validated."""
    frame = sample_frame()

    telegram = parse(encode_telegram(frame))

    assert telegram.BELGIUM_VERSION_INFORMATION.value == "50217"
    assert telegram.BELGIUM_EQUIPMENT_IDENTIFIER.value == (
        b"1KPG0000420007".hex().upper()
    )
    assert telegram.P1_MESSAGE_TIMESTAMP.value == utc(SUMMER)
    assert telegram.ELECTRICITY_USED_TARIFF_1.value == Decimal("1234.567")
    assert telegram.ELECTRICITY_USED_TARIFF_2.value == Decimal("89.012")
    assert telegram.ELECTRICITY_DELIVERED_TARIFF_1.value == Decimal("3.456")
    assert telegram.ELECTRICITY_DELIVERED_TARIFF_2.value == Decimal("0.789")
    assert telegram.ELECTRICITY_USED_TARIFF_1.unit == "kWh"
    assert telegram.ELECTRICITY_ACTIVE_TARIFF.value == "0001"
    assert telegram.BELGIUM_CURRENT_AVERAGE_DEMAND.value == Decimal("2.351")
    assert telegram.BELGIUM_MAXIMUM_DEMAND_MONTH.value == Decimal("4.318")
    assert telegram.BELGIUM_MAXIMUM_DEMAND_MONTH.datetime == utc(SUMMER - 86_400)
    assert telegram.CURRENT_ELECTRICITY_USAGE.value == Decimal("1.234")
    assert telegram.CURRENT_ELECTRICITY_DELIVERY.value == Decimal("0")
    assert telegram.INSTANTANEOUS_ACTIVE_POWER_L2_POSITIVE.value == Decimal("0.334")
    assert telegram.INSTANTANEOUS_VOLTAGE_L3.value == Decimal("233.0")
    assert telegram.INSTANTANEOUS_CURRENT_L1.value == Decimal("2.16")


def test_mbus_devices_carry_gas_on_channel_1_and_water_on_channel_2() -> None:
    """The common parts' telegram holds gas (type 3) and water (type 7)."""
    telegram = parse(encode_telegram(sample_frame()))

    gas = telegram.get_mbus_device_by_channel(1)
    water = telegram.get_mbus_device_by_channel(2)

    assert gas.MBUS_DEVICE_TYPE.value == 3
    assert gas.MBUS_METER_READING.value == Decimal("112.384")
    assert gas.MBUS_METER_READING.unit == "m3"
    assert gas.MBUS_METER_READING.datetime == utc(SUMMER - 300)
    assert water.MBUS_DEVICE_TYPE.value == 7
    assert water.MBUS_METER_READING.value == Decimal("872.234")


def test_lines_are_fluvius_shaped() -> None:
    """Header with a literal backslash, CRLF ends, zero-padded registers."""
    raw = encode_telegram(sample_frame())
    lines = raw.split(b"\r\n")

    assert lines[0] == b"/FLU5\\253769484_A"
    assert lines[1] == b""
    assert b"1-0:1.8.2(000089.012*kWh)" in lines
    assert b"1-0:1.4.0(02.351*kW)" in lines
    assert b"0-0:96.14.0(0001)" in lines
    assert b"0-1:24.2.3(250701142505S)(00112.384*m3)" in lines
    assert b"0-2:24.2.1(250701142505S)(00872.234*m3)" in lines
    assert lines[-1] == b""
    assert lines[-2] == b"!" + f"{crc16_arc(raw[: raw.rindex(b'!') + 1]):04X}".encode()


@pytest.mark.parametrize(
    ("ts", "stamp"), [(SUMMER, b"250701143005S"), (WINTER, b"250114060000W")]
)
def test_timestamps_are_brussels_time_with_season_letter(
    ts: float, stamp: bytes
) -> None:
    """Stamps are local wall time ending in S in summer and W in winter."""
    raw = encode_telegram(sample_frame(ts))

    assert b"0-0:1.0.0(" + stamp + b")" in raw
    assert parse(raw).P1_MESSAGE_TIMESTAMP.value == utc(ts)


def test_a_changed_byte_fails_the_crc() -> None:
    """The parser refuses a telegram whose body no longer matches its CRC."""
    raw = encode_telegram(sample_frame()).replace(b"1234.567", b"1234.568")

    with pytest.raises(InvalidChecksumError):
        parse(raw)


def test_registers_wrap_at_their_width() -> None:
    """A gas register past 99999.999 m3 starts again from zero, as a meter does."""
    gas = MbusValue(
        channel=1,
        device_type=MBUS_GAS,
        equipment_id="7KPG0000420001",
        ts=SUMMER,
        value=100_012.5,
        unit="m3",
    )
    frame = replace(sample_frame(), mbus=(gas,))

    device = parse(encode_telegram(frame)).get_mbus_device_by_channel(1)

    assert device.MBUS_METER_READING.value == Decimal("12.500")


def test_building_telegrams_match_its_snapshot() -> None:
    """Each meter's telegram parses to its snapshot's registers, to the Wh."""
    start = datetime(2025, 1, 14, tzinfo=BRUSSELS).timestamp()
    building = Building(BuildingSpec(lots=3, seed=4, start_ts=start))
    snapshot = building.advance(start + 9.5 * 3600)

    frames = building_frames(snapshot, seed=4, heating="gas")

    assert sorted(frames) == ["common", "lot01", "lot02", "lot03"]
    for meter, key in zip(snapshot.lots, ["lot01", "lot02", "lot03"]):
        telegram = parse(encode_telegram(frames[key]))
        assert telegram.ELECTRICITY_USED_TARIFF_1.value == Decimal(
            f"{meter.import_kwh[0]:.3f}"
        )
        assert telegram.ELECTRICITY_USED_TARIFF_2.value == Decimal(
            f"{meter.import_kwh[1]:.3f}"
        )
        assert telegram.BELGIUM_CURRENT_AVERAGE_DEMAND.value == Decimal(
            f"{meter.avg_demand_kw:.3f}"
        )
        assert telegram.get_mbus_device_by_channel(1) is None
    common = parse(encode_telegram(frames["common"]))
    water = common.get_mbus_device_by_channel(2).MBUS_METER_READING
    assert water.value == Decimal(f"{snapshot.water_m3:.3f}")
    gas = common.get_mbus_device_by_channel(1).MBUS_METER_READING
    assert gas.value == Decimal(f"{snapshot.gas_m3:.3f}")


def test_heat_building_reports_a_heat_meter_in_gj() -> None:
    """With heating = heat, M-Bus channel 1 is a heat meter (type 4) in GJ."""
    start = datetime(2025, 1, 14, tzinfo=BRUSSELS).timestamp()
    snapshot = Building(BuildingSpec(lots=2, seed=4, start_ts=start)).advance(
        start + 3600
    )

    frames = building_frames(snapshot, seed=4, heating="heat")

    heat = parse(encode_telegram(frames["common"])).get_mbus_device_by_channel(1)
    assert heat.MBUS_DEVICE_TYPE.value == 4
    assert heat.MBUS_METER_READING.unit == "GJ"
    assert heat.MBUS_METER_READING.value == Decimal(f"{snapshot.heat_gj:.3f}")
