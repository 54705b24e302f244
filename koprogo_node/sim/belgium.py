"""Belgian conventions the simulation follows: local time and tariff periods.

In a Belgian (Fluvius e-MUCS) meter, tariff 1 is the day or peak rate and
tariff 2 the night or off-peak rate: 1-0:1.8.1 counts day import and
1-0:1.8.2 night import (the Netherlands number them the other way round).
The simulated meters use the common bi-hourly schedule: day from 07:00 to
22:00 on weekdays, night otherwise, including all of Saturday and Sunday.
Public holidays are not treated as night here; schedules vary by grid area.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

BRUSSELS = ZoneInfo("Europe/Brussels")

TARIFF_DAY = 1
TARIFF_NIGHT = 2

DAY_START_H = 7
DAY_END_H = 22


def local_time(ts: float) -> datetime:
    """Return the Brussels wall time of a Unix time."""
    return datetime.fromtimestamp(ts, BRUSSELS)


def tariff_at(local: datetime) -> int:
    """Return the tariff (1 day, 2 night) in force at a Brussels wall time."""
    weekday = local.weekday() < 5
    if weekday and DAY_START_H <= local.hour < DAY_END_H:
        return TARIFF_DAY
    return TARIFF_NIGHT
