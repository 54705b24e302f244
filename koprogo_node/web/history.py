"""History views: which window a tier shows, and how its points are grouped.

Windows are whole UTC days, as the ledger's day rollups are. A day is shown
per quarter hour, a week per hour, a month per day and a year per month;
clicking a point zooms into the finer tier that contains it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

TIERS = ("day", "week", "month", "year")
STEP = {"day": "15m", "week": "1h", "month": "1d", "year": "1d"}
SLOT_S = {"day": 900, "week": 3600, "month": 86_400}
FINER = {"week": "day", "month": "day", "year": "month"}
COARSER = {"day": "week", "week": "month", "month": "year"}


@dataclass(frozen=True)
class Window:
    """The span one history chart covers."""

    tier: str
    first: date
    end: date  # exclusive

    @property
    def start_s(self) -> int:
        return _epoch(self.first)

    @property
    def end_s(self) -> int:
        return _epoch(self.end)

    @property
    def step(self) -> str:
        return STEP[self.tier]

    def previous(self) -> date:
        """A day inside the window before this one."""
        return self.first - timedelta(days=1)

    def following(self) -> date:
        """The first day of the window after this one."""
        return self.end


def window(tier: str, at: date) -> Window:
    """The window of `tier` that contains the day `at`."""
    if tier == "day":
        return Window(tier, at, at + timedelta(days=1))
    if tier == "week":
        monday = at - timedelta(days=at.weekday())
        return Window(tier, monday, monday + timedelta(days=7))
    if tier == "month":
        first = at.replace(day=1)
        return Window(tier, first, _next_month(first))
    if tier == "year":
        first = at.replace(month=1, day=1)
        return Window(tier, first, first.replace(year=first.year + 1))
    raise ValueError(f"tier must be one of {', '.join(TIERS)}, got {tier!r}")


def _next_month(first: date) -> date:
    return (first + timedelta(days=32)).replace(day=1)


def _epoch(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp())


def day_of(ts_s: int) -> date:
    """The UTC day a Unix time falls in."""
    return datetime.fromtimestamp(ts_s, timezone.utc).date()


def points(view: Window, rows: list[dict]) -> list[tuple[int, float | None]]:
    """(start, value) for every slot of the window, None where nothing came.

    Values are consumption for counters and the mean for gauges. A year's
    daily rollups are summed (counters) or averaged (gauges) per month.
    """
    found: dict[int, list[float]] = {}
    for row in rows:
        value = _value(row)
        if value is not None:
            found.setdefault(_slot(view, row["ts_ms"] // 1000), []).append(value)
    counter = any("consumption" in row for row in rows)
    combine = sum if counter else (lambda vals: sum(vals) / len(vals))
    return [
        (start, combine(found[start]) if start in found else None)
        for start in slots(view)
    ]


def slots(view: Window) -> list[int]:
    """Start of every point the window shows."""
    if view.tier == "year":
        months = [view.first.replace(month=m) for m in range(1, 13)]
        return [_epoch(month) for month in months]
    step = SLOT_S[view.tier]
    return list(range(view.start_s, view.end_s, step))


def _slot(view: Window, start_s: int) -> int:
    if view.tier == "year":
        return _epoch(day_of(start_s).replace(day=1))
    step = SLOT_S[view.tier]
    return start_s // step * step


def _value(row: dict) -> float | None:
    return row.get("consumption", row.get("mean"))
