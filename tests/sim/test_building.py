"""The simulated building: determinism, registers, tariffs, water, heating."""

from __future__ import annotations

from datetime import datetime

import pytest

from koprogo_node.sim import BRUSSELS, Building, BuildingSpec, tariff_at
from koprogo_node.sim.profile import QUARTER_S, household_kw, year_profile

HOUR_S = 3600


def at(*fields: int) -> float:
    """Return the Unix time of a Brussels wall time."""
    return datetime(*fields, tzinfo=BRUSSELS).timestamp()


def registers(building: Building) -> list[float]:
    """Every cumulative register of the building, in a fixed order."""
    snap = building.snapshot()
    values = [snap.water_m3, snap.gas_m3, snap.heat_gj]
    for meter in (snap.common, *snap.lots):
        values += [*meter.import_kwh, *meter.export_kwh]
    return values


def test_year_profile_integrates_to_one_kwh() -> None:
    """The cached H25 shape holds one value per quarter and sums to 1 kWh."""
    profile = year_profile(2025)

    assert len(profile) == 365 * 96
    assert sum(profile) * QUARTER_S / HOUR_S == pytest.approx(1.0)


def test_household_draws_more_in_the_evening_than_before_dawn() -> None:
    """The H25 shape has its evening peak above its night trough."""
    evening = household_kw(datetime(2025, 1, 14, 19, 0))
    night = household_kw(datetime(2025, 1, 14, 3, 0))

    assert evening > 2 * night


def test_same_seed_gives_the_same_building() -> None:
    """Two buildings from one spec have the same lots and the same registers."""
    spec = BuildingSpec(lots=6, seed=42, start_ts=at(2025, 3, 3))
    first, second = Building(spec), Building(spec)

    first.advance(spec.start_ts + 6 * HOUR_S)
    second.advance(spec.start_ts + 6 * HOUR_S)

    assert first.lots == second.lots
    assert first.snapshot() == second.snapshot()


def test_registers_do_not_depend_on_the_step_size() -> None:
    """One 6-hour step and 7-second steps reach the same registers."""
    spec = BuildingSpec(
        lots=4,
        seed=7,
        start_ts=at(2025, 3, 3, 5, 0),
        water_leak_l_per_h=20.0,
        water_leak_start_h=2.5,
    )
    coarse, fine = Building(spec), Building(spec)
    end = spec.start_ts + 6 * HOUR_S

    coarse.advance(end)
    for ts in range(int(spec.start_ts), int(end), 7):
        fine.advance(ts)
    fine.advance(end)

    assert registers(fine) == pytest.approx(registers(coarse), rel=1e-9)


def test_another_seed_gives_other_lots() -> None:
    """Changing the seed changes the lots' annual consumption."""
    start = at(2025, 3, 3)
    one = Building(BuildingSpec(lots=5, seed=1, start_ts=start))
    two = Building(BuildingSpec(lots=5, seed=2, start_ts=start))

    assert [lot.annual_kwh for lot in one.lots] != [lot.annual_kwh for lot in two.lots]


def test_lots_consume_a_belgian_household_amount() -> None:
    """Each lot's annual consumption lies in 1,500-4,500 kWh, no two alike."""
    building = Building(BuildingSpec(lots=20, seed=3, start_ts=at(2025, 3, 3)))
    annual = [lot.annual_kwh for lot in building.lots]

    assert all(1500 <= kwh <= 4500 for kwh in annual)
    assert len(set(annual)) == 20


def test_a_few_lots_have_pv() -> None:
    """One lot in four has PV, at least one."""
    building = Building(BuildingSpec(lots=12, seed=3, start_ts=at(2025, 3, 3)))

    assert sum(1 for lot in building.lots if lot.pv_kwp > 0) == 3


def test_counters_never_decrease() -> None:
    """Over two days in 5-minute steps no register ever goes back."""
    spec = BuildingSpec(lots=5, seed=11, start_ts=at(2025, 6, 20))
    building = Building(spec)
    previous = registers(building)

    for step in range(1, 2 * 24 * 12 + 1):
        building.advance(spec.start_ts + step * 300)
        current = registers(building)
        assert all(now >= before for now, before in zip(current, previous))
        previous = current


def test_pv_lots_export_at_midday_in_summer() -> None:
    """On a June day the PV lots' export registers move; the others' do not."""
    spec = BuildingSpec(lots=8, seed=5, start_ts=at(2025, 6, 16, 6, 0))
    building = Building(spec)
    before = building.snapshot()

    after = building.advance(at(2025, 6, 16, 20, 0))

    for traits, old, new in zip(building.lots, before.lots, after.lots):
        exported = sum(new.export_kwh) - sum(old.export_kwh)
        assert (exported > 0.1) == (traits.pv_kwp > 0)


@pytest.mark.parametrize(
    ("wall", "tariff"),
    [
        (datetime(2025, 1, 14, 6, 59), 2),  # Tuesday before 07:00
        (datetime(2025, 1, 14, 7, 0), 1),
        (datetime(2025, 1, 14, 21, 59), 1),
        (datetime(2025, 1, 14, 22, 0), 2),
        (datetime(2025, 1, 18, 12, 0), 2),  # Saturday
        (datetime(2025, 1, 19, 12, 0), 2),  # Sunday
    ],
)
def test_tariff_1_is_weekday_daytime(wall: datetime, tariff: int) -> None:
    """Tariff 1 (day) runs 07:00-22:00 on weekdays; all else is tariff 2."""
    assert tariff_at(wall.replace(tzinfo=BRUSSELS)) == tariff


