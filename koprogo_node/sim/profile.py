"""The household load shape: the BDEW H25 standard load profile.

demandlib builds the profile of a calendar year at 15-minute resolution.
Each year is computed once and kept. pandas and demandlib are imported only
to compute one, so a process that is handed its profiles (`keep_profile`)
never loads them.
"""

from __future__ import annotations

import warnings
from array import array
from datetime import datetime, timedelta

QUARTER_S = 900
_QUARTER = timedelta(seconds=QUARTER_S)

_profiles: dict[int, array] = {}


def compute_year_profile(year: int) -> array:
    """Return the H25 shape of `year`, in kW per kWh of annual consumption.

    One value per local quarter-hour from 1 January 00:00; the values of a
    whole year integrate to exactly 1 kWh.
    """
    import pandas as pd
    from demandlib import bdew

    index = pd.date_range(
        datetime(year, 1, 1), periods=_quarters_in(year), freq="15min"
    )
    # demandlib may reset warning filters process-wide (its ElecSlp turns
    # every warning into an error); catch_warnings puts them back.
    with warnings.catch_warnings():
        values = bdew.H25(index).to_numpy(dtype=float)
    per_kwh = values / (values.sum() * QUARTER_S / 3600)

    return array("d", per_kwh.tolist())


def year_profile(year: int) -> array:
    """Return the H25 shape of `year`, computing it on first use."""
    profile = _profiles.get(year)
    if profile is None:
        profile = _profiles[year] = compute_year_profile(year)
    return profile


def has_profile(year: int) -> bool:
    """Whether the shape of `year` is at hand."""
    return year in _profiles


def keep_profile(year: int, profile: array) -> None:
    """Keep a shape computed elsewhere (e.g. in a child process)."""
    if len(profile) != _quarters_in(year):
        raise ValueError(f"a profile of {year} has {_quarters_in(year)} values")
    _profiles[year] = profile


def profile_bytes(year: int) -> int:
    """Return the size of a year's profile as native doubles."""
    return _quarters_in(year) * array("d").itemsize


def household_kw(local: datetime, shift_quarters: int = 0) -> float:
    """Return the H25 power per annual kWh at a local wall time.

    `shift_quarters` moves the household's day earlier or later; the shift
    wraps around within the same year, so no other year is ever computed.
    """
    profile = year_profile(local.year)
    start = datetime(local.year, 1, 1)
    index = (local.replace(tzinfo=None) - start) // _QUARTER + shift_quarters

    return profile[index % len(profile)]


def _quarters_in(year: int) -> int:
    return (datetime(year + 1, 1, 1) - datetime(year, 1, 1)) // _QUARTER
