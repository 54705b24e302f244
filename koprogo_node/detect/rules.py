"""Explainable detection rules over consumption grids (pure, vectorised).

Every grid rule computes a threshold-free statistic per cell (for instance the
lowest hourly flow over the last 16 hours), flags the cells where it crosses
its threshold, and turns each run of flagged cells into one `Finding`. A cell
is flagged once the evidence is complete, so `delay_h` is the time from the
start of a problem to its first flag when the data has no gaps.

Gaps (NaN) are neither flow nor zero flow: a window that contains one gives
no verdict. Water values are litres per cell; energy values kWh per cell.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from koprogo_node.detect.series import HOUR_S, Grid, Series

MAD_TO_SIGMA = 1.4826
NIGHT_HOURS = (0, 1, 2, 3, 4, 5)


@dataclass(frozen=True)
class Finding:
    """One problem seen in a series, with the evidence a co-owner can check."""

    kind: str
    sensor: str
    start_ts: float
    detected_ts: float
    end_ts: float | None  # None: still present at the last cell
    expected: float
    observed: float
    unit: str
    severity: str
    litres_per_hour: float | None = None
    kwh_per_day: float | None = None
    explanation: str = ""
    # The sentence's English template and its values, so a page can say it in
    # the reader's language (the template is the translation catalogs' key).
    explanation_template: str = ""
    explanation_values: tuple[tuple[str, float], ...] = ()


def explained(template: str, **values: float) -> dict:
    """Finding fields for a one-sentence explanation built from `template`."""
    return {
        "explanation": template.format(**values),
        "explanation_template": template,
        "explanation_values": tuple(values.items()),
    }


@dataclass(frozen=True)
class _Run:
    """A run of flagged cells [first, last], with the evidence window start."""

    first: int
    last: int
    evidence_start: int


def window_minimum(
    values: np.ndarray, window: int, min_observed: int | None = None
) -> np.ndarray:
    """Lowest observed value over the `window` cells ending at each cell.

    NaN (no verdict) unless at least `min_observed` cells of the window, by
    default all of them, were observed; gaps are skipped, never read as values.
    """
    out = np.full(len(values), np.nan)
    if window < 1 or len(values) < window:
        return out
    needed = window if min_observed is None else min_observed
    observed = np.isfinite(values)
    counts = sliding_window_view(observed, window).sum(axis=1)
    lowest = sliding_window_view(np.where(observed, values, np.inf), window).min(1)
    out[window - 1 :] = np.where(counts >= max(needed, 1), lowest, np.nan)
    return out


def night_run_minimum(
    grid: Grid, night_hours: tuple[int, ...] = NIGHT_HOURS, run_h: int = 3
) -> np.ndarray:
    """Lowest hourly flow over `run_h` consecutive night cells ending at each cell."""
    rates = grid.rates_per_hour()
    night = np.isin(grid.hour_of_day(), night_hours)
    return window_minimum(np.where(night, rates, np.nan), run_h)


def zero_run_length(values: np.ndarray) -> np.ndarray:
    """Number of consecutive observed zero cells ending at each cell."""
    zero = values == 0  # NaN compares false, so a gap ends a run
    index = np.arange(len(values))
    last_nonzero = np.maximum.accumulate(np.where(zero, -1, index))
    return np.where(zero, index - last_nonzero, 0)


def flag_runs(flags: np.ndarray, evidence_cells: int = 1) -> list[_Run]:
    """Runs of consecutive true flags, each with where its evidence began."""
    padded = np.concatenate([[False], flags.astype(bool), [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return [
        _Run(int(a), int(b) - 1, max(0, int(a) - evidence_cells + 1))
        for a, b in zip(edges[::2], edges[1::2])
    ]


def water_severity(litres_per_hour: float) -> str:
    """Severity of a water loss: high from 10 L/h, medium from 2 L/h."""
    if litres_per_hour >= 10:
        return "high"
    return "medium" if litres_per_hour >= 2 else "low"


def _findings_from_runs(
    grid: Grid,
    runs: list[_Run],
    build: Callable[[_Run], dict],
) -> list[Finding]:
    """Turn runs of flags into findings; `build` adds the rule's own fields."""
    stamps = grid.ts
    last = len(grid.values) - 1
    findings = []
    for run in runs:
        findings.append(
            Finding(
                start_ts=float(stamps[run.evidence_start] - grid.step_s),
                detected_ts=float(stamps[run.first]),
                end_ts=None if run.last == last else float(stamps[run.last]),
                **build(run),
            )
        )
    return findings


