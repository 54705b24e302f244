"""The dashboard's pages: HTML rendered on the node (Jinja2), light JavaScript.

Each page is a GET that the auth middleware guards like the API (a visitor
who is not logged in is sent to /login). Figures come from the same ledger
queries as the API; the overview's live tiles and every change (acknowledge,
settings, users) go through the JSON API from `static/app.js`, carrying the
session's CSRF token from the page's <meta>. Nothing is loaded from the
internet: styles, script and charts are all served by the node.
"""

from __future__ import annotations

import asyncio
import ipaddress
from datetime import date
from pathlib import Path
from urllib.parse import urlencode

import jinja2
from aiohttp import web

from ..core.channels import family
from ..core.rollups import Tier
from ..detect import alert_log
from ..ledger import query
from . import comparison, history, settings_api
from .alerts_api import current_alerts
from .auth import AUTH, PUBLIC, SESSION, USER, Role, required_role
from .chart import render_history
from .federation_api import latest_by_building
from .i18n import COOKIE, LANGUAGES, Translator, negotiate
from .visibility import may_see

STATIC_DIR = Path(__file__).with_name("static")
RULES = web.AppKey("page_rules", tuple)
FAMILY_ORDER = ("electricity_import", "water", "gas", "heat", "electricity_export")
NAV = (
    ("/", "Overview"),
    ("/history", "History"),
    ("/alerts", "Alerts"),
    ("/comparison", "Comparison"),
    ("/network", "Network"),
    ("/settings", "Settings"),
)
# What a rule's finding is called, as the pages show it (translated).
ALERT_KINDS = (
    "base_load_creep",
    "burst",
    "span_burst",
    "continuous_flow",
    "sustained_flow",
    "night_flow",
    "water_leak_model",
    "counter_jump",
    "impossible_value",
    "profile_deviation",
    "silent_meter",
    "stuck_meter",
)
# Texts the page script shows; sent along so it speaks the page's language.
SCRIPT_TEXTS = (
    *ALERT_KINDS,
    "low",
    "medium",
    "high",
    "no data yet",
    "node unreachable",
    "readings/s",
    "usual",
    "Saved.",
    "Note",
    "Log in",
)
COMPARISON_LOOKBACK_S = 7 * 86_400


ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("koprogo_node.web", "templates"),
    autoescape=jinja2.select_autoescape(["html"]),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def add_routes(app: web.Application, view_key: web.AppKey, in_ledger, rules) -> None:
    """Register the pages and /static on the dashboard's app."""
    app[RULES] = rules
    pages = _Pages(view_key, in_ledger)
    app.add_routes(
        [
            web.get("/", pages.overview),
            web.get("/history", pages.history),
            web.get("/alerts", pages.alerts),
            web.get("/comparison", pages.comparison),
            web.get("/network", pages.network),
            web.get("/settings", pages.settings),
            web.get("/login", pages.login),
        ]
    )
    app.router.add_static("/static/", STATIC_DIR)


