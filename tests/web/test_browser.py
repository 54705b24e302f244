"""The dashboard in headless Chromium (Debian's, driven by Playwright): first
admin from the setup code, live values, a chart read and zoomed, an alert
acknowledged with a note, the language switch, settings, a co-owner's view, and
a screenshot of every page under test-output/screenshots/ (or
$KOPROGO_TEST_OUTPUT/screenshots/)."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from .node_client import ADMIN, start_leaky_node

pytestmark = pytest.mark.slow
CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(os.environ.get("KOPROGO_TEST_OUTPUT", "test-output")) / "screenshots"
MAIN_PAGE_BUDGET = 150 * 1024


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    running = start_leaky_node(tmp_path_factory.mktemp("browser"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def chromium():
    if not CHROMIUM.exists():
        pytest.skip("chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def admin(node, chromium):
    """A page logged in as the first admin, made through the setup form."""
    context = chromium.new_context(
        locale="en-GB", viewport={"width": 1100, "height": 900}
    )
    context.requests = []
    context.on("request", lambda request: context.requests.append(request.url))
    page = context.new_page()
    page.goto(node.base + "/")
    assert page.url.startswith(node.base + "/login?next=")
    page.fill("#setup [name=code]", node.setup_code())
    page.fill("#setup [name=username]", ADMIN[0])
    page.fill("#setup [name=password]", ADMIN[1])
    page.click("#setup button")
    page.wait_for_url(node.base + "/")
    yield page
    context.close()


def test_the_first_admin_logs_in_through_the_setup_form(admin):
    assert f"{ADMIN[0]} (admin)" in admin.inner_text("header")


def test_live_values_change_on_the_overview(admin):
    admin.goto(admin.url.split("?")[0])
    admin.wait_for_function("document.getElementById('data-time').textContent !== '…'")
    first = admin.inner_text("#data-time")

    admin.wait_for_function(
        f"document.getElementById('data-time').textContent !== {first!r}",
        timeout=15_000,
    )

    assert admin.inner_text("#data-time") != first
    assert re.fullmatch(r"[\d.,\u202f ]+", admin.inner_text("#water"))


def test_a_chart_is_read_and_zoomed(admin, node):
    admin.goto(node.base + "/history?tier=week")
    options = admin.locator("select[name=sensor] option").all_inner_texts()
    water = next(name for name in options if name.endswith("water"))
    with admin.expect_navigation():
        admin.select_option("select[name=sensor]", water)
    values = admin.locator("figure.chart desc.value").evaluate_all(
        "els => els.map(e => e.textContent)"
    )

    bars = admin.locator("figure.chart a")
    heights = bars.evaluate_all("els => els.map(e => e.getBoundingClientRect().height)")
    bars.nth(heights.index(max(heights))).click()
    admin.wait_for_url(re.compile(r"tier=day"))

    assert f"sensor={water}" in admin.url
    assert max(_number(v) for v in values) > 0
    assert admin.locator("figure.chart svg").count() == 1
    assert "day" in admin.inner_text("a.tab[aria-current]")


def _number(text: str) -> float:
    """A value as the English-Belgian page prints it: 1.234,5."""
    return float(text.replace(".", "").replace(",", ".")) if text else 0.0


def test_an_alert_is_acknowledged_with_a_note(admin, node):
    alert_id = _wait_for_alert(admin, node)
    admin.goto(node.base + "/alerts")
    card = admin.locator(f'[data-alert="{alert_id}"]')

    card.locator("[name=note]").fill("Plumber booked for Monday")
    with admin.expect_navigation():  # the page reloads once the API answered
        card.locator("button[value=ack]").click()
    card = admin.locator(f'[data-alert="{alert_id}"]')
    card.locator(".state").wait_for()
    stored = admin.request.get(f"{node.base}/api/v1/alerts/{alert_id}").json()

    assert "acknowledged" == card.locator(".state").inner_text()
    assert "Plumber booked for Monday" in card.inner_text()
    assert "acknowledged" == stored["state"]
    assert "Plumber booked for Monday" == stored["notes"][-1]["text"]


def test_the_language_switch_changes_texts_and_number_formats(admin, node):
    admin.goto(node.base + "/")
    admin.click("header .lang a[hreflang=nl]")
    admin.wait_for_function("document.getElementById('data-time').textContent !== '…'")

    assert "nl" == admin.get_attribute("html", "lang")
    assert "Overzicht" in admin.inner_text("header nav")
    assert re.search(r"\d{1,2}/\d{1,2}/\d{4}", admin.inner_text("#data-time"))
    admin.goto(node.base + "/alerts")  # the choice is remembered
    assert "Open meldingen" in admin.inner_text("main")
    admin.click("header .lang a[hreflang=en]")


def test_settings_forms_change_tariffs_label_a_meter_and_add_a_co_owner(admin, node):
    admin.goto(node.base + "/settings")
    admin.fill("#settings [name=water_eur_per_m3]", "4.75")
    admin.click("#settings button")
    admin.locator("#settings .error", has_text="Saved.").wait_for()
    admin.fill("#new-user [name=username]", "owner")
    admin.fill("#new-user [name=password]", "a long enough secret")
    admin.select_option("#new-user [name=role]", "coowner")
    admin.click("#new-user button")
    admin.locator("#users td", has_text="owner").first.wait_for()
    water = admin.locator('#meters tr[data-meter="sim.water"]')
    water.locator("[name=label]").fill("Main water meter")
    water.locator("button.save-meter").click()
    water.locator(".error", has_text="Saved.").wait_for()
    settings = admin.request.get(f"{node.base}/api/v1/settings").json()
    admin.goto(node.base + "/history?sensor=sim.water")

    assert 4.75 == settings["tariffs"]["water_eur_per_m3"]
    assert "Main water meter" == settings["meters"]["sim.water"]["label"]
    assert "Main water meter · sim.water" in admin.inner_text("select[name=sensor]")


def test_a_co_owner_sees_no_admin_page(chromium, node, admin):
    context = chromium.new_context(locale="fr-BE")
    page = context.new_page()
    page.goto(node.base + "/alerts")
    page.fill("#login [name=username]", "owner")
    page.fill("#login [name=password]", "a long enough secret")
    page.click("#login button")
    page.wait_for_url(node.base + "/alerts")

    assert "Réglages" not in page.inner_text("header nav")
    assert "Aperçu" in page.inner_text("header nav")
    assert 403 == page.goto(node.base + "/settings").status
    context.close()


def test_every_page_is_screenshot_and_needs_nothing_from_outside(admin, node):
    SHOTS.mkdir(parents=True, exist_ok=True)
    pages = {
        "overview": "/",
        "history-day": "/history",
        "history-week": "/history?tier=week",
        "history-month": "/history?tier=month",
        "alerts": "/alerts",
        "comparison": "/comparison",
        "network": "/network",
        "settings": "/settings",
    }
    for name, path in pages.items():
        admin.goto(node.base + path)
        admin.wait_for_load_state("networkidle")
        admin.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    login = admin.context.browser.new_page()
    login.goto(node.base + "/login")
    login.screenshot(path=str(SHOTS / "login.png"), full_page=True)
    login.close()

    outside = [
        u for u in admin.context.requests if not u.startswith((node.base, "data:"))
    ]
    assert outside == []
    assert {f"{name}.png" for name in pages} | {"login.png"} <= {
        p.name for p in SHOTS.iterdir() if p.stat().st_size > 5_000
    }


def test_the_main_page_stays_within_its_weight_budget(chromium, node, admin):
    context = chromium.new_context(storage_state=admin.context.storage_state())
    page = context.new_page()
    sizes = {}
    page.on("response", lambda r: sizes.__setitem__(r.url, len(r.body())))
    page.goto(node.base + "/")
    page.wait_for_load_state("networkidle")
    context.close()

    assert {"/", "/static/app.js", "/static/style.css"} <= {
        u.removeprefix(node.base).split("?")[0] for u in sizes
    }
    assert sum(sizes.values()) <= MAIN_PAGE_BUDGET, sizes


def _wait_for_alert(page, node, timeout_s=120) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = page.request.get(f"{node.base}/api/v1/alerts?state=open").json()
        if found["alerts"]:
            return found["alerts"][0]["id"]
        time.sleep(1)
    raise AssertionError("no alert opened")
