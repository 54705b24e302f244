"""Alerts and their life cycle: one open alert per ongoing problem.

`AlertBook` is a pure state machine. Each `feed` gives it the findings seen at
`now_ts`; it answers with transitions. A problem is keyed by (problem,
sensor), where rules that see the same problem share it (`PROBLEMS`). The
first finding opens an alert; later ones move `last_ts` on and report
"updated" only when the severity or the loss estimate changes markedly. Once
no finding has come for `hold_off_s` the alert is resolved; a finding after
that opens a new alert.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from koprogo_node.detect.rules import Finding

OPEN = "open"
ACKNOWLEDGED = "acknowledged"
RESOLVED = "resolved"
STATES = (OPEN, ACKNOWLEDGED, RESOLVED)


# Rules that see the same problem from different angles share one alert.
PROBLEMS = {
    "continuous_flow": "water_leak",
    "sustained_flow": "water_leak",
    "night_flow": "water_leak",
    "water_leak_model": "water_leak",
    "burst": "water_burst",
    "span_burst": "water_burst",
}


def problem_of(kind: str) -> str:
    """The problem a rule's finding is about (its own kind if alone)."""
    return PROBLEMS.get(kind, kind)


class AlertError(Exception):
    """Raised when an alert id is unknown or a transition is not allowed."""


@dataclass(frozen=True, kw_only=True)
class Tariff:
    """Prices used to turn losses into euros per day."""

    eur_per_m3_water: float = 5.0
    eur_per_kwh: float = 0.30


