"""Registers of one simulated electricity meter, as a Belgian meter keeps them.

Besides import and export per tariff, a Belgian meter tracks demand for the
capacity tariff: 1-0:1.4.0 is the average import power of the quarter-hour in
progress, and 1-0:1.6.0 the highest completed quarter-hour average of the
month, with its time. The month peak starts again from zero on the 1st.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MeterSnapshot:
    """What one electricity meter shows at one instant (kWh, kW, V, A)."""

    equipment_id: str
    import_kwh: tuple[float, float]  # (tariff 1 day, tariff 2 night)
    export_kwh: tuple[float, float]
    power_import_kw: float
    power_export_kw: float
    phase_import_kw: tuple[float, float, float]
    phase_export_kw: tuple[float, float, float]
    voltage_v: tuple[float, float, float]
    current_a: tuple[float, float, float]
    avg_demand_kw: float
    month_peak_kw: float
    month_peak_ts: float


@dataclass(frozen=True, slots=True)
class Registers:
    """Initial register values of a meter that was in service before the run."""

    import_kwh: tuple[float, float]
    export_kwh: tuple[float, float]
    month_peak_kw: float
    month_peak_ts: float


class ElectricityMeter:
    """Integrates net power into the registers of one meter."""

    def __init__(
        self, equipment_id: str, registers: Registers, month: tuple[int, int]
    ) -> None:
        self.equipment_id = equipment_id
        self._import = list(registers.import_kwh)
        self._export = list(registers.export_kwh)
        self._peak_kw = registers.month_peak_kw
        self._peak_ts = registers.month_peak_ts
        self._month = month
        self._quarter_import_kwh = 0.0
        self._last_avg_kw = 0.0

    def add(self, net_kw: float, tariff: int, hours: float) -> None:
        """Count `hours` at a constant net power (negative: export)."""
        if net_kw >= 0:
            self._import[tariff - 1] += net_kw * hours
            self._quarter_import_kwh += net_kw * hours
        else:
            self._export[tariff - 1] -= net_kw * hours

    def close_quarter(
        self, end_ts: float, hours: float, next_month: tuple[int, int]
    ) -> None:
        """End a quarter-hour that lasted `hours` (less than 0.25 only first)."""
        self._last_avg_kw = self._quarter_import_kwh / hours
        self._quarter_import_kwh = 0.0
        if self._last_avg_kw > self._peak_kw:
            self._peak_kw = self._last_avg_kw
            self._peak_ts = end_ts
        if next_month != self._month:
            self._month = next_month
            self._peak_kw = 0.0
            self._peak_ts = end_ts

    def avg_demand_kw(self, hours_into_quarter: float) -> float:
        """Return 1-0:1.4.0: the average import of the quarter so far."""
        if hours_into_quarter <= 0:
            return self._last_avg_kw
        return self._quarter_import_kwh / hours_into_quarter

    def snapshot(
        self,
        net_kw: float,
        phase_weights: tuple[float, float, float],
        voltage_v: tuple[float, float, float],
        hours_into_quarter: float,
    ) -> MeterSnapshot:
        """Return what the meter shows now, given the power drawn now."""
        power_import = max(net_kw, 0.0)
        power_export = max(-net_kw, 0.0)
        phase_import = _split(power_import, phase_weights)
        phase_export = _split(power_export, phase_weights)
        flowing_kw = _split(power_import + power_export, phase_weights)
        current = (
            flowing_kw[0] * 1000 / voltage_v[0],
            flowing_kw[1] * 1000 / voltage_v[1],
            flowing_kw[2] * 1000 / voltage_v[2],
        )

        return MeterSnapshot(
            equipment_id=self.equipment_id,
            import_kwh=(self._import[0], self._import[1]),
            export_kwh=(self._export[0], self._export[1]),
            power_import_kw=power_import,
            power_export_kw=power_export,
            phase_import_kw=phase_import,
            phase_export_kw=phase_export,
            voltage_v=voltage_v,
            current_a=current,
            avg_demand_kw=self.avg_demand_kw(hours_into_quarter),
            month_peak_kw=self._peak_kw,
            month_peak_ts=self._peak_ts,
        )


def _split(
    kw: float, weights: tuple[float, float, float]
) -> tuple[float, float, float]:
    return (kw * weights[0], kw * weights[1], kw * weights[2])
