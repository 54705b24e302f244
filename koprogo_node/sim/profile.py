"""The household load shape: the BDEW H25 standard load profile.

demandlib builds the profile for a calendar year at 15-minute resolution. It
is computed once per year and cached; pandas and demandlib are imported only
then, so importing the simulation stays cheap.
"""

from __future__ import annotations

import functools
import warnings
from datetime import datetime, timedelta

QUARTER_S = 900
_QUARTER = timedelta(seconds=QUARTER_S)


@functools.lru_cache(maxsize=3)
def year_profile(year: int) -> tuple[float, ...]:
    """Return the H25 shape of `year`, in kW per kWh of annual consumption.

    One value per local quarter-hour from 1 January 00:00; the values of a
    whole year integrate to exactly 1 kWh.
    """
    import pandas as pd
    from demandlib import bdew

    quarters = (datetime(year + 1, 1, 1) - datetime(year, 1, 1)) // _QUARTER
    index = pd.date_range(datetime(year, 1, 1), periods=quarters, freq="15min")
    # demandlib may reset warning filters process-wide (its ElecSlp turns
    # every warning into an error); catch_warnings puts them back.
    with warnings.catch_warnings():
        values = bdew.H25(index).to_numpy(dtype=float)
    per_kwh = values / (values.sum() * QUARTER_S / 3600)

    return tuple(per_kwh.tolist())


def household_kw(local: datetime, shift_quarters: int = 0) -> float:
    """Return the H25 power per annual kWh at a local (naive) wall time.

    `shift_quarters` moves the household's day earlier or later; the shift
    wraps around within the same year, so no other year is ever computed.
    """
    profile = year_profile(local.year)
    start = datetime(local.year, 1, 1)
    index = (local.replace(tzinfo=None) - start) // _QUARTER + shift_quarters

    return profile[index % len(profile)]
