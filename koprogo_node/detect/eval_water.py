"""Leak detection scored on the hourly household water set.

Detectors, each turning a cleaned hourly grid into one flag per hour:

- `night_flow_rules` (ours): night flow, sustained flow and burst rules with
  thresholds learnt from the meter's previous `HISTORY_DAYS` days, refreshed
  weekly (see `calibrate.py`), and the span burst rule, which compares each
  multi-hour reading with the meter's own past stretches of that length. The
  sustained rule reads a multi-hour reading's average as a lower bound of a
  constant leak, and only from the hour the reading arrives;
- `never_zero_24h`: the usual smart-meter rule, flow in each of the last 24 h;
- `rolling_zscore` and `seasonal_naive`: generic baselines from `baselines.py`,
  fed the same grid (NaN in gaps).

Leak injection: a constant leak of each size starts at a random whole hour of a
random meter, at least `HISTORY_DAYS` days after the start of its trace; the
detector sees the `HISTORY_DAYS` days before and `HORIZON_H` hours after. The
delay is from the leak start to the end of the first flagged hour at or after
it; a leak is detected if that happens within `HORIZON_H` hours, and
`within_24h_share` counts those found within 24 h. `well_observed` repeats
the figures for injections whose first 24 h have at least 75 % one-hour
readings: some traces have whole days of multi-hour readings, whose spread of
flow over the hours is unknown; there a leak is confirmed only through the
readings' averages, and not before the readings arrive.

Alarms: flagged hours less than `HOLD_OFF_H` apart merge into one alarm, as
`AlertBook` merges them. Only hours after each meter's first `HISTORY_DAYS`
days are scored, for every detector alike.

Labels: the set marks one row per anomaly. A labelled row counts as a *leak*
when it is a positive case of a leak scenario file: ACNZ (never zero for 24 h)
or AHCW / AHCWD (anomalously high use while away). ACS (three near-equal
values), ACN (negative consumption, a meter fault) and the labelled rows that
no scenario file contains are reported per category but are not leaks. A leak
label is found (true positive) when an alarm overlaps the interval from 24 h
before its stamp to 6 h after it; the 24 h before cover an ACNZ row, which
marks the end of a day of flow. Precision is the share of alarms that overlap
such an interval of some leak label. A false alarm is an alarm that overlaps
no such interval of any labelled row at all.

A labelled row's stamp is the end of its reading: three AHCW rows (user 1,
350 L; user 5, 410 L; user 6, 210 L) are readings of 17, 4 and 5 hours, as
`totalConsume` confirms, not single hours; only the span burst rule can see
them, the hourly burst rule gives no verdict on a gap.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from koprogo_node.detect import baselines
from koprogo_node.detect.calibrate import (
    WaterSettings,
    calibrate_water,
    model_threshold,
    span_burst_rule,
    sustained_minimum,
)
from koprogo_node.detect.features import LEAK_HOURS, leak_features
from koprogo_node.detect.inject import Injection, draw_starts, inject_leak
from koprogo_node.detect.rules import ContinuousFlow, night_run_minimum
from koprogo_node.detect.series import HOUR_S, Grid, Series, clean, to_grid
from koprogo_node.detect.water_data import (
    DATASET,
    Household,
    dataset_dir,
    load_households,
    load_scenarios,
)

SIZES_L_H = (1, 2, 5, 10, 50)
HISTORY_DAYS = 35
HORIZON_H = 72
HOLD_OFF_H = 24
REFRESH_DAYS = 7
LABEL_BEFORE_H = 24
LABEL_AFTER_H = 6
HOURS_PER_MONTH = 730.0
LEAK_SCENARIOS = ("ACNZ", "AHCW", "AHCWD")
WELL_OBSERVED = 0.75
OURS = "night_flow_rules"
MODEL = "water_leak_model"
BASELINES = ("never_zero_24h", "rolling_zscore", "seasonal_naive")

FlagFn = Callable[[Grid, int], np.ndarray]


def leak_rule_flags(
    grid: Grid, first_cell: int, settings: WaterSettings = WaterSettings()
) -> np.ndarray:
    """Flags of our leak rules, recalibrated weekly on the preceding history."""
    rates = grid.rates_per_hour()
    night = night_run_minimum(grid, settings.night_hours, settings.night_run_h)
    sustained = sustained_minimum(grid, settings)
    span_burst = span_burst_rule(settings).flags(grid)
    history = int(HISTORY_DAYS * 24)
    refresh = int(REFRESH_DAYS * 24)
    flags = np.zeros(len(rates), dtype=bool)
    for block in range(first_cell, len(rates), refresh):
        cal = calibrate_water(grid.slice(max(0, block - history), block), settings)
        if not cal.armed:
            continue
        span = slice(block, block + refresh)
        flags[span] = (
            (night[span] > cal.night_threshold_l_h)
            | (sustained[span] > cal.sustained_threshold_l_h)
            | (rates[span] > cal.burst_limit_l_h)
            | span_burst[span]
        )
    return flags


def _after(flags: np.ndarray, first_cell: int) -> np.ndarray:
    """Drop flags before `first_cell`."""
    flags[:first_cell] = False
    return flags


def model_flags(grid: Grid, first_cell: int) -> np.ndarray:
    """Flags of the water-leak model, at a level calibrated on the meter's past.

    Each cell is scored on the 24 hours ending at it; the alarm level comes
    from the scores before `first_cell` (as the daemon does), and a meter on
    which the model cannot tell (it scores its past as leaks) is never flagged.
    """
    flags = np.zeros(len(grid.values), dtype=bool)
    values = grid.values
    if len(values) < LEAK_HOURS:
        return flags
    windows = np.lib.stride_tricks.sliding_window_view(values, LEAK_HOURS)
    whole = np.isfinite(windows).all(axis=1)
    scores = np.full(len(windows), np.nan)
    if whole.any():
        scores[whole] = _leak_model().score(leak_features(windows[whole]))
    ends = np.arange(LEAK_HOURS - 1, len(values))
    past = scores[(ends < first_cell) & np.isfinite(scores)]
    level = model_threshold(past)
    if level is not None:
        flags[ends] = np.nan_to_num(scores, nan=0.0) >= level
    return _after(flags, first_cell)


@functools.cache
def _leak_model():  # ModelIntegrityError for a tampered file, once per run
    from .onnx_runner import ModelRunner

    return ModelRunner.from_manifest("water_leak")


DETECTORS: dict[str, FlagFn] = {
    OURS: leak_rule_flags,
    MODEL: model_flags,
    "never_zero_24h": lambda g, first: _after(ContinuousFlow().flags(g), first),
    "rolling_zscore": lambda g, first: _after(
        baselines.rolling_zscore(g.rates_per_hour()), first
    ),
    "seasonal_naive": lambda g, first: _after(
        baselines.seasonal_naive(g.rates_per_hour()), first
    ),
}


@dataclass(frozen=True)
class Alarm:
    """Flagged hours merged into one alarm: first and last flagged cell ends."""

    start_ts: float
    end_ts: float


def alarms(
    grid: Grid, flags: np.ndarray, hold_off_h: float = HOLD_OFF_H
) -> list[Alarm]:
    """Merge flagged cells closer than the hold-off into alarms."""
    cells = np.flatnonzero(flags)
    if len(cells) == 0:
        return []
    stamps = grid.ts[cells]
    breaks = np.flatnonzero(np.diff(stamps) >= hold_off_h * HOUR_S)
    starts = np.concatenate([[0], breaks + 1])
    ends = np.concatenate([breaks, [len(cells) - 1]])
    return [
        Alarm(float(stamps[a] - grid.step_s), float(stamps[b]))
        for a, b in zip(starts, ends)
    ]


def _slice_series(series: Series, start_ts: float, stop_ts: float) -> Series:
    """Rows with stamps in (start_ts, stop_ts]."""
    keep = (series.ts > start_ts) & (series.ts <= stop_ts)
    return series.select(keep)


def hourly_coverage(series: Series, start_ts: float, hours: int = 24) -> float:
    """Share of the `hours` after `start_ts` covered by one-hour readings."""
    after = (series.ts > start_ts) & (series.ts <= start_ts + hours * HOUR_S)
    return float(np.sum(after & (series.spans_s <= HOUR_S))) / hours


def injection_delays(
    series: Series, starts: np.ndarray, size: float
) -> dict[str, np.ndarray]:
    """Per detector: hours to first flag after each injected leak (NaN: missed)."""
    delays = {name: np.full(len(starts), np.nan) for name in DETECTORS}
    for i, start in enumerate(starts):
        window = _slice_series(
            series, start - HISTORY_DAYS * 86400.0, start + HORIZON_H * HOUR_S
        )
        grid = to_grid(inject_leak(window, Injection(float(start), size)))
        first = int(np.searchsorted(grid.ts, start, side="right"))
        for name, detector in DETECTORS.items():
            hits = np.flatnonzero(detector(grid, first)[first:])
            if len(hits):
                delays[name][i] = (grid.ts[first + hits[0]] - start) / HOUR_S
    return delays


def _injection_figures(
    cleaned: dict[int, Series], rng: np.random.Generator, per_size: int
) -> dict[str, dict[str, dict[str, float]]]:
    """Detected share and delays per detector and leak size."""
    users = sorted(cleaned)
    per_detector: dict[str, dict[str, dict[str, float]]] = {n: {} for n in DETECTORS}
    for size in SIZES_L_H:
        chosen = rng.choice(users, size=per_size)
        collected: dict[str, list[np.ndarray]] = {n: [] for n in DETECTORS}
        coverage: list[float] = []
        for user in users:
            count = int(np.sum(chosen == user))
            if count == 0:
                continue
            starts = draw_starts(
                rng,
                cleaned[user],
                count,
                history_h=HISTORY_DAYS * 24,
                horizon_h=HORIZON_H,
            )
            coverage += [hourly_coverage(cleaned[user], s) for s in starts]
            for name, found in injection_delays(cleaned[user], starts, size).items():
                collected[name].append(found)
        well_observed = np.array(coverage) >= WELL_OBSERVED
        for name, parts in collected.items():
            delays = np.concatenate(parts)
            summary = _delay_summary(delays)
            summary["well_observed"] = _delay_summary(delays[well_observed])
            per_detector[name][str(size)] = summary
    return per_detector


def _delay_summary(delays: np.ndarray) -> dict:
    """Detected share, share within 24 h and median delay of detected leaks."""
    found = delays[np.isfinite(delays)]
    if len(delays) == 0:
        return {"injections": 0}
    return {
        "detected_share": round(len(found) / len(delays), 4),
        "within_24h_share": round(float(np.mean(delays <= 24)), 4),
        "median_delay_h": round(float(np.median(found)), 2) if len(found) else None,
        "p95_delay_h": round(float(np.quantile(found, 0.95)), 2)
        if len(found)
        else None,
        "injections": int(len(delays)),
    }


@dataclass(frozen=True, eq=False)
class LabelSet:
    """Stamps of labelled rows per meter, by category."""

    leak: dict[int, np.ndarray]
    any_label: dict[int, np.ndarray]
    by_category: dict[str, dict[int, np.ndarray]]


def label_set(households: dict[int, Household], directory: Path) -> LabelSet:
    """Sort the labelled rows of each meter into leak and other categories."""
    category_of: dict[int, str] = {}
    for code, rows in load_scenarios(directory).items():
        for row in rows:
            if row.anomalous:
                category_of[row.row_id] = code
    by_category: dict[str, dict[int, list[float]]] = {}
    for user, home in households.items():
        for row_id, stamp in zip(
            home.row_ids[home.anomalous], home.series.ts[home.anomalous]
        ):
            code = category_of.get(int(row_id), "unattributed")
            by_category.setdefault(code, {}).setdefault(user, []).append(float(stamp))
    arrays = {
        code: {u: np.array(s) for u, s in users.items()}
        for code, users in by_category.items()
    }
    return LabelSet(
        leak=_merge([arrays.get(c, {}) for c in LEAK_SCENARIOS]),
        any_label=_merge(list(arrays.values())),
        by_category=arrays,
    )


def _merge(parts: list[dict[int, np.ndarray]]) -> dict[int, np.ndarray]:
    """Union of per-meter stamp arrays."""
    merged: dict[int, list[float]] = {}
    for part in parts:
        for user, stamps in part.items():
            merged.setdefault(user, []).extend(stamps.tolist())
    return {u: np.sort(np.array(s)) for u, s in merged.items()}


def _overlaps(alarm: Alarm, stamps: np.ndarray) -> np.ndarray:
    """Which labelled stamps this alarm overlaps, with the label tolerance."""
    return (alarm.end_ts >= stamps - LABEL_BEFORE_H * HOUR_S) & (
        alarm.start_ts <= stamps + LABEL_AFTER_H * HOUR_S
    )


def _label_figures(
    alarms_of: dict[int, list[Alarm]], labels: LabelSet
) -> tuple[dict[str, float], dict[str, float], int]:
    """Leak precision/recall/F1, recall per category, and the false alarm count."""
    empty = np.empty(0)
    true_alarms = false_alarms = total = 0
    found: dict[str, int] = {}
    for user, user_alarms in alarms_of.items():
        for alarm in user_alarms:
            total += 1
            true_alarms += bool(np.any(_overlaps(alarm, labels.leak.get(user, empty))))
            hits_any = np.any(_overlaps(alarm, labels.any_label.get(user, empty)))
            false_alarms += not hits_any
    recall_by = {}
    for code, users in sorted(labels.by_category.items()):
        hit = count = 0
        for user, stamps in users.items():
            covered = np.zeros(len(stamps), dtype=bool)
            for alarm in alarms_of.get(user, []):
                covered |= _overlaps(alarm, stamps)
            hit, count = hit + int(np.sum(covered)), count + len(stamps)
        recall_by[code] = round(hit / count, 4)
        found[code] = hit
    leak_total = sum(len(s) for s in labels.leak.values())
    recall = sum(found.get(c, 0) for c in LEAK_SCENARIOS) / leak_total
    precision = true_alarms / total if total else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    leak = {
        "leak_precision": round(precision, 4),
        "leak_recall": round(recall, 4),
        "leak_f1": round(f1, 4),
        "alarms": total,
        "leak_labels": leak_total,
    }
    return leak, recall_by, false_alarms


def evaluate(data_root: Path, seed: int = 7, injections_per_size: int = 1000) -> dict:
    """Score every detector on injected leaks and on the set's own labels."""
    began = time.monotonic()
    directory = dataset_dir(data_root)
    households = load_households(directory)
    cleaned, reports = {}, {}
    for user, home in households.items():
        cleaned[user], report = clean(home.series)
        reports[str(user)] = report.as_dict()
    grids = {user: to_grid(series) for user, series in cleaned.items()}
    first = HISTORY_DAYS * 24
    observed_h = sum(int(np.sum(np.isfinite(g.values))) for g in grids.values())
    scored_h = sum(int(np.sum(np.isfinite(g.values[first:]))) for g in grids.values())
    rng = np.random.default_rng(seed)
    labels = label_set(households, directory)
    false_alarms, label_scores, recall_by = {}, {}, {}
    for name, detector in DETECTORS.items():
        alarms_of = {u: alarms(g, detector(g, first)) for u, g in grids.items()}
        label_scores[name], recall_by[name], count = _label_figures(alarms_of, labels)
        false_alarms[name] = round(count / (scored_h / HOURS_PER_MONTH), 3)
    return {
        "dataset": DATASET,
        "meters": len(grids),
        "meter_months": round(observed_h / HOURS_PER_MONTH, 2),
        "scored_meter_months": round(scored_h / HOURS_PER_MONTH, 2),
        "seed": seed,
        "leak_injection": {
            "sizes_l_per_h": list(SIZES_L_H),
            "horizon_h": HORIZON_H,
            "per_detector": _injection_figures(cleaned, rng, injections_per_size),
        },
        "false_alarms_per_meter_month": false_alarms,
        "labels": label_scores,
        "label_recall_by_category": recall_by,
        "leak_label_categories": list(LEAK_SCENARIOS),
        "cleaning": reports,
        "baselines": list(BASELINES),
        "runtime_s": round(time.monotonic() - began, 2),
    }
