"""`/api/v1/settings`: tariffs and leak thresholds an admin may change live.

Changes are kept in DATA_DIR/settings.json, over the values of the config
file, applied to the running detectors at once and on every start, and
recorded in the ledger as admin actions.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

from aiohttp import web

from ..detect.alerts import Tariff
from ..errors import ConfigError
from ..files import replace_file
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


class SettingsError(ConfigError):
    """A settings change names an unknown field or a value out of range."""


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


def load(data_dir: Path) -> dict:
    """Saved changes; a damaged file is reported, not silently dropped."""
    path = Path(data_dir) / FILE
    if not path.exists():
        return {}
    try:
        return checked(json.loads(path.read_text()))
    except (ValueError, SettingsError) as exc:
        raise SettingsError(f"{path}: {exc}; fix or remove the file") from None


def add_routes(app: web.Application, view_key: web.AppKey) -> None:
    """GET and PUT /api/v1/settings."""

    async def show(request: web.Request) -> web.Response:
        detection = request.app[view_key].detection
        if detection is None:
            return web.json_response({"error": "detection is off"}, status=503)
        return web.json_response(current(detection))

    async def change(request: web.Request) -> web.Response:
        view = request.app[view_key]
        if view.detection is None:
            return web.json_response({"error": "detection is off"}, status=503)
        try:
            values = checked(await request.json())
        except SettingsError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        except ValueError:
            return web.json_response({"error": "the body is not JSON"}, status=400)
        saved = {**load(view.data_dir), **values}
        replace_file(Path(view.data_dir) / FILE, json.dumps(saved, indent=1))
        apply(view.detection, values)
        record_admin_action(request, view_key, "change_settings", "detection", **values)
        return web.json_response(current(view.detection))

    app.add_routes(
        [web.get("/api/v1/settings", show), web.put("/api/v1/settings", change)]
    )
