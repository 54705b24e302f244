"""The privacy gate: building totals only, enough lots, none dominant."""

import random

import pytest

from koprogo_node.config.model import BuildingConfig, PrivacyConfig
from koprogo_node.core.rollups import Tier
from koprogo_node.federation.aggregates import (
    TOPICS,
    PrivacyGate,
    Withheld,
    check_body,
    coarse_metadata,
    contributions,
)

BUILDING = BuildingConfig(
    lots=12,
    floor_area_m2=960.0,
    construction_year=1974,
    postcode="1050",
    heating="gas",
)


def lot_rows(amounts, channel="import_t1"):
    return [(f"sim.lot{n:02d}.{channel}", a) for n, a in enumerate(amounts, 1)]


def gate(**privacy):
    return PrivacyGate(BUILDING, PrivacyConfig(**privacy), random.Random(7))


def test_twelve_even_lots_are_published_per_lot_and_per_m2():
    rows = lot_rows([1.0] * 12) + [("sim.common.import_t1", 0.6)]
    body, withheld = gate().body(
        Tier.HOUR, 7200, contributions(rows), {"electricity_import": "kWh"}
    )

    assert withheld == []
    assert body["values"]["electricity_import"] == {
        "unit": "kWh",
        "per_lot": pytest.approx(12.6 / 12),
        "per_m2": pytest.approx(12.6 / 960),
    }
    assert body["tier"] == "hour" and body["start"] == 7200
    assert check_body(TOPICS["hour"], body) is None


def test_fewer_than_k_consuming_lots_withholds_the_family():
    rows = lot_rows([1.0] * 9 + [0.0] * 3)

    body, withheld = gate().body(Tier.HOUR, 0, contributions(rows), {})

    assert body is None
    assert withheld == [Withheld("electricity_import", "too_few_lots")]


def test_one_lot_above_fifteen_percent_withholds_the_family():
    rows = lot_rows([1.0] * 11 + [2.5])  # 2.5 / 13.5 = 18.5 %

    assert gate().total(
        "electricity_import", contributions(rows)["electricity_import"]
    ) == Withheld("electricity_import", "dominant_lot")


def test_a_building_meter_needs_a_building_of_k_lots():
    rows = [("sim.common.water", 3.2)]
    small = PrivacyGate(BuildingConfig(lots=6), PrivacyConfig())

    assert gate().total("water", contributions(rows)["water"]) == 3.2
    assert small.total("water", contributions(rows)["water"]) == Withheld(
        "water", "too_few_lots"
    )


def test_only_withheld_families_are_left_out():
    rows = lot_rows([1.0] * 12) + [("sim.lot01.gas", 5.0)]

    body, withheld = gate().body(Tier.DAY, 0, contributions(rows), {})

    assert list(body["values"]) == ["electricity_import"]
    assert withheld == [Withheld("gas", "too_few_lots")]


def test_metadata_is_coarse():
    assert coarse_metadata(BUILDING) == {
        "decade": 1970,
        "lots_band": "10-19",
        "region": "10xx",
        "heating": "gas",
    }


def test_noise_spends_the_daily_budget_then_withholds():
    rows = contributions(lot_rows([1.0] * 12))
    noisy = gate(noise_epsilon=1.0, noise_budget_per_day=2.0)

    first = [noisy.body(Tier.HOUR, h * 3600, rows, {})[0] for h in range(3)]
    next_day = noisy.body(Tier.HOUR, 86_400, rows, {})[0]

    assert first[0]["values"]["electricity_import"]["per_lot"] != 1.0
    assert first[2] is None  # third value of the day: budget spent
    assert next_day is not None


@pytest.mark.parametrize(
    "topic, change",
    [
        (TOPICS["day"], {}),  # hour body on the day topic
        (TOPICS["hour"], {"start": 7201}),
        (TOPICS["hour"], {"values": {"electricity_import": {"per_lot": -1}}}),
        (TOPICS["hour"], {"meta": {"street": "Rue Haute 5"}}),
        (TOPICS["hour"], {"apartment": {"lot03": 4.2}}),
        ("koprogo/other", {}),
    ],
)
def test_malformed_or_personal_bodies_are_refused(topic, change):
    body, _ = gate().body(Tier.HOUR, 3600, contributions(lot_rows([1.0] * 12)), {})

    assert check_body(topic, {**body, **change}) is not None
