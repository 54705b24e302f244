"""Which P1 telegram values become which readings: a table, not code.

A `MeterChannel` is a value the electricity meter writes on its own line; it
is found under the name `dsmr_parser` gives that line. An `MbusChannel` is a
meter on the M-Bus (gas, water, heat), recognised by its EN 13757-3 device
type wherever it is wired, never by its channel number.

Units are kept as the meter writes them (Austrian meters write Wh and W);
`unit` here is only used when a line carries none.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.readings import Kind

COUNTER = Kind.COUNTER
GAUGE = Kind.GAUGE


@dataclass(frozen=True, slots=True)
class MeterChannel:
    """One value the electricity meter reports on a line of its own."""

    name: str
    obis: str
    field: str
    unit: str
    kind: Kind
    default: bool = False
    # Stamped with the value's own capture time instead of the telegram's,
    # and emitted only when that time or the value changes.
    own_stamp: bool = False


@dataclass(frozen=True, slots=True)
class MbusChannel:
    """A meter on the M-Bus; several of one type become gas, gas_2, ..."""

    name: str
    device_types: tuple[int, ...]
    unit: str
    kind: Kind = COUNTER
    default: bool = True


METER_CHANNELS: tuple[MeterChannel, ...] = (
    MeterChannel(
        "import_t1",
        "1-0:1.8.1",
        "ELECTRICITY_USED_TARIFF_1",
        "kWh",
        COUNTER,
        default=True,
    ),
    MeterChannel(
        "import_t2",
        "1-0:1.8.2",
        "ELECTRICITY_USED_TARIFF_2",
        "kWh",
        COUNTER,
        default=True,
    ),
    MeterChannel(
        "export_t1",
        "1-0:2.8.1",
        "ELECTRICITY_DELIVERED_TARIFF_1",
        "kWh",
        COUNTER,
        default=True,
    ),
    MeterChannel(
        "export_t2",
        "1-0:2.8.2",
        "ELECTRICITY_DELIVERED_TARIFF_2",
        "kWh",
        COUNTER,
        default=True,
    ),
    MeterChannel(
        "import_total",
        "1-0:1.8.0",
        "ELECTRICITY_IMPORTED_TOTAL",
        "kWh",
        COUNTER,
        default=True,
    ),
    MeterChannel(
        "export_total",
        "1-0:2.8.0",
        "ELECTRICITY_EXPORTED_TOTAL",
        "kWh",
        COUNTER,
        default=True,
    ),
    MeterChannel(
        "power_import",
        "1-0:1.7.0",
        "CURRENT_ELECTRICITY_USAGE",
        "kW",
        GAUGE,
        default=True,
    ),
    MeterChannel(
        "power_export",
        "1-0:2.7.0",
        "CURRENT_ELECTRICITY_DELIVERY",
        "kW",
        GAUGE,
        default=True,
    ),
    MeterChannel(
        "power_import_l1",
        "1-0:21.7.0",
        "INSTANTANEOUS_ACTIVE_POWER_L1_POSITIVE",
        "kW",
        GAUGE,
    ),
    MeterChannel(
        "power_import_l2",
        "1-0:41.7.0",
        "INSTANTANEOUS_ACTIVE_POWER_L2_POSITIVE",
        "kW",
        GAUGE,
    ),
    MeterChannel(
        "power_import_l3",
        "1-0:61.7.0",
        "INSTANTANEOUS_ACTIVE_POWER_L3_POSITIVE",
        "kW",
        GAUGE,
    ),
    MeterChannel(
        "power_export_l1",
        "1-0:22.7.0",
        "INSTANTANEOUS_ACTIVE_POWER_L1_NEGATIVE",
        "kW",
        GAUGE,
    ),
    MeterChannel(
        "power_export_l2",
        "1-0:42.7.0",
        "INSTANTANEOUS_ACTIVE_POWER_L2_NEGATIVE",
        "kW",
        GAUGE,
    ),
    MeterChannel(
        "power_export_l3",
        "1-0:62.7.0",
        "INSTANTANEOUS_ACTIVE_POWER_L3_NEGATIVE",
        "kW",
        GAUGE,
    ),
    MeterChannel("voltage_l1", "1-0:32.7.0", "INSTANTANEOUS_VOLTAGE_L1", "V", GAUGE),
    MeterChannel("voltage_l2", "1-0:52.7.0", "INSTANTANEOUS_VOLTAGE_L2", "V", GAUGE),
    MeterChannel("voltage_l3", "1-0:72.7.0", "INSTANTANEOUS_VOLTAGE_L3", "V", GAUGE),
    MeterChannel("current_l1", "1-0:31.7.0", "INSTANTANEOUS_CURRENT_L1", "A", GAUGE),
    MeterChannel("current_l2", "1-0:51.7.0", "INSTANTANEOUS_CURRENT_L2", "A", GAUGE),
    MeterChannel("current_l3", "1-0:71.7.0", "INSTANTANEOUS_CURRENT_L3", "A", GAUGE),
    # Belgian capacity tariff: the running quarter-hour average and the
    # month's highest quarter-hour so far.
    MeterChannel(
        "avg_demand_15min",
        "1-0:1.4.0",
        "BELGIUM_CURRENT_AVERAGE_DEMAND",
        "kW",
        GAUGE,
        default=True,
    ),
    MeterChannel(
        "peak_demand_month",
        "1-0:1.6.0",
        "BELGIUM_MAXIMUM_DEMAND_MONTH",
        "kW",
        GAUGE,
        default=True,
        own_stamp=True,
    ),
)

MBUS_CHANNELS: tuple[MbusChannel, ...] = (
    MbusChannel("gas", (3,), "m3"),
    MbusChannel("water", (7,), "m3"),
    # 4: heat meter measuring at the outlet (district-heating Warmtelink
    # sends this); 12: heat meter measuring at the inlet.
    MbusChannel("heat", (4, 12), "GJ"),
)

# Names dsmr_parser gives an M-Bus device's type line and its reading line,
# which differ between DSMR versions.
MBUS_TYPE_FIELDS = ("MBUS_DEVICE_TYPE", "DEVICE_TYPE")
MBUS_READING_FIELDS = (
    "MBUS_METER_READING",
    "HOURLY_GAS_METER_READING",
    "GAS_METER_READING",
)

TIMESTAMP_FIELD = "P1_MESSAGE_TIMESTAMP"

CHANNEL_NAMES: tuple[str, ...] = tuple(
    c.name for c in (*METER_CHANNELS, *MBUS_CHANNELS)
)
DEFAULT_CHANNELS: tuple[str, ...] = tuple(
    c.name for c in (*METER_CHANNELS, *MBUS_CHANNELS) if c.default
)
