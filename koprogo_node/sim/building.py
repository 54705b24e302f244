"""A simulated apartment building: lots, common parts, water and heating.

Pure: no I/O and no clock. `Building.advance(ts)` integrates every meter from
the current simulated time up to `ts`. The result depends only on the spec
(seed included) and `ts`, not on the steps taken to get there: every random
quantity is drawn from its coordinates (see draws.py), and power is constant
within each minute, the unit of integration.

Each lot draws once from the seed: an annual consumption (1,500-4,500 kWh),
a shift of its daily rhythm (up to 45 minutes either way), a household size
and, for about one lot in four, a PV installation. Its power in each
quarter-hour is the BDEW H25 profile scaled to its annual consumption, with
noise, plus now and then an appliance drawing 2-3.5 kW for a few minutes;
appliances carry a fixed share of the expected energy, so the annual total
is kept.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from .belgium import local_time, tariff_at
from .draws import between, lognormal_factor, uniforms
from .meters import ElectricityMeter, MeterSnapshot, Registers
from .profile import QUARTER_S, household_kw
from .weather import outdoor_c, solar_fraction

MINUTE_S = 60
_MINUTES_PER_QUARTER = QUARTER_S // MINUTE_S

_NOISE_SIGMA = 0.3
_APPLIANCE_SHARE = 0.35
_APPLIANCE_KW = (2.0, 3.5)
_APPLIANCE_MINUTES = (3, 12)
_APPLIANCE_MEAN_KWH = sum(_APPLIANCE_KW) / 2 * sum(_APPLIANCE_MINUTES) / 2 / 60

_PV_KWP = (2.0, 4.0)
_PV_SHARE = 4  # one lot in four, at least one

_LITRES_PER_PERSON_DAY = 105.0
# Household water use by local hour: low at night, morning and evening peaks.
_WATER_BY_HOUR = (
    0.8,
    0.4,
    0.3,
    0.3,
    0.4,
    1.0,
    3.0,
    7.0,
    8.0,
    6.5,
    5.0,
    4.5,
    4.5,
    4.0,
    3.5,
    3.5,
    4.0,
    5.0,
    6.0,
    6.5,
    6.5,
    5.5,
    4.0,
    2.0,
)
_WATER_SHARE = tuple(w / sum(_WATER_BY_HOUR) for w in _WATER_BY_HOUR)
_WATER_NOISE_SIGMA = 0.6

# Heating: Belgian degree-days use a 16.5 degC base; thermostats are set back
# at night. Domestic hot water: a third of the water, heated by 45 K.
_HEATING_BASE_C = 16.5
_NIGHT_SETBACK = 0.75
_HOT_WATER_KWH_PER_L = 0.35 * 45 * 1.163 / 1000
_BOILER_EFFICIENCY = 0.92
_GAS_KWH_PER_M3 = 10.5
_GJ_PER_KWH = 0.0036


@dataclass(frozen=True, kw_only=True)
class BuildingSpec:
    """Everything the model depends on."""

    lots: int = 10
    seed: int = 1
    start_ts: float
    water_leak_l_per_h: float = 0.0
    water_leak_start_h: float = 12.0

    def __post_init__(self) -> None:
        if self.lots < 1:
            raise ValueError(f"lots must be at least 1, got {self.lots!r}")
        if self.water_leak_l_per_h < 0 or self.water_leak_start_h < 0:
            raise ValueError("water leak flow and start must not be negative")


@dataclass(frozen=True, slots=True)
class LotTraits:
    """Fixed traits of one electricity meter; number 0 is the common parts."""

    number: int
    annual_kwh: float
    shift_quarters: int
    pv_kwp: float
    persons: int
    heat_loss_kw_per_k: float
    phase_weights: tuple[float, float, float]
    equipment_id: str


@dataclass(frozen=True, slots=True)
class BuildingSnapshot:
    """Every meter of the building at one instant."""

    ts: float
    tariff: int
    outdoor_c: float
    lots: tuple[MeterSnapshot, ...]
    common: MeterSnapshot
    water_m3: float
    water_l_per_h: float
    gas_m3: float
    heat_gj: float


def draw_lots(spec: BuildingSpec) -> tuple[LotTraits, ...]:
    """Return the traits of lots 1..N, drawn from the seed."""
    pv_count = max(1, spec.lots // _PV_SHARE)
    by_pv_draw = sorted(
        range(1, spec.lots + 1), key=lambda n: uniforms(spec.seed, "pv", n)[0]
    )
    with_pv = set(by_pv_draw[:pv_count])

    return tuple(_draw_lot(spec.seed, n, n in with_pv) for n in range(1, spec.lots + 1))


def _draw_lot(seed: int, number: int, has_pv: bool) -> LotTraits:
    u = uniforms(seed, "lot", number)
    weights = (0.2 + u[5], 0.2 + u[6], 0.2 + u[7])
    total = sum(weights)

    return LotTraits(
        number=number,
        annual_kwh=between(u[0], 1500.0, 4500.0),
        shift_quarters=int(u[1] * 7) - 3,
        pv_kwp=between(u[2], *_PV_KWP) if has_pv else 0.0,
        persons=1 + int(u[3] * 4),
        heat_loss_kw_per_k=between(u[4], 0.12, 0.22),
        phase_weights=(weights[0] / total, weights[1] / total, weights[2] / total),
        equipment_id=equipment_id(seed, "1", number),
    )


def common_traits(spec: BuildingSpec) -> LotTraits:
    """Return the common parts' meter: stairs lighting, lift, ventilation."""
    return LotTraits(
        number=0,
        annual_kwh=400.0 + 250.0 * spec.lots,
        shift_quarters=0,
        pv_kwp=0.0,
        persons=0,
        heat_loss_kw_per_k=0.0,
        phase_weights=(1 / 3, 1 / 3, 1 / 3),
        equipment_id=equipment_id(spec.seed, "1", 0),
    )