@pytest.mark.parametrize(
    ("start", "counting", "idle"),
    [
        (at(2025, 1, 14, 9, 0), 0, 1),  # weekday morning: day register
        (at(2025, 1, 14, 23, 0), 1, 0),  # weekday night: night register
        (at(2025, 1, 18, 11, 0), 1, 0),  # Saturday: night register
    ],
)
def test_import_lands_on_the_register_of_the_hour(
    start: float, counting: int, idle: int
) -> None:
    """An hour of import adds to one tariff register and leaves the other."""
    building = Building(BuildingSpec(lots=3, seed=2, start_ts=start))
    before = building.snapshot()

    after = building.advance(start + HOUR_S)

    for old, new in zip(before.lots, after.lots):
        assert new.import_kwh[counting] > old.import_kwh[counting]
        assert new.import_kwh[idle] == old.import_kwh[idle]


def test_leak_raises_night_water_flow_by_exactly_its_rate() -> None:
    """A 30 L/h leak adds exactly 30 L per hour, from its start hour on."""
    start = at(2025, 2, 4, 0, 0)
    dry = Building(BuildingSpec(lots=4, seed=9, start_ts=start))
    leaking = Building(
        BuildingSpec(
            lots=4,
            seed=9,
            start_ts=start,
            water_leak_l_per_h=30.0,
            water_leak_start_h=2.0,
        )
    )
    used = []
    for building in (dry, leaking):
        at_two = building.advance(start + 2 * HOUR_S).water_m3
        at_four = building.advance(start + 4 * HOUR_S).water_m3
        used.append((at_two, at_four - at_two))

    (dry_before, dry_night), (leak_before, leak_night) = used
    assert leak_before == dry_before
    assert (leak_night - dry_night) * 1000 == pytest.approx(60.0, abs=1e-6)
    assert leaking.snapshot().water_l_per_h - dry.snapshot().water_l_per_h == (
        pytest.approx(30.0)
    )


def test_water_use_peaks_in_the_morning_not_at_night() -> None:
    """Household water at 07:00-09:00 is many times that at 02:00-04:00."""
    start = at(2025, 2, 4, 2, 0)
    building = Building(BuildingSpec(lots=10, seed=4, start_ts=start))
    night_start = building.snapshot().water_m3
    night = building.advance(start + 2 * HOUR_S).water_m3 - night_start
    morning_start = building.advance(start + 5 * HOUR_S).water_m3

    morning = building.advance(start + 7 * HOUR_S).water_m3 - morning_start

    assert morning > 5 * night


def test_heating_burns_more_gas_in_january_than_in_july() -> None:
    """Degree-days drive gas: a January day uses far more than a July day."""
    used = []
    for start in (at(2025, 1, 15), at(2025, 7, 15)):
        building = Building(BuildingSpec(lots=6, seed=8, start_ts=start))
        before = building.snapshot()
        after = building.advance(start + 24 * HOUR_S)
        used.append((after.gas_m3 - before.gas_m3, after.heat_gj - before.heat_gj))

    (january_m3, january_gj), (july_m3, july_gj) = used
    assert january_m3 > 4 * july_m3 > 0
    assert january_gj > 4 * july_gj > 0


def test_avg_demand_is_the_import_of_the_quarter_so_far() -> None:
    """1-0:1.4.0 at 10:05 is the import since 10:00 over five minutes."""
    start = at(2025, 1, 14, 9, 50)
    building = Building(BuildingSpec(lots=3, seed=6, start_ts=start))
    at_ten = building.advance(at(2025, 1, 14, 10, 0))

    five_past = building.advance(at(2025, 1, 14, 10, 5))

    for old, new in zip(at_ten.lots, five_past.lots):
        imported = sum(new.import_kwh) - sum(old.import_kwh)
        assert new.avg_demand_kw == pytest.approx(imported * 12)


def test_month_peak_is_the_highest_quarter_average() -> None:
    """From the 1st, 1-0:1.6.0 is the largest quarter average and its end."""
    start = at(2025, 3, 1)
    building = Building(BuildingSpec(lots=3, seed=12, start_ts=start))
    previous = building.snapshot()
    averages: list[list[tuple[float, float]]] = [[] for _ in building.lots]

    for quarter in range(1, 96 + 1):
        ts = start + quarter * QUARTER_S
        snap = building.advance(ts)
        for lot, (old, new) in enumerate(zip(previous.lots, snap.lots)):
            kw = (sum(new.import_kwh) - sum(old.import_kwh)) * 4
            averages[lot].append((kw, ts))
        previous = snap

    for lot, meter in enumerate(previous.lots):
        peak_kw, peak_ts = max(averages[lot])
        assert meter.month_peak_kw == pytest.approx(peak_kw)
        assert meter.month_peak_ts == peak_ts


def test_month_peak_starts_again_on_the_first() -> None:
    """After midnight on the 1st the peak is the new month's first quarter."""
    start = at(2025, 1, 31, 22, 0)
    building = Building(BuildingSpec(lots=2, seed=12, start_ts=start))
    at_midnight = building.advance(at(2025, 2, 1, 0, 0))

    first_quarter = building.advance(at(2025, 2, 1, 0, 15))

    for old, new in zip(at_midnight.lots, first_quarter.lots):
        assert new.month_peak_kw == pytest.approx(
            (sum(new.import_kwh) - sum(old.import_kwh)) * 4
        )
        assert new.month_peak_ts == at(2025, 2, 1, 0, 15)


def test_time_cannot_go_back() -> None:
    """Advancing to an earlier time is refused."""
    start = at(2025, 1, 14)
    building = Building(BuildingSpec(lots=1, seed=1, start_ts=start))
    building.advance(start + 600)

    with pytest.raises(ValueError, match="cannot go back"):
        building.advance(start + 300)