class _Pages:
    """Page handlers; each gathers its figures and renders one template."""

    def __init__(self, view_key: web.AppKey, in_ledger) -> None:
        self.view_key = view_key
        self.in_ledger = in_ledger

    def _render(self, request: web.Request, name: str, **context) -> web.Response:
        view = request.app[self.view_key]
        chosen = request.query.get("lang")
        tr = translator_of(request)
        session = request[SESSION]
        caller = request[USER]
        html = ENV.get_template(f"{name}.html").render(
            _=tr,
            lang=tr.language,
            languages=LANGUAGES,
            lang_links={lang: _with_query(request, lang=lang) for lang in LANGUAGES},
            page=request.path,
            nav=_visible_nav(request, caller),
            caller=caller,
            is_admin=caller.at_least(Role.ADMIN),
            csrf=session.csrf_token if session else "",
            title=view.config.node.name or view.config.node.building_id,
            building=view.config.node.building_id,
            script_texts=tr.texts(*SCRIPT_TEXTS),
            **context,
        )
        response = web.Response(text=html, content_type="text/html")
        response.headers["Content-Language"] = tr.language
        response.headers["Cache-Control"] = "no-store"
        if chosen in LANGUAGES:
            response.set_cookie(
                COOKIE, chosen, max_age=365 * 86_400, samesite="Strict", path="/"
            )
        return response

    async def overview(self, request: web.Request) -> web.Response:
        return self._render(request, "overview")

    async def history(self, request: web.Request) -> web.Response:
        config = request.app[self.view_key].config
        sensors = await self.in_ledger(request, query.sensors)
        sensors = [s for s in sensors if may_see(request[USER], config, s["name"])]
        sensors.sort(key=_main_meters_first)
        names = [s["name"] for s in sensors]
        if not names:
            return self._render(
                request, "history", sensors=[], chosen=None, problems=[]
            )
        data_ms = await self.in_ledger(request, query.data_time_ms)
        chosen, tier, at, problems = _history_params(request, names, data_ms)
        view = history.window(tier, at)
        rows = await self.in_ledger(
            request,
            query.readings,
            chosen,
            view.start_s * 1000,
            view.end_s * 1000,
            view.step,
        )
        points = history.points(view, rows)
        counter = next(s["kind"] for s in sensors if s["name"] == chosen) == "counter"
        unit = next(s["unit"] for s in sensors if s["name"] == chosen)
        tr = translator_of(request)
        finer = history.FINER.get(tier)
        zoom = None
        if finer:

            def zoom(start_s: int) -> str:
                day = history.day_of(start_s).isoformat()
                return _history_link(chosen, finer, day)

        svg = await asyncio.to_thread(
            render_history, points, view, f"{chosen} ({unit})", tr, zoom, counter
        )
        csv_query = urlencode(
            {
                "sensor": chosen,
                "step": view.step,
                "from": view.start_s,
                "to": view.end_s,
                "format": "csv",
            }
        )
        return self._render(
            request,
            "history",
            sensors=names,
            labels={
                name: request.app[settings_api.SAVED].label(name) for name in names
            },
            chosen=chosen,
            problems=problems,
            tier=tier,
            tiers=history.TIERS,
            window=view,
            chart=svg,
            total=sum(v for _, v in points if v is not None) if counter else None,
            unit=unit,
            links={
                "previous": _history_link(chosen, tier, view.previous().isoformat()),
                "next": _history_link(chosen, tier, view.following().isoformat()),
                "out": _history_link(
                    chosen, history.COARSER.get(tier, tier), at.isoformat()
                ),
                "tiers": {
                    t: _history_link(chosen, t, at.isoformat()) for t in history.TIERS
                },
                "csv": f"/api/v1/readings?{csv_query}",
            },
        )

    async def alerts(self, request: web.Request) -> web.Response:
        current = await current_alerts(request, self.view_key, self.in_ledger)
        listed = alert_log.listed(current)
        active = [a for a in listed if a.get("state") != "resolved"]
        closed = [a for a in listed if a.get("state") == "resolved"]
        detection = request.app[self.view_key].detection
        return self._render(
            request, "alerts", active=active, closed=closed, detection=detection
        )

    async def comparison(self, request: web.Request) -> web.Response:
        view = request.app[self.view_key]
        data_ms = await self.in_ledger(request, query.data_time_ms)
        since = int((data_ms or 0) // 1000) - COMPARISON_LOOKBACK_S
        rows = await self.in_ledger(request, query.aggregates, Tier.DAY, since)
        own = view.federation.key.public_key if view.federation else None
        buildings = latest_by_building(rows, own)["buildings"]
        day, bands = comparison.compare(buildings)
        return self._render(
            request,
            "comparison",
            federation=view.federation is not None,
            day=day,
            bands=bands,
            others=sum(1 for b in buildings if not b["self"]),
            min_others=comparison.MIN_OTHERS,
        )

    async def network(self, request: web.Request) -> web.Response:
        service = request.app[self.view_key].federation
        return self._render(
            request,
            "network",
            federation=service.summary() if service else None,
            peers=service.peers() if service else [],
        )

    async def settings(self, request: web.Request) -> web.Response:
        view = request.app[self.view_key]
        auth = request.app[AUTH]
        sensors = await self.in_ledger(request, query.sensors)
        detection = view.detection
        saved = request.app[settings_api.SAVED]
        return self._render(
            request,
            "settings",
            users=[u.public() for u in auth.users.all()],
            tokens=[t.public() for t in auth.tokens.all()],
            roles=[r.label for r in Role],
            sensors=sensors,
            values=settings_api.current(detection) if detection else None,
            fields=settings_api.FIELDS,
            meter_labels={
                s["name"]: saved.meters.get(s["name"], {}).get("label", "")
                for s in sensors
            },
            unwatched=saved.unwatched(),
            max_label=settings_api.MAX_LABEL,
        )

    async def login(self, request: web.Request) -> web.Response:
        wanted = request.query.get("next", "/")
        # Only paths on this node: never send someone on to another site.
        if not wanted.startswith("/") or wanted.startswith("//"):
            wanted = "/"
        setup_needed = not request.app[AUTH].users.has_admin()
        code = None
        if setup_needed and _from_this_machine(request):
            code = request.app[self.view_key].setup_code
        return self._render(
            request, "login", next=wanted, setup_needed=setup_needed, setup_code=code
        )


def _from_this_machine(request: web.Request) -> bool:
    """A browser on the node itself (loopback), not one on the network."""
    try:
        return ipaddress.ip_address(request.remote or "").is_loopback
    except ValueError:
        return False


def _main_meters_first(sensor: dict) -> tuple:
    """Electricity, water, gas, heat meters first; counters before gauges."""
    fam = family(sensor["name"])
    order = FAMILY_ORDER.index(fam) if fam in FAMILY_ORDER else len(FAMILY_ORDER)
    return (order, sensor["kind"] != "counter", sensor["name"])


def translator_of(request: web.Request) -> Translator:
    """The visitor's language: ?lang=, then the cookie, then Accept-Language."""
    return Translator(
        negotiate(
            request.query.get("lang"),
            request.cookies.get(COOKIE),
            request.headers.get("Accept-Language", ""),
        )
    )


def _visible_nav(request: web.Request, caller) -> list[tuple[str, str]]:
    """The menu entries this caller may open."""
    rules = request.app[RULES]
    visible = []
    for path, label in NAV:
        needed = required_role(rules, "GET", path)
        if needed is PUBLIC or caller.at_least(needed):
            visible.append((path, label))
    return visible


def _with_query(request: web.Request, **changes: str) -> str:
    params = {**request.query, **changes}
    return f"{request.path}?{urlencode(params)}"


def _history_link(sensor: str, tier: str, day: str) -> str:
    return "/history?" + urlencode({"sensor": sensor, "tier": tier, "at": day})


def _history_params(request: web.Request, names: list[str], data_ms: int | None):
    """Sensor, tier and day asked for; what was unusable is named and replaced."""
    params = request.query
    problems = []
    chosen = params.get("sensor", names[0])
    if chosen not in names:
        problems.append(("Unknown meter {value}; showing {default}.", chosen, names[0]))
        chosen = names[0]
    tier = params.get("tier", "day")
    if tier not in history.TIERS:
        problems.append(("Unknown period {value}; showing {default}.", tier, "day"))
        tier = "day"
    default_day = history.day_of(int((data_ms or 0) // 1000))
    at = default_day
    if "at" in params:
        try:
            at = date.fromisoformat(params["at"])
        except ValueError:
            at = None
        if at is None or not date(2000, 1, 1) <= at <= date(2100, 1, 1):
            problems.append(
                ("Unusable date {value}; showing {default}.", params["at"], default_day)
            )
            at = default_day
    return chosen, tier, at, problems