def equipment_id(seed: int, kind: str, number: int) -> str:
    """Return a 14-character serial; `kind` 1 electricity, 6 heat, 7 gas, 8 water."""
    return f"{kind}KPG{seed % 10**6:06d}{number:04d}"


@dataclass(frozen=True, slots=True)
class _Quarter:
    """Inputs that stay constant for one quarter-hour."""

    index: int
    tariff: int
    outdoor_c: float
    base_kw: tuple[float, ...]
    appliance_kw: tuple[float, ...]
    appliance_minutes: tuple[tuple[int, int], ...]
    pv_kw: tuple[float, ...]
    water_l_per_h: float
    thermal_kw: float
    voltage_v: tuple[float, float, float]

    def net_kw(self, meter: int, minute: int) -> float:
        """Return a meter's net import (negative: export) in a minute."""
        first, end = self.appliance_minutes[meter]
        appliance = self.appliance_kw[meter] if first <= minute < end else 0.0
        return self.base_kw[meter] + appliance - self.pv_kw[meter]


class Building:
    """The building's meters, advanced through simulated time."""

    def __init__(self, spec: BuildingSpec) -> None:
        self.spec = spec
        self.lots = draw_lots(spec)
        self.common = common_traits(spec)
        self._traits = (self.common, *self.lots)
        self._ts = spec.start_ts
        start_local = local_time(spec.start_ts)
        month = (start_local.year, start_local.month)
        self._meters = [
            ElectricityMeter(t.equipment_id, _initial_registers(spec, t), month)
            for t in self._traits
        ]
        self._water_m3 = _initial_water_m3(spec)
        self._heat_kwh = 0.0
        self._gas_m3_at_start, self._heat_gj_at_start = _initial_heating(spec)
        self._leak_ts = (
            spec.start_ts + spec.water_leak_start_h * 3600
            if spec.water_leak_l_per_h > 0
            else math.inf
        )
        self._quarter: _Quarter | None = None

    @property
    def ts(self) -> float:
        """The simulated time the meters have reached."""
        return self._ts

    def advance(self, ts: float) -> BuildingSnapshot:
        """Integrate all meters up to `ts` and return what they show."""
        if ts < self._ts:
            raise ValueError(f"simulated time cannot go back: {ts} < {self._ts}")
        while self._ts < ts:
            self._step(min(ts, self._segment_end(self._ts)))

        return self.snapshot()

    def snapshot(self) -> BuildingSnapshot:
        """Return what the meters show at the current simulated time."""
        quarter = self._quarter_at(self._ts)
        minute = self._minute_in_quarter(self._ts)
        hours_into = (self._ts - self._quarter_start(quarter)) / 3600
        meters = [
            meter.snapshot(
                quarter.net_kw(i, minute),
                traits.phase_weights,
                quarter.voltage_v,
                hours_into,
            )
            for i, (meter, traits) in enumerate(zip(self._meters, self._traits))
        ]

        return BuildingSnapshot(
            ts=self._ts,
            tariff=quarter.tariff,
            outdoor_c=quarter.outdoor_c,
            lots=tuple(meters[1:]),
            common=meters[0],
            water_m3=self._water_m3,
            water_l_per_h=quarter.water_l_per_h + self._leak_l_per_h(self._ts),
            gas_m3=self._gas_m3_at_start
            + self._heat_kwh / (_BOILER_EFFICIENCY * _GAS_KWH_PER_M3),
            heat_gj=self._heat_gj_at_start + self._heat_kwh * _GJ_PER_KWH,
        )

    def _segment_end(self, ts: float) -> float:
        end = (math.floor(ts / MINUTE_S) + 1) * MINUTE_S
        if ts < self._leak_ts < end:
            return self._leak_ts
        return float(end)

    def _step(self, end: float) -> None:
        """Integrate from the current time to `end`, inside one minute."""
        start = self._ts
        quarter = self._quarter_at(start)
        minute = self._minute_in_quarter(start)
        hours = (end - start) / 3600
        for i, meter in enumerate(self._meters):
            meter.add(quarter.net_kw(i, minute), quarter.tariff, hours)
        water_l_per_h = quarter.water_l_per_h + self._leak_l_per_h(start)
        self._water_m3 += water_l_per_h * hours / 1000
        self._heat_kwh += quarter.thermal_kw * hours
        self._ts = end
        if end >= (quarter.index + 1) * QUARTER_S:
            self._close_quarter(quarter, end)

    def _close_quarter(self, quarter: _Quarter, end: float) -> None:
        hours = (end - self._quarter_start(quarter)) / 3600
        local = local_time(end)
        for meter in self._meters:
            meter.close_quarter(end, hours, (local.year, local.month))

    def _quarter_start(self, quarter: _Quarter) -> float:
        """Return when a quarter began, or the run began if that was later."""
        return max(quarter.index * QUARTER_S, self.spec.start_ts)

    def _leak_l_per_h(self, ts: float) -> float:
        return self.spec.water_leak_l_per_h if ts >= self._leak_ts else 0.0

    @staticmethod
    def _minute_in_quarter(ts: float) -> int:
        return int(ts // MINUTE_S) % _MINUTES_PER_QUARTER

    def _quarter_at(self, ts: float) -> _Quarter:
        index = int(ts // QUARTER_S)
        if self._quarter is None or self._quarter.index != index:
            self._quarter = self._make_quarter(index)
        return self._quarter

    def _make_quarter(self, index: int) -> _Quarter:
        ts = float(index * QUARTER_S)
        local = local_time(ts)
        seed = self.spec.seed
        loads = [_quarter_load(seed, t, index, local) for t in self._traits]
        solar = solar_fraction(seed, ts, local.timetuple().tm_yday)
        water = sum(_water_l_per_h(seed, t, index, local) for t in self.lots)
        outdoor = outdoor_c(seed, ts, local)
        v = uniforms(seed, "voltage", index)
        volts = (_volts(v[0]), _volts(v[1]), _volts(v[2]))

        return _Quarter(
            index=index,
            tariff=tariff_at(local),
            outdoor_c=outdoor,
            base_kw=tuple(load[0] for load in loads),
            appliance_kw=tuple(load[1] for load in loads),
            appliance_minutes=tuple(load[2] for load in loads),
            pv_kw=tuple(t.pv_kwp * solar for t in self._traits),
            water_l_per_h=water,
            thermal_kw=self._thermal_kw(outdoor, local.hour, water),
            voltage_v=volts,
        )

    def _thermal_kw(self, outdoor: float, hour: int, water_l_per_h: float) -> float:
        """Return the heat the building needs: space heating plus hot water."""
        loss_kw_per_k = sum(t.heat_loss_kw_per_k for t in self.lots)
        heating = loss_kw_per_k * max(0.0, _HEATING_BASE_C - outdoor)
        if hour >= 23 or hour < 6:
            heating *= _NIGHT_SETBACK
        return heating + water_l_per_h * _HOT_WATER_KWH_PER_L


def _quarter_load(
    seed: int, traits: LotTraits, index: int, local: datetime
) -> tuple[float, float, tuple[int, int]]:
    """Return (base kW, appliance kW, appliance minutes) of one quarter."""
    u = uniforms(seed, "load", traits.number, index)
    shape_kw = traits.annual_kwh * household_kw(local, traits.shift_quarters)
    base_kw = (
        shape_kw * (1 - _APPLIANCE_SHARE) * lognormal_factor(u[0], u[1], _NOISE_SIGMA)
    )
    appliance_chance = _APPLIANCE_SHARE * shape_kw * 0.25 / _APPLIANCE_MEAN_KWH
    if u[2] >= appliance_chance:
        return base_kw, 0.0, (0, 0)
    low, high = _APPLIANCE_MINUTES
    minutes = low + int(u[4] * (high - low + 1))
    first = int(u[5] * (_MINUTES_PER_QUARTER - minutes + 1))

    return base_kw, between(u[3], *_APPLIANCE_KW), (first, first + minutes)


def _volts(u: float) -> float:
    return round(between(u, 228.0, 236.0), 1)


def _water_l_per_h(seed: int, traits: LotTraits, index: int, local: datetime) -> float:
    u = uniforms(seed, "water", traits.number, index)
    daily_l = traits.persons * _LITRES_PER_PERSON_DAY
    noise = lognormal_factor(u[0], u[1], _WATER_NOISE_SIGMA)
    return daily_l * _WATER_SHARE[local.hour] * noise


def _initial_registers(spec: BuildingSpec, traits: LotTraits) -> Registers:
    """Registers of a meter in service for a few years before the run."""
    u = uniforms(spec.seed, "history", traits.number)
    years = between(u[0], 0.5, 4.0)
    used_kwh = traits.annual_kwh * years
    exported_kwh = traits.pv_kwp * 950 * 0.5 * years

    peak_kw, peak_ts = _prior_month_peak(spec.start_ts, u[1], u[2])

    return Registers(
        import_kwh=(used_kwh * 0.55, used_kwh * 0.45),
        export_kwh=(exported_kwh * 0.75, exported_kwh * 0.25),
        month_peak_kw=peak_kw,
        month_peak_ts=peak_ts,
    )


def _prior_month_peak(
    start_ts: float, u_kw: float, u_when: float
) -> tuple[float, float]:
    """Return the month peak (kW, time) reached before the run, if any."""
    local = local_time(start_ts)
    month_start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    month_start_ts = month_start.timestamp()
    quarters_before = int((start_ts - month_start_ts) // QUARTER_S)
    if quarters_before == 0:
        return 0.0, month_start_ts
    quarter_end = 1 + int(u_when * quarters_before)

    return between(u_kw, 1.5, 4.0), month_start_ts + quarter_end * QUARTER_S


def _initial_water_m3(spec: BuildingSpec) -> float:
    years = between(uniforms(spec.seed, "water-meter")[0], 0.5, 5.0)
    return spec.lots * 80.0 * years


def _initial_heating(spec: BuildingSpec) -> tuple[float, float]:
    """Return the gas (m3) and heat (GJ) registers at the start."""
    years = between(uniforms(spec.seed, "heating-meter")[0], 0.1, 1.0)
    return spec.lots * 1000.0 * years, spec.lots * 30.0 * years
