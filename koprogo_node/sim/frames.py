"""Turn a building snapshot into the telegrams its P1 ports would send.

Each lot's meter sends its own electricity. The common parts' meter also
carries the building's M-Bus meters: gas (or a heat meter) on channel 1 and
water on channel 2, as in Fluvius e-MUCS 1.7.1 example telegrams.
"""

from __future__ import annotations

from .building import BuildingSnapshot, equipment_id
from .meters import MeterSnapshot
from .telegram import MBUS_GAS, MBUS_HEAT, MBUS_WATER, Frame, MbusValue

COMMON = "common"


def lot_key(number: int, lots: int) -> str:
    """Return a lot's key, zero-padded so that keys sort: lot01, lot02, ..."""
    width = max(2, len(str(lots)))
    return f"lot{number:0{width}d}"


def building_frames(
    snapshot: BuildingSnapshot, seed: int, heating: str
) -> dict[str, Frame]:
    """Return one frame per meter, keyed `lot01`.. and `common`."""
    lots = len(snapshot.lots)
    frames = {
        lot_key(n, lots): _frame(snapshot, meter)
        for n, meter in enumerate(snapshot.lots, start=1)
    }
    mbus = _mbus(snapshot, seed, heating)
    frames[COMMON] = _frame(snapshot, snapshot.common, mbus)

    return frames


def _frame(
    snapshot: BuildingSnapshot,
    meter: MeterSnapshot,
    mbus: tuple[MbusValue, ...] = (),
) -> Frame:
    return Frame(
        ts=snapshot.ts,
        equipment_id=meter.equipment_id,
        import_kwh=meter.import_kwh,
        export_kwh=meter.export_kwh,
        tariff=snapshot.tariff,
        avg_demand_kw=meter.avg_demand_kw,
        month_peak_kw=meter.month_peak_kw,
        month_peak_ts=meter.month_peak_ts,
        power_import_kw=meter.power_import_kw,
        power_export_kw=meter.power_export_kw,
        phase_import_kw=meter.phase_import_kw,
        phase_export_kw=meter.phase_export_kw,
        voltage_v=meter.voltage_v,
        current_a=meter.current_a,
        mbus=mbus,
    )


def _mbus(snapshot: BuildingSnapshot, seed: int, heating: str) -> tuple[MbusValue, ...]:
    # A real M-Bus meter reports every few minutes; the simulated ones report
    # at every telegram, so a leak shows at once.
    stamp = snapshot.ts
    if heating == "heat":
        first = MbusValue(
            channel=1,
            device_type=MBUS_HEAT,
            equipment_id=equipment_id(seed, "6", 1),
            ts=stamp,
            value=snapshot.heat_gj,
            unit="GJ",
        )
    else:
        first = MbusValue(
            channel=1,
            device_type=MBUS_GAS,
            equipment_id=equipment_id(seed, "7", 1),
            ts=stamp,
            value=snapshot.gas_m3,
            unit="m3",
        )
    water = MbusValue(
        channel=2,
        device_type=MBUS_WATER,
        equipment_id=equipment_id(seed, "8", 2),
        ts=stamp,
        value=snapshot.water_m3,
        unit="m3",
    )

    return (first, water)
