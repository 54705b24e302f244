"""What a building shares: normalised totals behind a privacy gate (pure).

Only building totals of closed 15-minute, hourly or daily buckets leave the
node, divided per lot and per m², with coarse metadata. A family's total is
published only when enough lots add to it and none dominates it:

- a *lot meter* (a device whose name matches `privacy.lot_pattern`, such as
  `sim.lot03`) is one lot's consumption. At least `min_lots` lots must have
  consumed something in the bucket, and no lot may be above `max_lot_share`
  of the total;
- a *building meter* (common parts, the main water meter) already mixes every
  lot; its total is published only if the building declares at least
  `min_lots` lots. How the lots share it cannot be checked, and needs not be:
  no lot's value can be taken out of it.

Optional Laplace noise spends a daily budget. The noise is scaled to the
largest change one lot can make to a published value, as the gate bounds it
(`max_lot_share` of the total); that makes the scale depend on the data, so
it blurs values but is not a formal differential-privacy guarantee.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from typing import Any

from ..config.model import HEATING_TYPES, BuildingConfig, PrivacyConfig
from ..core.channels import SUMMED, family
from ..core.rollups import Tier

TOPIC_PREFIX = "koprogo/aggregates/v1/"
TIERS = {"quarter": Tier.QUARTER, "hour": Tier.HOUR, "day": Tier.DAY}
TOPICS = {name: TOPIC_PREFIX + name for name in TIERS}
LOT_BANDS = ((0, "unknown"), (1, "1-9"), (10, "10-19"), (20, "20-49"), (50, "50+"))
MAX_VALUE = 1e9


@dataclass(frozen=True, slots=True)
class Withheld:
    """Why a family's total was not published."""

    family: str
    reason: str  # too_few_lots, dominant_lot, privacy_budget_spent


def tier_name(tier: Tier) -> str:
    """`quarter`, `hour` or `day`."""
    return next(name for name, value in TIERS.items() if value == tier)


def coarse_metadata(building: BuildingConfig) -> dict[str, Any]:
    """Construction decade, lot-count band, postcode region, heating type."""
    year = building.construction_year
    return {
        "decade": year // 10 * 10 if year else None,
        "lots_band": lot_band(building.lots),
        "region": postcode_region(building.postcode),
        "heating": building.heating,
    }


def lot_band(lots: int) -> str:
    """The band a lot count falls in, e.g. `10-19`."""
    return [label for low, label in LOT_BANDS if lots >= low][-1]


def postcode_region(postcode: str) -> str | None:
    """The postcode's first two digits: a district, never a street."""
    return postcode[:2] + "xx" if postcode else None


def contributions(
    rows: list[tuple[str, float]],
) -> dict[str, dict[str, float]]:
    """Per family, what each device (sensor name minus channel) added."""
    out: dict[str, dict[str, float]] = {}
    for sensor, amount in rows:
        fam = family(sensor)
        if fam not in SUMMED or not math.isfinite(amount):
            continue
        device = sensor.rsplit(".", 1)[0]
        per_device = out.setdefault(fam, {})
        per_device[device] = per_device.get(device, 0.0) + amount
    return out


