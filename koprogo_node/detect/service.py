"""Detection inside the daemon: rules and models on the ledger's hourly data.

Every `alerts.check_every_s` the service reads each meter's hourly
consumption (closed hourly rollups) for the last weeks, learns the meter's
thresholds from all but the most recent days, and runs the armed rules on the
recent days; the water-leak model scores the last 24 hours of each water
meter, off the event loop. Findings still ongoing go to the `AlertBook`,
whose transitions are chained in the ledger as events, logged, and kept in
`feed` for the API and the MQTT publisher.

An apartment's own meter (`federation.privacy.lot_pattern`) is checked for
faults only (a stuck counter); its consumption habits are nobody's business,
so profile rules run on building and common meters alone.

Rules read local wall-clock time (night hours are Brussels nights): stamps
are shifted to local time before the rules and back after. Around a change
to or from summer time an alert's start may be off by an hour.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Callable
from zoneinfo import ZoneInfo

import numpy as np
import structlog

from ..config.model import Config
from ..core.channels import family
from ..core.rollups import Tier
from ..ledger import query
from ..ledger.writer import LedgerWriter
from . import alert_log
from .alerts import Alert, AlertBook, AlertError, Tariff
from .calibrate import (
    WaterSettings,
    calibrate_water,
    day_windows,
    model_threshold,
    profile_armed,
    water_rules,
    weekday_hour_profile,
)
from .features import LEAK_HOURS, leak_features
from .rules import Finding, ProfileDeviation, StuckMeter, explained
from .series import HOUR_S, Grid, Series, clean, to_grid

log = structlog.get_logger(__name__)

LOCAL = ZoneInfo("Europe/Brussels")
HISTORY_DAYS = 35
RECENT_DAYS = 2  # kept out of calibration: longer than every rule's delay
LITRES = {"m3": 1000.0, "L": 1.0, "l": 1.0}
ENERGY = ("electricity_import", "gas", "heat")
CHECK_POLL_S = 1.0


class DetectionService:
    """Runs the detectors until cancelled; `feed` holds every alert's state."""

    def __init__(
        self, config: Config, data_dir: Path, writer: LedgerWriter, clock
    ) -> None:
        alerts = config.alerts
        self.config = config
        self.data_dir = data_dir
        self.writer = writer
        self.clock = clock
        self.book = AlertBook(
            tariff=Tariff(
                eur_per_m3_water=alerts.water_eur_per_m3,
                eur_per_kwh=alerts.electricity_eur_per_kwh,
            )
        )
        self.water = WaterSettings(min_history_days=alerts.water_min_history_days)
        self.feed: dict[str, dict] = {}
        self.model = None
        self.model_problem: str | None = None
        self.checks = 0
        self.on_change: Callable[[str, dict], None] | None = None  # webhooks
        self._lot = re.compile(config.federation.privacy.lot_pattern)
        self.failing: str | None = None
        self.unwatched: set[str] = set()  # meters an admin took off the watch

    async def start(self) -> None:
        """Take back stored alerts and load the water-leak model."""
        stored = await asyncio.to_thread(_stored_alerts, self.writer.path)
        self.book.restore([Alert.from_dict(a) for a in stored.values()])
        self.feed.update(stored)
        if self.config.alerts.models:
            self._load_model()

    async def run(self) -> None:
        """Check on schedule."""
        every = self.config.alerts.check_every_s
        next_check = 0.0
        while True:
            if time.monotonic() >= next_check:
                next_check = time.monotonic() + every
                await self._check_logged()
            await asyncio.sleep(min(CHECK_POLL_S, every))

    async def _check_logged(self) -> None:
        """Run a check; a failure is logged once and retried at the next one."""
        try:
            await self.check()
        except Exception as exc:  # one bad pass must not stop leak detection
            if self.failing is None:
                log.error("detection_failed", error=repr(exc), exc_info=exc)
            self.failing = repr(exc)
            return
        if self.failing is not None:
            log.info("detection_recovered", after=self.failing)
            self.failing = None

    async def check(self) -> list:
        """One pass of every detector; return the transitions it caused."""
        now = self.clock.stamp().ts
        meters = await asyncio.to_thread(
            _hourly_series, self.writer.path, now - HISTORY_DAYS * 86_400
        )
        findings: list[Finding] = []
        for sensor, (fam, series) in meters.items():
            if sensor in self.unwatched:
                continue
            findings += self._run_rules(sensor, fam, series, now)
            if fam == "water" and self.model is not None:
                findings += await self._run_model(sensor, series, now)
        transitions = self.book.feed(findings, now)
        for transition in transitions:
            self._record(f"alert_{transition.event}", transition.alert)
        for alert in self.book.open_alerts():  # latest evidence, for the API
            self.feed[alert.id] = alert.as_dict()
        self.checks += 1
        return transitions

    def summary(self) -> dict:
        """Counters for status pages."""
        return {
            "checks": self.checks,
            "active_alerts": len(self.book.open_alerts()),
            "model": "loaded" if self.model else (self.model_problem or "off"),
            "failing": self.failing,
        }

    # rules and model

    def _run_rules(
        self, sensor: str, fam: str, series: Series, now: float
    ) -> list[Finding]:
        series, _ = clean(series)
        grid = to_grid(_to_local(series))
        if len(grid.values) == 0:
            return []
        split = min(
            max(0, len(grid.values) - RECENT_DAYS * 24),
            self._first_open_cell(sensor, grid),
        )
        history = grid.slice(0, split)
        rules = [StuckMeter(window_h=72, unit=grid.unit)] if _moves(history) else []
        if fam == "water":
            rules += water_rules(calibrate_water(history, self.water), self.water)
        elif fam in ENERGY and not self._is_lot(sensor):
            profile = weekday_hour_profile(history)
            if profile_armed(profile):
                rules.append(ProfileDeviation(profile=profile))
        # Rules see the whole grid (some compare with weeks past); only
        # problems still going on at its last cell are reported.
        found = [f for rule in rules for f in rule.findings(grid, sensor)]
        return [_to_utc(f) for f in found if _ongoing(f, float(grid.ts[-1]))]

    def _is_lot(self, sensor: str) -> bool:
        """One apartment's meter: watched for faults, never for its habits."""
        device = sensor.rsplit(".", 1)[0].rsplit(".", 1)[-1]
        return bool(self._lot.fullmatch(device))

    def _first_open_cell(self, sensor: str, grid: Grid) -> int:
        """Where this meter's oldest open problem starts: calibration stops there,
        so thresholds never learn an ongoing leak as normal."""
        starts = [a.start_ts for a in self.book.open_alerts() if a.sensor == sensor]
        if not starts:
            return len(grid.values)
        local = min(starts) + _offset_s(min(starts))
        return int(np.searchsorted(grid.ts, local))

    async def _run_model(
        self, sensor: str, series: Series, now: float
    ) -> list[Finding]:
        grid = to_grid(_to_local(clean(series)[0]))
        windows = day_windows(grid.values, LEAK_HOURS)
        if len(windows) <= RECENT_DAYS * 24 or not np.isfinite(windows[-1]).all():
            return []
        scores = await self.model.score_async(leak_features(windows))
        threshold = model_threshold(scores[: -RECENT_DAYS * 24])
        probability = float(scores[-1])
        if threshold is None or probability < threshold:
            return []
        litres = windows[-1]
        night = float(np.min(litres))
        return [
            Finding(
                kind="water_leak_model",
                sensor=sensor,
                start_ts=float(grid.ts[-LEAK_HOURS]),
                detected_ts=float(grid.ts[-1]),
                end_ts=None,
                expected=round(threshold, 3),
                observed=round(probability, 3),
                unit="probability",
                severity="medium",  # one of the three every alert uses
                litres_per_hour=night,
                **explained(
                    "The water-leak model recognises the pattern of a constant"
                    " leak in the last 24 hours of this meter."
                ),
            )
        ]

    def _load_model(self) -> None:
        from .onnx_runner import ModelRunner

        key = self.config.alerts.release_key or None
        try:
            self.model = ModelRunner.from_manifest("water_leak", release_public_key=key)
        except Exception as exc:  # a bad file must not stop leak rules
            self.model_problem = str(exc)
            log.error("model_refused", model="water_leak", error=str(exc))

    # people's requests and the record

    def apply(self, request: dict) -> dict:
        """Acknowledge, resolve or annotate an alert on a person's request."""
        action, alert_id = request.get("action"), str(request.get("id"))
        note = str(request.get("note") or "")[:500]
        by = str(request.get("by") or "")[:64]
        change = {
            "acknowledge": self.book.acknowledge,
            "resolve": self.book.resolve,
            "note": self.book.add_note,
        }.get(action)
        if change is None:
            return {"ok": False, "error": f"unknown action {action!r}"}
        try:
            alert = change(alert_id, note, by)
        except AlertError as exc:
            return {"ok": False, "error": str(exc)}
        self._record(RECORDED_AS[action], alert)
        return {"ok": True, "alert": alert.as_dict()}

    def _record(self, kind: str, alert: Alert) -> None:
        detail = alert.as_dict()
        self.writer.record_event(kind, alert.sensor, detail)
        self.feed[alert.id] = detail
        if self.on_change is not None:
            self.on_change(kind, detail)
        log.info(
            kind,
            alert=alert.id,
            severity=alert.severity,
            state=alert.state,
            **alert.estimate,
        )


