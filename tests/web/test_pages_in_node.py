"""The dashboard pages of a real daemon: who may see which page, languages,
history and CSV, alert notes, and settings that take effect and persist."""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
import time
from urllib.parse import parse_qs, urlparse

import pytest

from koprogo_node.core.channels import family

from ..daemon.conftest import wait_for_event
from .node_client import ADMIN, Browser, start_leaky_node

pytestmark = pytest.mark.slow
PASSWORD = "a long enough secret"
PAGES = ("/", "/history", "/alerts", "/comparison", "/network", "/settings")


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    running = start_leaky_node(tmp_path_factory.mktemp("pages"))
    admin = Browser(running.base)
    code = running.setup_code()
    made = admin.call(
        "POST",
        "/api/v1/setup",
        {"code": code, "username": ADMIN[0], "password": ADMIN[1]},
    )
    assert made.status == 200, made.text
    admin.csrf = made.json()["csrf_token"]
    for name, role in (("owner", "coowner"), ("tech", "technician")):
        body = {"username": name, "password": PASSWORD, "role": role}
        assert admin.call("POST", "/api/v1/users", body).status == 201
    running.alert = wait_for_event(running.log, "alert_opened", timeout_s=120)
    yield running
    running.stop()


def logged_in(node, username, password=PASSWORD, language="en") -> Browser:
    browser = Browser(node.base, accept_language=language)
    assert browser.login(username, password).status == 200
    return browser


@pytest.mark.parametrize("path", PAGES)
def test_anonymous_visitors_are_sent_to_log_in(node, path):
    answer = Browser(node.base).page(path + "?tier=week")
    location = urlparse(answer.headers["Location"])

    assert 303 == answer.status
    assert "/login" == location.path
    assert [path + "?tier=week"] == parse_qs(location.query)["next"]


@pytest.mark.parametrize("path", ["/login", "/static/app.js", "/static/style.css"])
def test_the_login_page_and_its_files_need_no_login(node, path):
    assert 200 == Browser(node.base).page(path).status


def test_anonymous_api_calls_get_401_json_not_a_redirect(node):
    answer = Browser(node.base).call("GET", "/api/v1/status")

    assert 401 == answer.status and "log in" in answer.json()["error"]


@pytest.mark.parametrize(
    ("user", "allowed"),
    [
        ("owner", {"/", "/history", "/alerts", "/comparison"}),
        ("tech", {"/", "/history", "/alerts", "/comparison", "/network"}),
        (ADMIN[0], set(PAGES)),
    ],
)
def test_each_role_sees_its_pages_and_only_those_in_the_menu(node, user, allowed):
    password = ADMIN[1] if user == ADMIN[0] else PASSWORD
    browser = logged_in(node, user, password)

    statuses = {path: browser.page(path).status for path in PAGES}
    nav = re.search(r"<nav>.*?</nav>", browser.page("/").text, re.S).group(0)
    menu = set(re.findall(r'href="([^"]+)"', nav))

    assert {p: 200 if p in allowed else 403 for p in PAGES} == statuses
    assert allowed == menu


@pytest.mark.parametrize(
    "target", ["https://elsewhere.example/", "//elsewhere.example"]
)
def test_login_page_never_sends_on_to_another_site(node, target):
    page = Browser(node.base).page(f"/login?next={target}").text

    assert {"/"} == set(re.findall(r'data-next="([^"]*)"', page))


def test_login_page_offers_setup_only_until_an_admin_exists(node):
    page = Browser(node.base).page("/login").text

    assert 'id="login"' in page and 'id="setup"' not in page


def test_language_follows_the_browser_then_the_switch(node):
    dutch = logged_in(node, "owner", language="nl-BE,nl;q=0.9,en;q=0.5")

    first = dutch.page("/").text
    switched = dutch.page("/?lang=fr")
    remembered = dutch.page("/alerts").text

    assert '<html lang="nl">' in first and "Overzicht" in first
    assert "koprogo_lang=fr" in switched.headers["Set-Cookie"]
    assert '<html lang="fr">' in remembered and "Alertes ouvertes" in remembered


