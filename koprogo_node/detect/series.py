"""Consumption series and their cleaning, with what was dropped and why.

A `Series` holds consumption per reading: `values[i]` is what flowed during
the `spans_s[i]` seconds that end at `ts[i]` (Unix seconds, float64). Rules
that look at the hour of day read `ts` as local wall-clock seconds.

Cleaning is defined as follows:

- stamps must increase; a row whose stamp is not above every earlier stamp is
  dropped, so the first occurrence of a stamp wins. If it repeats the stamp of
  the row just before it, it counts as a duplicate; otherwise it is the overlap
  left by a clock that jumped back;
- a negative or non-finite value is excluded and counted; its hour becomes a
  gap, never zero flow and never flow;
- a gap (no reading) stays a gap: nothing is interpolated.

`to_grid` lays a cleaned series on a regular grid. A reading that covers one
cell gives that cell its value. A zero reading that covers several cells
proves zero flow in all of them (the counter did not move); a positive one
does not say how the flow was spread, so its cells are gaps. The grid keeps,
per cell, the average flow of the reading that covers it (`span_rates`): a
constant leak raises every reading's average by its own rate, so rules may
read a multi-hour average as a lower bound of that leak, never as the flow
of any one hour.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

HOUR_S = 3600.0
DAY_S = 86400.0
# 1970-01-01 was a Thursday; with Monday as 0 that is day 3.
EPOCH_WEEKDAY = 3
_TOLERANCE_S = 1.0


@dataclass(frozen=True, eq=False)
class Series:
    """Consumption per reading: stamps, values and the span each value covers."""

    ts: np.ndarray
    values: np.ndarray
    spans_s: np.ndarray
    unit: str = "L"

    @classmethod
    def from_values(
        cls,
        ts: np.ndarray | list[float],
        values: np.ndarray | list[float],
        unit: str = "L",
        step_s: float = HOUR_S,
    ) -> Series:
        """Build a series whose spans run from the previous stamp (first: step_s)."""
        stamps = np.asarray(ts, dtype=np.float64)
        spans = np.diff(stamps, prepend=stamps[:1] - step_s) if len(stamps) else stamps
        return cls(stamps, np.asarray(values, dtype=np.float64), spans, unit)

    def __len__(self) -> int:
        return len(self.ts)

    def select(self, keep: np.ndarray) -> Series:
        """Return the rows where `keep` is true."""
        return Series(self.ts[keep], self.values[keep], self.spans_s[keep], self.unit)


@dataclass(frozen=True)
class CleaningReport:
    """How many rows cleaning kept and dropped, by reason."""

    kept: int
    duplicates: int
    clock_back: int
    negatives: int
    non_finite: int

    @property
    def dropped(self) -> int:
        """Rows dropped for any reason."""
        return self.duplicates + self.clock_back + self.negatives + self.non_finite

    def as_dict(self) -> dict[str, int]:
        """Return the report as plain JSON-ready values."""
        return asdict(self) | {"dropped": self.dropped}


def clean(series: Series) -> tuple[Series, CleaningReport]:
    """Drop repeated or backward stamps and impossible values; report each."""
    ts = series.ts
    previous_max = np.maximum.accumulate(np.concatenate([[-np.inf], ts[:-1]]))
    in_order = ts > previous_max
    repeats_previous = np.concatenate([[False], ts[1:] == ts[:-1]])
    duplicates = int(np.sum(~in_order & repeats_previous))
    clock_back = int(np.sum(~in_order & ~repeats_previous))
    ordered = _bound_spans(series.select(in_order))
    non_finite = ~np.isfinite(ordered.values)
    negative = ordered.values < 0
    cleaned = ordered.select(~non_finite & ~negative)
    report = CleaningReport(
        kept=len(cleaned),
        duplicates=duplicates,
        clock_back=clock_back,
        negatives=int(np.sum(negative)),
        non_finite=int(np.sum(non_finite)),
    )
    return cleaned, report


def _bound_spans(series: Series) -> Series:
    """Keep each span within the time since the previous kept stamp."""
    since_previous = np.diff(series.ts, prepend=-np.inf)
    spans = np.minimum(series.spans_s, since_previous)
    return Series(series.ts, series.values, spans, series.unit)


@dataclass(frozen=True, eq=False)
class Grid:
    """Consumption per regular cell; NaN marks a gap. Cell i ends at ts[i].

    `span_rates`, when given, holds per cell the average flow per hour of the
    reading covering it, including readings that span several cells, and
    `span_end` the index of that reading's last cell (-1 in gaps): a rule may
    use a reading's average only from its last cell on, once it has arrived.
    """

    end_ts0: float
    step_s: float
    values: np.ndarray
    unit: str = "L"
    span_rates: np.ndarray | None = field(default=None, repr=False)
    span_end: np.ndarray | None = field(default=None, repr=False)

    @property
    def ts(self) -> np.ndarray:
        """End stamp of every cell."""
        return self.end_ts0 + self.step_s * np.arange(len(self.values))

    def hour_of_day(self) -> np.ndarray:
        """Hour of day (0-23) of each cell's start, in the stamps' wall clock."""
        start = self.ts - self.step_s
        return ((start % DAY_S) // HOUR_S).astype(np.int64)

    def weekday(self) -> np.ndarray:
        """Weekday (Monday 0) of each cell's start."""
        start = self.ts - self.step_s
        return ((start // DAY_S + EPOCH_WEEKDAY) % 7).astype(np.int64)

    def rates_per_hour(self) -> np.ndarray:
        """Consumption per hour in each cell (NaN in gaps)."""
        return self.values * (HOUR_S / self.step_s)

    def span_rates_per_hour(self) -> np.ndarray:
        """Average flow per hour of the reading covering each cell (NaN: none)."""
        if self.span_rates is None:
            return self.rates_per_hour()
        return self.span_rates

    def span_ends(self) -> np.ndarray:
        """Index of the last cell of the reading covering each cell (-1: gap)."""
        if self.span_end is None:
            index = np.arange(len(self.values))
            return np.where(np.isfinite(self.values), index, -1)
        return self.span_end

    def slice(self, start: int, stop: int) -> Grid:
        """Return cells [start, stop) as a grid of their own."""
        rates = None if self.span_rates is None else self.span_rates[start:stop]
        ends = None if self.span_end is None else self.span_end[start:stop] - start
        return Grid(
            self.end_ts0 + start * self.step_s,
            self.step_s,
            self.values[start:stop],
            self.unit,
            rates,
            None if ends is None else np.where(ends >= 0, ends, -1),
        )


def to_grid(series: Series, step_s: float = HOUR_S) -> Grid:
    """Lay a cleaned series on cells of `step_s` aligned to the epoch."""
    if len(series) == 0:
        return Grid(0.0, step_s, np.empty(0), series.unit)
    first_end = np.ceil((series.ts[0] - _TOLERANCE_S) / step_s) * step_s
    end_cell = np.ceil((series.ts - first_end - _TOLERANCE_S) / step_s).astype(int)
    start_cell = np.ceil(
        (series.ts - series.spans_s - first_end + step_s - _TOLERANCE_S) / step_s
    ).astype(int)
    cells = int(end_cell[-1]) + 1
    covered = end_cell - start_cell + 1
    single = (covered <= 1) & (start_cell >= 0)
    total = np.bincount(end_cell[single], series.values[single], minlength=cells)
    seconds = np.bincount(end_cell[single], series.spans_s[single], minlength=cells)
    values = np.where(seconds >= step_s - _TOLERANCE_S, total, np.nan)
    _mark_multi_cell_zeros(values, series, start_cell, end_cell, ~single)
    rates, ends = _span_rates(values, series, start_cell, end_cell, ~single, step_s)
    return Grid(first_end, step_s, values, series.unit, rates, ends)


def _span_rates(
    values: np.ndarray,
    series: Series,
    start_cell: np.ndarray,
    end_cell: np.ndarray,
    multi: np.ndarray,
    step_s: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Per cell: average flow per hour and last cell of the reading covering it."""
    rates = values * (HOUR_S / step_s)
    index = np.arange(len(values))
    ends = np.where(np.isfinite(values), index, -1)
    for i in np.flatnonzero(multi & (series.values > 0)):
        cells = slice(max(int(start_cell[i]), 0), int(end_cell[i]) + 1)
        unknown = np.isnan(values[cells])
        average = series.values[i] * HOUR_S / series.spans_s[i]
        rates[cells] = np.where(unknown, average, rates[cells])
        ends[cells] = np.where(unknown, int(end_cell[i]), ends[cells])
    return rates, ends


def _mark_multi_cell_zeros(
    values: np.ndarray,
    series: Series,
    start_cell: np.ndarray,
    end_cell: np.ndarray,
    multi: np.ndarray,
) -> None:
    """Set cells covered by a zero reading spanning several cells to zero."""
    zero = multi & (series.values == 0)
    # Difference array: +1 where a zero span starts, -1 after it ends.
    marks = np.zeros(len(values) + 1)
    np.add.at(marks, np.maximum(start_cell[zero], 0), 1)
    np.add.at(marks, end_cell[zero] + 1, -1)
    proven_zero = np.cumsum(marks)[:-1] > 0
    values[proven_zero & np.isnan(values)] = 0.0