@dataclass(frozen=True, kw_only=True)
class Alert:
    """One problem as shown to co-owners, with its evidence and cost."""

    id: str
    kind: str
    sensor: str
    severity: str
    start_ts: float
    last_ts: float
    evidence: dict[str, Any]
    estimate: dict[str, float]
    state: str = OPEN
    note: str = ""
    # What people wrote about it: {"ts", "by", "text"}, oldest first.
    notes: tuple[dict[str, Any], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """Return the stable JSON form."""
        return {**asdict(self), "notes": [dict(n) for n in self.notes]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Alert:
        """Rebuild an alert from `as_dict` output."""
        if data.get("state") not in STATES:
            raise AlertError(f"alert state must be one of {STATES}, got {data!r}")
        return cls(**{**data, "notes": tuple(data.get("notes", ()))})


@dataclass(frozen=True)
class Transition:
    """What happened to an alert: opened, updated or resolved."""

    event: str
    alert: Alert


def _with_note(alert: Alert, note: str, by: str) -> Alert:
    """The alert with `note` appended (and kept as the latest), if any."""
    if not note.strip():
        return alert
    entry = {"ts": round(time.time(), 3), "by": by, "text": note.strip()}
    return replace(alert, note=note.strip(), notes=(*alert.notes, entry))


def estimate(finding: Finding, tariff: Tariff) -> dict[str, float]:
    """Loss rate of a finding and its cost in euros per day."""
    if finding.litres_per_hour is not None:
        per_day = finding.litres_per_hour * 24 / 1000 * tariff.eur_per_m3_water
        return {
            "litres_per_hour": round(finding.litres_per_hour, 2),
            "euros_per_day": round(per_day, 2),
        }
    if finding.kwh_per_day is not None:
        return {
            "kwh_per_day": round(finding.kwh_per_day, 2),
            "euros_per_day": round(finding.kwh_per_day * tariff.eur_per_kwh, 2),
        }
    return {}


RECORD_CHANGE = 0.25  # an estimate moving by more than this is recorded again


def _moved(before: Alert, after: Alert) -> bool:
    """Whether the loss estimate changed enough to be worth a new record."""
    for key in ("litres_per_hour", "kwh_per_day"):
        old, new = before.estimate.get(key), after.estimate.get(key)
        if old is not None and new is not None:
            return abs(new - old) > RECORD_CHANGE * max(abs(old), 1e-9)
    return False


def _evidence(finding: Finding) -> dict[str, Any]:
    """Expected and observed values as shown to co-owners."""
    return {
        "expected": finding.expected,
        "observed": finding.observed,
        "unit": finding.unit,
        "explanation": finding.explanation,
        "explanation_template": finding.explanation_template,
        "explanation_values": dict(finding.explanation_values),
    }


@dataclass
class AlertBook:
    """Alerts kept per problem; feed it findings, read back transitions."""

    hold_off_s: float = 24 * 3600.0
    tariff: Tariff = field(default_factory=Tariff)
    alerts: dict[str, Alert] = field(default_factory=dict)
    _active: dict[tuple[str, str], str] = field(
        default_factory=dict, init=False, repr=False
    )

    def feed(self, findings: list[Finding], now_ts: float) -> list[Transition]:
        """Apply the findings seen at `now_ts`; return what changed."""
        transitions = [self._apply(f, now_ts) for f in findings]
        transitions += self._resolve_quiet(now_ts)
        return [t for t in transitions if t is not None]

    def restore(self, alerts: list[Alert]) -> None:
        """Take back alerts stored earlier (after a restart), in their states."""
        for alert in alerts:
            self.alerts[alert.id] = alert
            if alert.state != RESOLVED:
                self._active[(problem_of(alert.kind), alert.sensor)] = alert.id

    def open_alerts(self) -> list[Alert]:
        """Alerts not yet resolved."""
        return [self.alerts[alert_id] for alert_id in self._active.values()]

    def acknowledge(self, alert_id: str, note: str = "", by: str = "") -> Alert:
        """Mark an open alert as seen by a person."""
        alert = self._get(alert_id)
        if alert.state != OPEN:
            raise AlertError(f"alert {alert_id} is {alert.state}, only open ones ack")
        alert = _with_note(alert, note, by)
        return self._store(replace(alert, state=ACKNOWLEDGED))

    def resolve(self, alert_id: str, note: str = "", by: str = "") -> Alert:
        """Close an alert by hand, for instance after a repair."""
        alert = self._get(alert_id)
        if alert.state == RESOLVED:
            raise AlertError(f"alert {alert_id} is already resolved")
        del self._active[(problem_of(alert.kind), alert.sensor)]
        alert = _with_note(alert, note, by)
        return self._store(replace(alert, state=RESOLVED))

    def add_note(self, alert_id: str, note: str, by: str = "") -> Alert:
        """Keep what a person wrote about an alert, in any state."""
        if not note.strip():
            raise AlertError("a note needs some text")
        return self._store(_with_note(self._get(alert_id), note, by))

    def _get(self, alert_id: str) -> Alert:
        """Return an alert by id, or raise AlertError."""
        try:
            return self.alerts[alert_id]
        except KeyError:
            raise AlertError(f"no alert with id {alert_id!r}") from None

    def _store(self, alert: Alert) -> Alert:
        """Keep the new version of an alert."""
        self.alerts[alert.id] = alert
        return alert

    def _apply(self, finding: Finding, now_ts: float) -> Transition | None:
        """Open an alert for a new problem or extend the ongoing one."""
        key = (problem_of(finding.kind), finding.sensor)
        seen_ts = now_ts if finding.end_ts is None else finding.end_ts
        alert_id = self._active.get(key)
        if alert_id is None:
            alert = self._open(finding, seen_ts)
            self._active[key] = alert.id
            return Transition("opened", alert)
        current = self.alerts[alert_id]
        updated = self._store(
            replace(
                current,
                last_ts=max(current.last_ts, seen_ts),
                severity=finding.severity,
                evidence=_evidence(finding),
                estimate=estimate(finding, self.tariff),
            )
        )
        if updated.severity != current.severity or _moved(current, updated):
            return Transition("updated", updated)
        return None

    def _open(self, finding: Finding, seen_ts: float) -> Alert:
        """Create the alert for a finding; its id is stable for the same input."""
        alert_id = f"{finding.kind}:{finding.sensor}:{int(finding.start_ts)}"
        while alert_id in self.alerts:
            alert_id += "+"
        return self._store(
            Alert(
                id=alert_id,
                kind=finding.kind,
                sensor=finding.sensor,
                severity=finding.severity,
                start_ts=finding.start_ts,
                last_ts=seen_ts,
                evidence=_evidence(finding),
                estimate=estimate(finding, self.tariff),
            )
        )

    def _resolve_quiet(self, now_ts: float) -> list[Transition]:
        """Resolve alerts whose problem has not been seen for the hold-off."""
        transitions = []
        for key, alert_id in list(self._active.items()):
            alert = self.alerts[alert_id]
            if now_ts - alert.last_ts >= self.hold_off_s:
                del self._active[key]
                resolved = self._store(replace(alert, state=RESOLVED))
                transitions.append(Transition("resolved", resolved))
        return transitions