@dataclass(frozen=True, kw_only=True)
class _FlowRule:
    """Shared shape of the water flow rules: a statistic above a threshold."""

    kind = "flow"
    threshold_l_h: float = 0.5

    def statistic(self, grid: Grid) -> np.ndarray:
        """Return the rule's statistic per cell (litres per hour)."""
        raise NotImplementedError

    def evidence_cells(self, grid: Grid) -> int:
        """Number of cells whose evidence a flag rests on."""
        raise NotImplementedError

    def flags(self, grid: Grid) -> np.ndarray:
        """True where the statistic is above the threshold."""
        return self.statistic(grid) > self.threshold_l_h

    def findings(self, grid: Grid, sensor: str) -> list[Finding]:
        """Return one finding per run of flagged cells."""
        stat = self.statistic(grid)
        runs = flag_runs(stat > self.threshold_l_h, self.evidence_cells(grid))

        def build(run: _Run) -> dict:
            observed = float(np.nanmin(stat[run.first : run.last + 1]))
            return dict(
                kind=self.kind,
                sensor=sensor,
                expected=self.threshold_l_h,
                observed=observed,
                unit="L/h",
                severity=water_severity(observed),
                litres_per_hour=observed,
                **self.explain(),
            )

        return _findings_from_runs(grid, runs, build)

    def explain(self) -> dict:
        """One sentence for a co-owner (see `explained`)."""
        raise NotImplementedError


@dataclass(frozen=True, kw_only=True)
class ContinuousFlow(_FlowRule):
    """Water ran in every one of the last `window_h` hours (smart-meter rule)."""

    kind = "continuous_flow"
    threshold_l_h: float = 0.0
    window_h: int = 24

    @property
    def delay_h(self) -> int:
        """Hours from the start of a leak to the first flag, without gaps."""
        return self.window_h

    def statistic(self, grid: Grid) -> np.ndarray:
        """Lowest hourly flow over the last `window_h` hours."""
        cells = int(self.window_h * HOUR_S / grid.step_s)
        return window_minimum(grid.rates_per_hour(), cells)

    def evidence_cells(self, grid: Grid) -> int:
        """The whole window."""
        return int(self.window_h * HOUR_S / grid.step_s)

    def explain(self) -> dict:
        """One sentence for a co-owner (see `explained`)."""
        return explained(
            (
                "Water has been flowing without a single stop for {window_h} hours,"
                " which usually means a leak or a running toilet."
            ),
            window_h=self.window_h,
        )


def span_window_minimum(
    grid: Grid, window: int, min_covered: int, min_hourly: int = 0
) -> np.ndarray:
    """Lowest reading average over the `window` cells ending at each cell.

    Every reading whose span touches the window counts with its average flow,
    so a multi-hour reading bounds a constant leak from below without saying
    when the water ran. A verdict needs `min_covered` cells covered by readings,
    `min_hourly` of them one-cell readings, and is given only on a cell where a
    reading ends: a reading's average is unknown before it arrives.
    """
    index = np.arange(len(grid.values))
    lowest = window_minimum(grid.span_rates_per_hour(), window, min_covered)
    counts = np.full(len(index), np.nan)
    if window >= 1 and len(index) >= window:
        hourly = sliding_window_view(np.isfinite(grid.values), window)
        counts[window - 1 :] = hourly.sum(axis=1)
    arrived = grid.span_ends() == index
    return np.where(arrived & (counts >= min_hourly), lowest, np.nan)


@dataclass(frozen=True, kw_only=True)
class SustainedFlow(ContinuousFlow):
    """No reading of the last `window_h` hours averaged below a meter's floor.

    A constant leak of L litres per hour adds L to every reading's average,
    one-hour or multi-hour alike, so all of them staying above the threshold
    is a necessary sign of a leak of at least that size.
    """

    kind = "sustained_flow"
    threshold_l_h: float = 0.5
    window_h: int = 21
    coverage: float = 0.6
    min_hourly: int = 6

    def statistic(self, grid: Grid) -> np.ndarray:
        """Lowest reading average over the window, given enough readings."""
        cells = int(self.window_h * HOUR_S / grid.step_s)
        needed = int(np.ceil(self.coverage * cells))
        hourly = int(np.ceil(self.min_hourly * HOUR_S / grid.step_s))
        return span_window_minimum(grid, cells, needed, hourly)

    def explain(self) -> dict:
        """One sentence for a co-owner (see `explained`)."""
        return explained(
            (
                "For {window_h} hours no meter reading averaged below "
                "{threshold_l_h:g} L/h, more than this meter normally shows."
            ),
            window_h=self.window_h,
            threshold_l_h=self.threshold_l_h,
        )