def test_the_overview_chart_speaks_the_visitors_language(node):
    browser = logged_in(node, "owner", language="nl-BE")

    chart = browser.call("GET", "/chart.svg?hours=24", accept="image/svg+xml").text

    assert "elektriciteit, kW" in chart and "electricity, kW" not in chart
    assert re.search(r">(ma|di|wo|do|vr|za|zo)\.? \d\d:\d\d<", chart)


def test_history_shows_the_building_meter_with_zoom_links_and_csv(node):
    browser = logged_in(node, "owner")

    week = browser.page("/history?tier=week").text
    zoom = re.search(r'xlink:href="(/history\?[^"]+tier=day[^"]*)"', week)
    csv_link = re.search(r'href="(/api/v1/readings\?[^"]+format=csv)"', week)
    rows = list(
        csv.DictReader(
            io.StringIO(browser.call("GET", _unescape(csv_link.group(1))).text)
        )
    )
    as_json = browser.call(
        "GET", _unescape(csv_link.group(1)).replace("format=csv", "format=json")
    ).json()

    selected = re.search(r"<option value=\"([^\"]+)\" selected>", week).group(1)

    # Electricity is metered per lot here, which co-owners do not see; the
    # building's water meter is the first shared meter.
    assert "water" == family(selected)
    assert zoom is not None and browser.page(_unescape(zoom.group(1))).status == 200
    # The node keeps writing: an hour may close between the two requests.
    stamps = [r["ts_ms"] for r in as_json["readings"]]
    assert [int(r["ts_ms"]) for r in rows] == stamps[: len(rows)]
    assert 0 < len(rows) >= len(stamps) - 1
    assert {"ts_ms", "time_utc", "consumption"} <= set(rows[0])


def test_co_owners_do_not_see_other_apartments_meters(node):
    owner = logged_in(node, "owner").page("/history").text
    admin = logged_in(node, *ADMIN).page("/history").text

    assert "sim.lot01." not in owner
    assert "sim.lot01." in admin


def test_the_api_keeps_apartments_meters_from_co_owners(node):
    owner, tech = logged_in(node, "owner"), logged_in(node, "tech")

    seen_by_owner = {
        s["name"] for s in owner.call("GET", "/api/v1/sensors").json()["sensors"]
    }
    seen_by_tech = {
        s["name"] for s in tech.call("GET", "/api/v1/sensors").json()["sensors"]
    }
    lot = next(name for name in seen_by_tech if name.startswith("sim.lot01."))
    refused = owner.call("GET", f"/api/v1/readings?sensor={lot}")
    allowed = tech.call("GET", f"/api/v1/readings?sensor={lot}")

    assert seen_by_owner and not any(".lot" in name for name in seen_by_owner)
    assert seen_by_owner < seen_by_tech
    assert 403 == refused.status and "apartment's meter" in refused.json()["error"]
    assert 200 == allowed.status


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("?sensor=nope", "Unknown meter nope"),
        ("?tier=decade", "Unknown period decade"),
        ("?at=yesterday", "Unusable date yesterday"),
        ("?at=1200-01-01", "Unusable date 1200-01-01"),
    ],
)
def test_history_names_what_it_could_not_use(node, query, message):
    answer = logged_in(node, "owner").page("/history" + query)

    assert 200 == answer.status and message in answer.text


def test_admin_adds_a_note_that_the_alerts_page_shows(node):
    alert_id = node.alert["alert"]
    admin = logged_in(node, *ADMIN)
    owner = logged_in(node, "owner")

    added = admin.call(
        "POST", f"/api/v1/alerts/{alert_id}/note", {"note": "Valve checked"}
    )
    empty = admin.call("POST", f"/api/v1/alerts/{alert_id}/note", {"note": "  "})
    too_long = admin.call(
        "POST", f"/api/v1/alerts/{alert_id}/note", {"note": "x" * 501}
    )
    refused = owner.call("POST", f"/api/v1/alerts/{alert_id}/note", {"note": "me too"})
    page = owner.page("/alerts").text

    assert 200 == added.status
    assert [("syndic", "Valve checked")] == [
        (n["by"], n["text"]) for n in added.json()["notes"]
    ]
    assert 400 == empty.status == too_long.status and 403 == refused.status
    assert "Valve checked" in page and f'data-alert="{alert_id}"' in page
    assert 'class="alert-actions"' not in page  # co-owners get no buttons


