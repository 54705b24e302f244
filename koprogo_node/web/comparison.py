"""This building against similar ones: percentile bands of per-lot daily use.

Neighbours' figures are the anonymised daily aggregates the federation
delivered (building totals divided per lot). A band is only drawn from at
least MIN_OTHERS other buildings for the same day: with fewer, a percentile
says little and comes close to naming a neighbour's figure, so the page says
there is not enough data instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FAMILIES = {
    "electricity_import": "kWh",
    "water": "m³",
    "gas": "m³",
    "heat": "kWh",
}
MIN_OTHERS = 4
# Narrow to buildings like this one only while enough of them remain.
SIMILARITY = ("heating", "lots_band")


@dataclass(frozen=True)
class Band:
    """One family's comparison, or why there is none (`enough` False)."""

    family: str
    unit: str
    enough: bool
    others: int
    own: float | None = None
    p10: float | None = None
    p50: float | None = None
    p90: float | None = None
    rank: float | None = None  # share of the others using less than this building
    similar_by: tuple[str, ...] = ()


def compare(buildings: list[dict]) -> tuple[int | None, list[Band]]:
    """The day compared and one band per family, from `latest_by_building` rows."""
    own = next((b for b in buildings if b["self"]), None)
    if own is None:
        return None, [Band(fam, unit, False, 0) for fam, unit in FAMILIES.items()]
    day = own["start_s"]
    others = [b for b in buildings if not b["self"] and b["start_s"] == day]
    return day, [_band(fam, unit, own, others) for fam, unit in FAMILIES.items()]


def _band(family: str, unit: str, own: dict, others: list[dict]) -> Band:
    own_value = _per_lot(own, family)
    peers = [b for b in others if _per_lot(b, family) is not None]
    peers, similar_by = _most_similar(own["meta"], peers)
    values = np.array([_per_lot(b, family) for b in peers], dtype=float)
    if own_value is None or len(values) < MIN_OTHERS:
        return Band(family, unit, False, len(values), own=own_value)
    p10, p50, p90 = np.percentile(values, [10, 50, 90])
    return Band(
        family,
        unit,
        True,
        len(values),
        own=own_value,
        p10=float(p10),
        p50=float(p50),
        p90=float(p90),
        rank=float(np.mean(values < own_value)),
        similar_by=similar_by,
    )


def _most_similar(meta: dict, peers: list[dict]) -> tuple[list[dict], tuple]:
    """Keep buildings sharing this one's traits while MIN_OTHERS remain."""
    used: tuple[str, ...] = ()
    for trait in SIMILARITY:
        alike = [b for b in peers if b["meta"].get(trait) == meta.get(trait)]
        if len(alike) < MIN_OTHERS:
            break
        peers, used = alike, (*used, trait)
    return peers, used


def _per_lot(building: dict, family: str) -> float | None:
    value = building["values"].get(family)
    return None if value is None else value.get("per_lot")