@dataclass(frozen=True, kw_only=True)
class NightFlow(_FlowRule):
    """Minimum night flow: `run_h` night hours in a row above a threshold."""

    kind = "night_flow"
    night_hours: tuple[int, ...] = NIGHT_HOURS
    run_h: int = 4

    @property
    def delay_h(self) -> int:
        """Worst-case hours to a flag: until the next night has `run_h` hours."""
        return 24 + self.run_h

    def statistic(self, grid: Grid) -> np.ndarray:
        """Lowest flow over the last `run_h` night hours."""
        return night_run_minimum(grid, self.night_hours, self.run_h)

    def evidence_cells(self, grid: Grid) -> int:
        """The night run."""
        return int(self.run_h * HOUR_S / grid.step_s)

    def explain(self) -> dict:
        """One sentence for a co-owner (see `explained`)."""
        return explained(
            (
                "Water kept flowing above {threshold_l_h:g} L/h for {run_h} night "
                "hours in a row, when the building is normally still."
            ),
            threshold_l_h=self.threshold_l_h,
            run_h=self.run_h,
        )


@dataclass(frozen=True, kw_only=True)
class Burst(_FlowRule):
    """Flow above `threshold_l_h` for at least `min_duration_h` hours."""

    kind = "burst"
    threshold_l_h: float = 500.0
    min_duration_h: int = 1

    @property
    def delay_h(self) -> int:
        """Hours from the start of a burst to its flag."""
        return self.min_duration_h

    def statistic(self, grid: Grid) -> np.ndarray:
        """Lowest flow over the last `min_duration_h` hours."""
        return window_minimum(grid.rates_per_hour(), self.min_duration_h)

    def evidence_cells(self, grid: Grid) -> int:
        """The duration window."""
        return int(self.min_duration_h * HOUR_S / grid.step_s)

    def explain(self) -> dict:
        """One sentence for a co-owner (see `explained`)."""
        return explained(
            (
                "More than {threshold_l_h:g} L/h flowed for at least "
                "{min_duration_h} h, far above this meter's normal peaks: check for"
                " a burst pipe or a tap left open."
            ),
            threshold_l_h=self.threshold_l_h,
            min_duration_h=self.min_duration_h,
        )


def rolling_sums(values: np.ndarray, window: int) -> np.ndarray:
    """Sum over the `window` cells ending at each cell; NaN unless all observed."""
    out = np.full(len(values), np.nan)
    if window < 1 or len(values) < window:
        return out
    observed = np.isfinite(values)
    total = np.concatenate([[0.0], np.cumsum(np.where(observed, values, 0.0))])
    count = np.concatenate([[0], np.cumsum(observed)])
    sums = total[window:] - total[:-window]
    out[window - 1 :] = np.where(
        count[window:] - count[:-window] == window, sums, np.nan
    )
    return out


