"""`/api/v1/settings`: what an admin may change live on the dashboard.

Tariffs and leak thresholds, and per meter a label shown on the pages and
whether the detectors watch it. Changes are kept in DATA_DIR/settings.json,
over the values of the config file, applied to the running node at once and
on every start, and recorded in the ledger as admin actions. Which meters
exist stays in the config file: a meter is a driver's channel, not a setting.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from aiohttp import web

from ..detect.alerts import Tariff
from ..errors import ConfigError
from ..files import replace_file
from ..ledger import query
from .auth import record_admin_action

FILE = "settings.json"
# name: (group, lowest, highest, what it is)
FIELDS = {
    "electricity_eur_per_kwh": ("tariffs", 0.0, 10.0, "electricity, € per kWh"),
    "water_eur_per_m3": ("tariffs", 0.0, 100.0, "water and sewerage, € per m³"),
    "night_floor_l_h": ("thresholds", 0.1, 1000.0, "smallest night flow, L/h"),
    "burst_floor_l_h": ("thresholds", 1.0, 100_000.0, "smallest burst flow, L/h"),
    "min_history_days": ("thresholds", 1, 365, "days of history before arming"),
}


MAX_LABEL = 60
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
SAVED = web.AppKey("saved_settings", object)


class SettingsError(ConfigError):
    """A settings change names an unknown field or a value out of range."""


@dataclass
class Saved:
    """What settings.json holds: detector values, and per-meter choices."""

    values: dict = field(default_factory=dict)
    meters: dict[str, dict] = field(default_factory=dict)

    def label(self, meter: str) -> str:
        """The meter's label, or its channel name when it has none."""
        return self.meters.get(meter, {}).get("label") or meter

    def unwatched(self) -> set[str]:
        """Meters the detectors leave alone."""
        return {name for name, m in self.meters.items() if m.get("watched") is False}

    def as_json(self) -> str:
        return json.dumps({**self.values, "meters": self.meters}, indent=1)


def current(detection) -> dict:
    """The values in force, grouped as the API shows them."""
    values = {
        "electricity_eur_per_kwh": detection.book.tariff.eur_per_kwh,
        "water_eur_per_m3": detection.book.tariff.eur_per_m3_water,
        "night_floor_l_h": detection.water.floor_l_h,
        "burst_floor_l_h": detection.water.burst_floor_l_h,
        "min_history_days": detection.water.min_history_days,
    }
    grouped: dict[str, dict] = {"tariffs": {}, "thresholds": {}}
    for name, value in values.items():
        grouped[FIELDS[name][0]][name] = value
    return grouped


def checked(change: object) -> dict:
    """The change as {field: value}, or SettingsError saying what is wrong."""
    if not isinstance(change, dict) or not change:
        raise SettingsError("expected a JSON object of settings to change")
    clean = {}
    for name, value in change.items():
        if name not in FIELDS:
            raise SettingsError(f"unknown setting {name!r}; known: {', '.join(FIELDS)}")
        _, low, high, what = FIELDS[name]
        number_ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not number_ok or not math.isfinite(value) or not low <= value <= high:
            raise SettingsError(f"{name} ({what}) must be between {low} and {high}")
        if isinstance(low, int) and not float(value).is_integer():
            raise SettingsError(f"{name} ({what}) must be a whole number")
        clean[name] = int(value) if isinstance(low, int) else float(value)
    return clean


def checked_meter(change: object) -> dict:
    """A meter's change as {"label"?, "watched"?}, or SettingsError."""
    if not isinstance(change, dict) or not change:
        raise SettingsError('expected {"label": string, "watched": true|false}')
    unknown = sorted(set(change) - {"label", "watched"})
    if unknown:
        raise SettingsError(f"unknown meter setting(s): {', '.join(unknown)}")
    label = change.get("label", "")
    if not isinstance(label, str) or len(label) > MAX_LABEL:
        raise SettingsError(f"label must be a string of at most {MAX_LABEL} characters")
    if CONTROL.search(label):
        raise SettingsError("label must not hold control characters")
    if not isinstance(change.get("watched", True), bool):
        raise SettingsError("watched must be true or false")
    return {**change, "label": label.strip()} if "label" in change else dict(change)


def apply(detection, values: dict) -> None:
    """Put values in force on the running detectors."""
    tariff = detection.book.tariff
    detection.book.tariff = Tariff(
        eur_per_kwh=values.get("electricity_eur_per_kwh", tariff.eur_per_kwh),
        eur_per_m3_water=values.get("water_eur_per_m3", tariff.eur_per_m3_water),
    )
    water = detection.water
    detection.water = replace(
        water,
        floor_l_h=values.get("night_floor_l_h", water.floor_l_h),
        burst_floor_l_h=values.get("burst_floor_l_h", water.burst_floor_l_h),
        min_history_days=values.get("min_history_days", water.min_history_days),
    )


def apply_meters(detection, saved: Saved) -> None:
    """Tell the running detectors which meters to leave alone."""
    detection.unwatched = saved.unwatched()


def load(data_dir: Path) -> Saved:
    """Saved changes; a damaged file is reported, not silently dropped."""
    path = Path(data_dir) / FILE
    if not path.exists():
        return Saved()
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            raise SettingsError("expected a JSON object")
        meters = data.pop("meters", {})
        if not isinstance(meters, dict):
            raise SettingsError("meters must be an object of meter settings")
        return Saved(
            checked(data) if data else {},
            {str(name): checked_meter(m) for name, m in meters.items()},
        )
    except (ValueError, SettingsError) as exc:
        raise SettingsError(f"{path}: {exc}; fix or remove the file") from None


def add_routes(app: web.Application, view_key: web.AppKey, in_ledger) -> None:
    """GET and PUT /api/v1/settings, PUT /api/v1/settings/meters/{name}."""
    app[SAVED] = load(app[view_key].data_dir)

    def shown(view) -> dict:
        return {**current(view.detection), "meters": app[SAVED].meters}

    async def show(request: web.Request) -> web.Response:
        view = request.app[view_key]
        if view.detection is None:
            return web.json_response({"error": "detection is off"}, status=503)
        return web.json_response(shown(view))

    async def change(request: web.Request) -> web.Response:
        view = request.app[view_key]
        if view.detection is None:
            return web.json_response({"error": "detection is off"}, status=503)
        values = checked(await _json(request))
        saved = app[SAVED]
        saved.values.update(values)
        replace_file(Path(view.data_dir) / FILE, saved.as_json())
        apply(view.detection, values)
        record_admin_action(request, view_key, "change_settings", "detection", **values)
        return web.json_response(shown(view))

    async def change_meter(request: web.Request) -> web.Response:
        view = request.app[view_key]
        name = request.match_info["name"]
        meter = checked_meter(await _json(request))
        if name not in await in_ledger(request, query.sensor_names):
            error = {"error": f"no meter {name}; see /api/v1/sensors"}
            return web.json_response(error, status=404)
        saved = app[SAVED]
        saved.meters[name] = {**saved.meters.get(name, {}), **meter}
        replace_file(Path(view.data_dir) / FILE, saved.as_json())
        if view.detection is not None:
            apply_meters(view.detection, saved)
        record_admin_action(request, view_key, "change_meter", name, **meter)
        return web.json_response({"name": name, **saved.meters[name]})

    app.add_routes(
        [
            web.get("/api/v1/settings", show),
            web.put("/api/v1/settings", change),
            web.put("/api/v1/settings/meters/{name}", change_meter),
        ]
    )


async def _json(request: web.Request) -> object:
    try:
        return await request.json()
    except ValueError:
        raise SettingsError("the body is not JSON") from None