@pytest.mark.parametrize(
    ("meter", "body", "status"),
    [
        ("sim.water", {"label": "x" * 61}, 400),
        ("sim.water", {"label": "tab\there"}, 400),
        ("sim.water", {"watched": "no"}, 400),
        ("sim.water", {"colour": "red"}, 400),
        ("sim.water", {}, 400),
        ("no.such.meter", {"label": "Ghost"}, 404),
    ],
)
def test_meter_settings_refuse_bad_input(node, meter, body, status):
    answer = logged_in(node, *ADMIN).call(
        "PUT", f"/api/v1/settings/meters/{meter}", body
    )

    assert status == answer.status and answer.json()["error"]


def test_a_meter_label_shows_on_the_pages(node):
    admin, owner = logged_in(node, *ADMIN), logged_in(node, "owner")
    body = {"label": "Compteur d'eau général"}

    refused = owner.call("PUT", "/api/v1/settings/meters/sim.water", body)
    changed = admin.call("PUT", "/api/v1/settings/meters/sim.water", body)
    history = owner.page("/history?sensor=sim.water").text
    settings = admin.call("GET", "/api/v1/settings").json()

    assert 403 == refused.status and 200 == changed.status
    assert "Compteur d&#39;eau général · sim.water" in history
    assert {"label": "Compteur d'eau général"} == settings["meters"]["sim.water"]


def test_an_unwatched_meter_raises_no_alert(tmp_path):
    """The same leaking building, with its water meter taken off the watch."""
    data = tmp_path / "data"
    data.mkdir()
    unwatched = {"meters": {"sim.water": {"watched": False}}}
    (data / "settings.json").write_text(json.dumps(unwatched))
    running = start_leaky_node(tmp_path)
    try:
        # The watched twin opens its leak alert within about 20 s.
        time.sleep(40)
        reader = Browser(running.base)
        reader.token = (running.data / "local-api-token").read_text().strip()
        alerts = reader.call("GET", "/api/v1/alerts").json()["alerts"]
        log = running.log.read_text()
    finally:
        running.stop()

    assert "detection_failed" not in log
    assert [] == [a for a in alerts if a["sensor"] == "sim.water"]


def test_settings_change_at_once_are_recorded_and_survive_a_restart(node):
    admin = logged_in(node, *ADMIN)

    bad = [
        admin.call("PUT", "/api/v1/settings", body).status
        for body in (
            {"water_eur_per_m3": -1},
            {"nope": 1},
            {"min_history_days": 1.5},
            {"water_eur_per_m3": True},
            {},
        )
    ]
    owner = logged_in(node, "owner").call(
        "PUT", "/api/v1/settings", {"water_eur_per_m3": 1}
    )
    changed = admin.call("PUT", "/api/v1/settings", {"water_eur_per_m3": 4.25})
    node.stop()
    node.start()
    after = logged_in(node, *ADMIN).call("GET", "/api/v1/settings").json()

    assert [400] * 5 == bad and 403 == owner.status
    assert 4.25 == changed.json()["tariffs"]["water_eur_per_m3"]
    assert 4.25 == after["tariffs"]["water_eur_per_m3"]
    assert (
        4.25
        == json.loads((node.data / "settings.json").read_text())["water_eur_per_m3"]
    )
    assert any(
        detail["action"] == "change_settings" and detail["by"] == "syndic"
        for detail in _admin_actions(node)
    )


def _admin_actions(node) -> list[dict]:
    conn = sqlite3.connect(f"file:{node.data / 'ledger.db'}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT detail FROM events WHERE kind = 'admin_action'")
        return [json.loads(detail) for (detail,) in rows]
    finally:
        conn.close()


def _unescape(link: str) -> str:
    return link.replace("&amp;", "&")