@dataclass(frozen=True, kw_only=True)
class SpanBurst:
    """A multi-hour reading carried more water than any such stretch before.

    When a meter reports several hours in one reading, no hourly rule can see
    a burst inside it. Its volume is compared with the largest volume of any
    fully observed stretch of the same length in the previous `history_days`
    days; more than `factor` times that is flagged when the reading arrives.
    """

    history_days: int = 35
    factor: float = 1.0
    min_stretches: int = 24 * 4
    kind = "span_burst"

    @property
    def delay_h(self) -> float:
        """Flagged on the reading itself."""
        return 0.0

    def ratio(self, grid: Grid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per cell ending a multi-cell reading: volume, largest past volume, ratio."""
        n = len(grid.values)
        volume, largest = np.full(n, np.nan), np.full(n, np.nan)
        ends = grid.span_ends()
        length = np.bincount(ends[ends >= 0], minlength=n)[:n]
        rates = grid.span_rates_per_hour()
        history = int(self.history_days * 86400.0 / grid.step_s)
        for b in np.flatnonzero(length >= 2):
            cells = int(length[b])
            first = b - cells + 1
            past = rolling_sums(grid.values[max(0, first - history) : first], cells)
            past = past[np.isfinite(past)]
            if len(past) < self.min_stretches:
                continue
            volume[b] = rates[b] * cells * grid.step_s / HOUR_S
            largest[b] = float(np.max(past))
        with np.errstate(divide="ignore", invalid="ignore"):
            return volume, largest, volume / largest

    def flags(self, grid: Grid) -> np.ndarray:
        """True on the last cell of each reading above `factor` times the past."""
        volume, largest, _ = self.ratio(grid)
        return volume > self.factor * largest

    def findings(self, grid: Grid, sensor: str) -> list[Finding]:
        """Return one finding per flagged reading."""
        volume, largest, _ = self.ratio(grid)
        flags = volume > self.factor * largest
        ends = grid.span_ends()
        findings = []
        for b in np.flatnonzero(flags):
            cells = int(np.sum(ends == b))
            hours = cells * grid.step_s / HOUR_S
            findings.append(
                Finding(
                    kind=self.kind,
                    sensor=sensor,
                    start_ts=float(grid.ts[b] - cells * grid.step_s),
                    detected_ts=float(grid.ts[b]),
                    end_ts=float(grid.ts[b]),
                    expected=float(largest[b]),
                    observed=float(volume[b]),
                    unit=grid.unit,
                    severity=water_severity(float(volume[b]) / hours),
                    litres_per_hour=float(volume[b]) / hours,
                    **self.explain(),
                )
            )
        return findings

    def explain(self) -> dict:
        """One sentence for a co-owner (see `explained`)."""
        return explained(
            (
                "One meter reading covering several hours holds more water than any"
                " stretch of the same length in the last {history_days} days: check"
                " for a tap left open or a burst while nobody was watching."
            ),
            history_days=self.history_days,
        )


@dataclass(frozen=True, kw_only=True)
class StuckMeter:
    """The counter did not move for `window_h` hours though it normally does."""

    window_h: int = 72
    unit: str = "L"
    kind = "stuck_meter"

    @property
    def delay_h(self) -> int:
        """Hours from the counter stopping to the flag."""
        return self.window_h

    def flags(self, grid: Grid) -> np.ndarray:
        """True once `window_h` observed zero hours follow each other."""
        cells = int(self.window_h * HOUR_S / grid.step_s)
        return zero_run_length(grid.values) >= cells

    def findings(self, grid: Grid, sensor: str) -> list[Finding]:
        """Return one finding per stuck period."""
        cells = int(self.window_h * HOUR_S / grid.step_s)

        def build(run: _Run) -> dict:
            return dict(
                kind=self.kind,
                sensor=sensor,
                expected=float(self.window_h),
                observed=float(run.last - run.evidence_start + 1)
                * grid.step_s
                / HOUR_S,
                unit="h",
                severity="medium",
                **self.explain(),
            )

        return _findings_from_runs(grid, flag_runs(self.flags(grid), cells), build)

    def explain(self) -> dict:
        """One sentence for a co-owner (see `explained`)."""
        return explained(
            (
                "The meter has shown no consumption at all for {window_h} hours "
                "although it normally moves every day; it may be stuck."
            ),
            window_h=self.window_h,
        )


@dataclass(frozen=True, kw_only=True)
class SilentMeter:
    """No reading arrived for more than `max_silence_h` hours."""

    max_silence_h: float = 6.0
    kind = "silent_meter"

    @property
    def delay_h(self) -> float:
        """Hours from the last reading to the flag."""
        return self.max_silence_h

    def findings(self, series: Series, sensor: str, now_ts: float) -> list[Finding]:
        """Return one finding per silence, the last one ongoing if still silent."""
        stamps = np.append(series.ts, now_ts)
        silence_h = np.diff(stamps) / HOUR_S
        findings = []
        for i in np.flatnonzero(silence_h > self.max_silence_h):
            ongoing = i == len(silence_h) - 1
            findings.append(
                Finding(
                    kind=self.kind,
                    sensor=sensor,
                    start_ts=float(stamps[i]),
                    detected_ts=float(stamps[i] + self.max_silence_h * HOUR_S),
                    end_ts=None if ongoing else float(stamps[i + 1]),
                    expected=self.max_silence_h,
                    observed=float(silence_h[i]),
                    unit="h",
                    severity="medium",
                    **self.explain(),
                )
            )
        return findings

    def explain(self) -> dict:
        """One sentence for a co-owner (see `explained`)."""
        return explained(
            (
                "The meter sent nothing for more than {max_silence_h:g} hours; its "
                "wiring or radio link should be checked."
            ),
            max_silence_h=self.max_silence_h,
        )


@dataclass(frozen=True, kw_only=True)
class ImpossibleValue:
    """A reading below zero or above what the meter can physically pass."""

    max_per_hour: float = 3125.0  # Q4 of a DN15 water meter, litres per hour
    kind = "impossible_value"

    @property
    def delay_h(self) -> float:
        """Flagged on the reading itself."""
        return 0.0

    def flags(self, series: Series) -> np.ndarray:
        """True for each raw reading that cannot be real consumption."""
        ceiling = self.max_per_hour * series.spans_s / HOUR_S
        return (series.values < 0) | (series.values > ceiling)

    def findings(self, series: Series, sensor: str) -> list[Finding]:
        """Return one finding per impossible reading, never a leak."""
        findings = []
        for i in np.flatnonzero(self.flags(series)):
            stamp = float(series.ts[i])
            findings.append(
                Finding(
                    kind=self.kind,
                    sensor=sensor,
                    start_ts=stamp - float(series.spans_s[i]),
                    detected_ts=stamp,
                    end_ts=stamp,
                    expected=self.max_per_hour * float(series.spans_s[i]) / HOUR_S,
                    observed=float(series.values[i]),
                    unit=series.unit,
                    severity="low",
                    **self.explain(),
                )
            )
        return findings

    def explain(self) -> dict:
        """One sentence for a co-owner (see `explained`)."""
        return explained(
            (
                "The meter reported a value that cannot be real (below zero or "
                "above what it can pass); it was kept out of the totals."
            ),
        )


@dataclass(frozen=True, kw_only=True)
class CounterJump:
    """One reading far above the meter's largest normal step."""

    normal_max: float
    factor: float = 5.0
    kind = "counter_jump"

    @property
    def delay_h(self) -> float:
        """Flagged on the reading itself."""
        return 0.0

    def flags(self, grid: Grid) -> np.ndarray:
        """True where one cell exceeds `factor` times the normal maximum."""
        return grid.values > self.factor * self.normal_max

    def findings(self, grid: Grid, sensor: str) -> list[Finding]:
        """Return one finding per jump."""
        flags = self.flags(grid)

        def build(run: _Run) -> dict:
            return dict(
                kind=self.kind,
                sensor=sensor,
                expected=self.normal_max,
                observed=float(np.max(grid.values[run.first : run.last + 1])),
                unit=grid.unit,
                severity="medium",
                **self.explain(),
            )

        return _findings_from_runs(grid, flag_runs(flags), build)

    def explain(self) -> dict:
        """One sentence for a co-owner (see `explained`)."""
        return explained(
            (
                "The counter leapt by more than {factor:g} times its largest normal"
                " step in one reading; check for a misread or a meter swap."
            ),
            factor=self.factor,
        )


@dataclass(frozen=True, eq=False)
class WeekHourProfile:
    """Median and MAD of consumption per (weekday, hour), with sample counts."""

    median: np.ndarray  # shape (7, 24)
    mad: np.ndarray
    counts: np.ndarray


@dataclass(frozen=True, kw_only=True)
class ProfileDeviation:
    """Consumption above the building's own weekday-hour profile for hours."""

    profile: WeekHourProfile = field(repr=False)
    k: float = 4.0
    min_run_h: int = 3
    floor_kwh: float = 0.05
    kind = "profile_deviation"

    @property
    def delay_h(self) -> int:
        """Hours from the start of the excess to the flag."""
        return self.min_run_h

    def excess(self, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
        """Per cell: consumption above the median, and that in robust sigmas."""
        rates = grid.rates_per_hour()
        day, hour = grid.weekday(), grid.hour_of_day()
        median = self.profile.median[day, hour]
        scale = np.maximum(MAD_TO_SIGMA * self.profile.mad[day, hour], self.floor_kwh)
        return rates - median, (rates - median) / scale

    def flags(self, grid: Grid) -> np.ndarray:
        """True once `min_run_h` hours in a row are more than k sigmas high."""
        _, z = self.excess(grid)
        high = np.where(np.isnan(z), np.nan, (z > self.k).astype(float))
        return window_minimum(high, self.min_run_h) == 1

    def findings(self, grid: Grid, sensor: str) -> list[Finding]:
        """Return one finding per run of excess consumption."""
        excess, _ = self.excess(grid)
        median = excess - grid.rates_per_hour()

        def build(run: _Run) -> dict:
            span = slice(run.evidence_start, run.last + 1)
            extra = float(np.nanmean(excess[span]))
            return dict(
                kind=self.kind,
                sensor=sensor,
                expected=float(-np.nanmean(median[span])),
                observed=float(np.nanmean(grid.rates_per_hour()[span])),
                unit="kWh/h",
                severity="medium" if extra * 24 < 10 else "high",
                kwh_per_day=extra * 24,
                **self.explain(),
            )

        runs = flag_runs(self.flags(grid), self.min_run_h)
        return _findings_from_runs(grid, runs, build)

    def explain(self) -> dict:
        """One sentence for a co-owner (see `explained`)."""
        return explained(
            (
                "For {min_run_h} hours or more, consumption was well above what "
                "this building usually uses at that hour of that weekday."
            ),
            min_run_h=self.min_run_h,
        )


@dataclass(frozen=True, kw_only=True)
class BaseLoadCreep:
    """The nightly minimum of the last week rose above that of the weeks before."""

    recent_days: int = 7
    baseline_days: int = 28
    rise_share: float = 0.2
    min_rise_kwh_h: float = 0.02
    night_hours: tuple[int, ...] = NIGHT_HOURS
    kind = "base_load_creep"

    @property
    def delay_h(self) -> int:
        """A steady rise is flagged once it fills the recent window."""
        return 24 * self.recent_days

    def nightly_minimum(self, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
        """Per calendar day: its end stamp and lowest night rate (NaN if no night)."""
        day_index = ((grid.ts - grid.step_s) // 86400.0).astype(np.int64)
        night = np.isin(grid.hour_of_day(), self.night_hours)
        rates = np.where(night, grid.rates_per_hour(), np.nan)
        days = day_index - day_index[0]
        minimum = np.full(days[-1] + 1, np.inf)
        observed = np.isfinite(rates)
        np.minimum.at(minimum, days[observed], rates[observed])
        minimum[np.isinf(minimum)] = np.nan
        return (day_index[0] + np.arange(len(minimum)) + 1) * 86400.0, minimum

    def rise(self, grid: Grid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per day: end stamp, baseline median and recent median of night minima."""
        ends, minimum = self.nightly_minimum(grid)
        total = self.recent_days + self.baseline_days
        base = np.full(len(minimum), np.nan)
        recent = np.full(len(minimum), np.nan)
        if len(minimum) >= total:
            windows = sliding_window_view(minimum, total)
            base[total - 1 :] = np.nanmedian(windows[:, : self.baseline_days], axis=1)
            recent[total - 1 :] = np.nanmedian(windows[:, self.baseline_days :], axis=1)
        return ends, base, recent

    def findings(self, grid: Grid, sensor: str) -> list[Finding]:
        """Return one finding per run of days with a risen base load."""
        ends, base, recent = self.rise(grid)
        limit = base + np.maximum(self.rise_share * base, self.min_rise_kwh_h)
        flags = recent > limit
        findings = []
        for run in flag_runs(flags, self.recent_days):
            extra = float(recent[run.last] - base[run.last])
            findings.append(
                Finding(
                    kind=self.kind,
                    sensor=sensor,
                    start_ts=float(ends[run.evidence_start] - 86400.0),
                    detected_ts=float(ends[run.first]),
                    end_ts=None
                    if run.last == len(flags) - 1
                    else float(ends[run.last]),
                    expected=float(base[run.last]),
                    observed=float(recent[run.last]),
                    unit="kWh/h",
                    severity="low" if extra * 24 < 5 else "medium",
                    kwh_per_day=extra * 24,
                    **self.explain(),
                )
            )
        return findings

    def explain(self) -> dict:
        """One sentence for a co-owner (see `explained`)."""
        return explained(
            (
                "The lowest night-time consumption of the last week is clearly "
                "higher than in the weeks before: something now runs all night."
            ),
        )