class PrivacyGate:
    """Decides, family by family, whether a bucket's total may leave."""

    def __init__(
        self,
        building: BuildingConfig,
        privacy: PrivacyConfig,
        rng: random.Random | None = None,
    ) -> None:
        self.building = building
        self.privacy = privacy
        self._lot = re.compile(privacy.lot_pattern)
        self._rng = rng or random.SystemRandom()
        self.budget_day = -1
        self.budget_spent = 0.0

    def total(self, fam: str, by_device: dict[str, float]) -> float | Withheld:
        """The family's publishable total, or why it is withheld."""
        lots = {d: a for d, a in by_device.items() if self._is_lot(d)}
        total = sum(by_device.values())
        if lots:
            if sum(1 for a in lots.values() if a > 0) < self.privacy.min_lots:
                return Withheld(fam, "too_few_lots")
            if total <= 0 or max(lots.values()) > self.privacy.max_lot_share * total:
                return Withheld(fam, "dominant_lot")
        elif self.building.lots < self.privacy.min_lots:
            return Withheld(fam, "too_few_lots")
        return total

    def body(
        self,
        tier: Tier,
        start_s: int,
        by_family: dict[str, dict[str, float]],
        units: dict[str, str],
    ) -> tuple[dict | None, list[Withheld]]:
        """The message body for one bucket, and what was withheld from it."""
        values: dict[str, dict] = {}
        withheld: list[Withheld] = []
        lots = self._lot_count(by_family)
        for fam in sorted(by_family):
            verdict = self.total(fam, by_family[fam])
            if not isinstance(verdict, Withheld):
                verdict = self._noised(fam, verdict, start_s)
            if isinstance(verdict, Withheld):
                withheld.append(verdict)
                continue
            values[fam] = self._normalised(verdict, lots, units.get(fam, ""))
        if not values:
            return None, withheld
        body = {
            "tier": tier_name(tier),
            "start": start_s,
            "values": values,
            "meta": coarse_metadata(self.building),
        }
        return body, withheld

    def _is_lot(self, device: str) -> bool:
        return bool(self._lot.fullmatch(device.rsplit(".", 1)[-1]))

    def _lot_count(self, by_family: dict[str, dict[str, float]]) -> int:
        if self.building.lots:
            return self.building.lots
        devices = {d for fam in by_family.values() for d in fam if self._is_lot(d)}
        return len(devices)

    def _normalised(self, total: float, lots: int, unit: str) -> dict:
        area = self.building.floor_area_m2
        return {
            "unit": unit,
            "per_lot": _significant(total / lots) if lots else None,
            "per_m2": _significant(total / area) if area else None,
        }

    def _noised(self, fam: str, total: float, start_s: int) -> float | Withheld:
        epsilon = self.privacy.noise_epsilon
        if not epsilon:
            return total
        day = start_s // Tier.DAY.value
        if day != self.budget_day:
            self.budget_day, self.budget_spent = day, 0.0
        if self.budget_spent + epsilon > self.privacy.noise_budget_per_day:
            return Withheld(fam, "privacy_budget_spent")
        self.budget_spent += epsilon
        scale = self.privacy.max_lot_share * abs(total) / epsilon
        return max(0.0, total + _laplace(self._rng, scale))


def _significant(value: float) -> float:
    """Six significant digits: enough to compare, less to fingerprint."""
    return float(f"{value:.6g}")


def _laplace(rng: random.Random, scale: float) -> float:
    u = rng.random() - 0.5
    return -scale * math.copysign(1.0, u) * math.log(1 - 2 * abs(u))


def check_body(topic: str, body: Any) -> str | None:
    """The application check for a received aggregate: None if well formed."""
    if not topic.startswith(TOPIC_PREFIX):
        return "unknown_topic"
    tier = topic[len(TOPIC_PREFIX) :]
    if tier not in TIERS or not isinstance(body, dict):
        return "bad_body"
    if set(body) != {"tier", "start", "values", "meta"} or body["tier"] != tier:
        return "bad_body"
    start = body["start"]
    if not isinstance(start, int) or start % TIERS[tier].value:
        return "bad_bucket"
    if not _values_ok(body["values"]) or not _meta_ok(body["meta"]):
        return "bad_body"
    return None


def _values_ok(values: Any) -> bool:
    if not isinstance(values, dict) or not values or len(values) > len(SUMMED):
        return False
    return all(fam in SUMMED and _value_ok(v) for fam, v in values.items())


def _value_ok(value: Any) -> bool:
    if not isinstance(value, dict) or set(value) != {"unit", "per_lot", "per_m2"}:
        return False
    if not isinstance(value["unit"], str) or len(value["unit"]) > 16:
        return False
    return all(
        x is None or (isinstance(x, (int, float)) and 0 <= x <= MAX_VALUE)
        for x in (value["per_lot"], value["per_m2"])
    )


def _meta_ok(meta: Any) -> bool:
    if not isinstance(meta, dict):
        return False
    if set(meta) != {"decade", "lots_band", "region", "heating"}:
        return False
    decade = meta["decade"]
    region = meta["region"]
    return (
        (decade is None or (isinstance(decade, int) and decade % 10 == 0))
        and meta["lots_band"] in {label for _, label in LOT_BANDS}
        and (region is None or bool(re.fullmatch(r"[1-9][0-9]xx", str(region))))
        and meta["heating"] in HEATING_TYPES
    )
