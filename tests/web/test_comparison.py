"""Percentile bands against similar buildings, and when there is no band."""

import pytest

from koprogo_node.web.comparison import MIN_OTHERS, compare

DAY = 1_796_342_400


def building(per_lot, *, own=False, day=DAY, heating="gas", lots="10-19"):
    values = {"electricity_import": {"unit": "kWh", "per_lot": per_lot, "per_m2": 0}}
    return {
        "self": own,
        "start_s": day,
        "values": values,
        "meta": {"heating": heating, "lots_band": lots},
        "peer_id": f"peer{per_lot}",
    }


def electricity(bands):
    return next(b for b in bands if b.family == "electricity_import")


def test_without_own_aggregate_nothing_is_compared():
    day, bands = compare([building(3.0), building(4.0)])

    assert day is None and not any(b.enough for b in bands)


def test_fewer_than_the_minimum_says_not_enough_data():
    others = [building(float(v)) for v in range(MIN_OTHERS - 1)]

    _, bands = compare([building(5.0, own=True), *others])

    band = electricity(bands)
    assert not band.enough and band.others == MIN_OTHERS - 1 and band.p50 is None


def test_band_and_rank_from_enough_buildings():
    others = [building(float(v)) for v in range(1, 11)]  # 1 … 10 kWh per lot

    day, bands = compare([building(7.5, own=True), *others])

    band = electricity(bands)
    assert day == DAY and band.enough and band.others == 10
    assert band.p10 == pytest.approx(1.9) and band.p90 == pytest.approx(9.1)
    assert band.p50 == pytest.approx(5.5)
    assert band.rank == pytest.approx(0.7)  # 1 … 7 use less
    assert {"gas", "water", "heat"} == {b.family for b in bands if not b.enough}


def test_other_days_do_not_count():
    others = [building(float(v), day=DAY - 86_400) for v in range(1, 11)]

    _, bands = compare([building(7.5, own=True), *others])

    assert not electricity(bands).enough


def test_narrows_to_similar_buildings_only_while_enough_remain():
    alike = [building(float(v)) for v in range(1, MIN_OTHERS + 1)]
    electric = [building(100.0 + v, heating="heat_pump") for v in range(5)]

    _, bands = compare([building(2.0, own=True), *alike, *electric])
    _, few = compare([building(2.0, own=True), *alike[:2], *electric])

    assert ("heating", "lots_band") == electricity(bands).similar_by
    assert MIN_OTHERS == electricity(bands).others
    assert () == electricity(few).similar_by and 7 == electricity(few).others


def _render(bands, day=DAY, others=10, language="en"):
    from koprogo_node.web.auth import ANONYMOUS
    from koprogo_node.web.i18n import Translator
    from koprogo_node.web.pages import ENV

    tr = Translator(language)
    return ENV.get_template("comparison.html").render(
        _=tr,
        lang=language,
        languages=("en",),
        lang_links={"en": "/comparison?lang=en"},
        page="/comparison",
        nav=[],
        caller=ANONYMOUS,
        is_admin=False,
        csrf="",
        title="Test",
        building="b",
        script_texts={},
        federation=True,
        day=day,
        bands=bands,
        others=others,
        min_others=MIN_OTHERS,
    )


def test_the_page_draws_a_band_and_says_where_the_building_stands():
    others = [building(float(v)) for v in range(1, 11)]
    _, bands = compare([building(7.5, own=True), *others])

    page = _render(bands, language="fr")

    assert page.count('class="band"') == 1  # electricity only
    assert "consomme plus que 70 % d&#39;entre eux" in page  # escaped apostrophe
    assert "1,9 – 9,1" in page and "médiane 5,5" in page
    assert page.count("Pas assez de données") == 3  # water, gas, heat


def test_the_page_is_honest_when_nothing_can_be_compared():
    _, bands = compare([building(7.5, own=True), building(3.0)])

    page = _render(bands, others=1)

    assert 'class="band"' not in page
    assert page.count("Not enough data: 1 comparable buildings") == 1