RECORDED_AS = {
    "acknowledge": "alert_acknowledged",
    "resolve": "alert_resolved",
    "note": "alert_noted",
}


def _stored_alerts(db_path: Path) -> dict[str, dict]:
    conn = query.open_reader(db_path)
    try:
        return alert_log.fold(query.events(conn, alert_log.EVENT_PREFIX))
    finally:
        conn.close()


def _hourly_series(db_path: Path, since_s: float) -> dict[str, tuple[str, Series]]:
    """Per metered sensor: its family and hourly consumption since `since_s`."""
    conn = query.open_reader(db_path)
    try:
        rows = query.rollup_totals(conn, Tier.HOUR, int(since_s))
    finally:
        conn.close()
    grouped: dict[str, list] = {}
    units: dict[str, str] = {}
    for name, unit, start_s, total in rows:
        if family(name) in ("water", *ENERGY):
            grouped.setdefault(name, []).append((start_s + HOUR_S, total))
            units[name] = unit
    out = {}
    for name, points in grouped.items():
        ts, values = np.array(points, dtype=float).T
        fam = family(name)
        if fam == "water":
            values = values * LITRES.get(units[name], 1.0)
        unit = "L" if fam == "water" else units[name]
        out[name] = (fam, Series.from_values(ts, values, unit=unit))
    return out


def _moves(history: Grid) -> bool:
    """Whether the counter normally moves: consumption in most observed hours."""
    observed = history.values[np.isfinite(history.values)]
    return len(observed) >= 72 and float(np.mean(observed > 0)) > 0.5


def _ongoing(finding: Finding, last_ts: float) -> bool:
    return finding.end_ts is None or finding.end_ts >= last_ts


def _offset_s(ts: float) -> float:
    return datetime.fromtimestamp(ts, LOCAL).utcoffset().total_seconds()


def _to_local(series: Series) -> Series:
    """Stamps as Brussels wall-clock seconds, the way the rules read them."""
    shift = np.array([_offset_s(t) for t in series.ts])
    return replace(series, ts=series.ts + shift)


def _to_utc(finding: Finding) -> Finding:
    def back(ts: float | None) -> float | None:
        return None if ts is None else ts - _offset_s(ts)

    return replace(
        finding,
        start_ts=back(finding.start_ts),
        detected_ts=back(finding.detected_ts),
        end_ts=back(finding.end_ts),
    )
