"""Outdoor temperature and solar output for a building near Brussels.

Both are smooth textbook shapes plus day-to-day weather drawn from the seed;
they drive heating demand and the PV export of a few lots.
"""

from __future__ import annotations

import math
from datetime import datetime

from .draws import between, uniforms

_DAY_S = 86_400

# Uccle normals: about 3 degC in January, 18.5 degC in July.
_MEAN_C = 10.8
_SEASON_AMPLITUDE_C = 7.6
_COLDEST_DAY = 18
_DIURNAL_AMPLITUDE_C = 3.5
_COLDEST_HOUR = 5.0
_ANOMALY_C = 4.0

# Brussels lies 4.35 degrees east: solar noon is 17 minutes before 12:00 UTC.
_SOLAR_NOON_UTC_H = 12.0 - 4.35 / 15.0
_PV_PERFORMANCE_RATIO = 0.8  # inverter, wiring and heat losses


def outdoor_c(seed: int, ts: float, local: datetime) -> float:
    """Return the outdoor temperature in degC at a Unix time."""
    day_of_year = local.timetuple().tm_yday
    season = -math.cos(2 * math.pi * (day_of_year - _COLDEST_DAY) / 365.25)
    hour = local.hour + local.minute / 60
    diurnal = -math.cos(2 * math.pi * (hour - _COLDEST_HOUR) / 24)

    return (
        _MEAN_C
        + _SEASON_AMPLITUDE_C * season
        + _DIURNAL_AMPLITUDE_C * diurnal
        + _weather_anomaly_c(seed, ts)
    )


def _weather_anomaly_c(seed: int, ts: float) -> float:
    """Warm or cold spells: one draw per day, linearly joined."""
    day, into_day = divmod(ts, _DAY_S)
    today = between(uniforms(seed, "weather", int(day))[0], -_ANOMALY_C, _ANOMALY_C)
    tomorrow = between(
        uniforms(seed, "weather", int(day) + 1)[0], -_ANOMALY_C, _ANOMALY_C
    )

    return today + (tomorrow - today) * into_day / _DAY_S


def solar_fraction(seed: int, ts: float, day_of_year: int) -> float:
    """Return PV output as a fraction of peak power (0 at night).

    A bell over the daylight hours, taller and wider in summer, times a
    cloudiness drawn once per day.
    """
    season = math.sin(2 * math.pi * (day_of_year - 80) / 365.25)
    day_length_h = 12.0 + 4.2 * season
    hours_from_noon = (ts % _DAY_S) / 3600 - _SOLAR_NOON_UTC_H
    if abs(hours_from_noon) >= day_length_h / 2:
        return 0.0
    bell = math.cos(math.pi * hours_from_noon / day_length_h) ** 1.5
    clearness = between(uniforms(seed, "clouds", int(ts // _DAY_S))[0], 0.25, 1.0)

    return bell * (0.65 + 0.35 * season) * _PV_PERFORMANCE_RATIO * clearness


def room_temperature_c(seed: int, index: int, ts: float) -> float:
    """Return a slowly drifting indoor temperature, one series per index.

    Cheap on purpose: it feeds the extra gauges a benchmark asks for.
    """
    u = uniforms(seed, "room", index)
    daily = 2 * math.pi * (ts / _DAY_S + u[0])
    wobble = ts / (600.0 + 300.0 * u[1]) + 2 * math.pi * u[2]

    return 19.0 + 3.0 * u[3] + 1.5 * math.sin(daily) + 0.3 * math.sin(wobble)
