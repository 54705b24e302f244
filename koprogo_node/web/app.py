"""The dashboard page and the JSON API (aiohttp), served by the daemon."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import structlog
from aiohttp import web

from ..config.model import Config, WebConfig
from ..core.channels import family
from ..core.rollups import Tier
from ..errors import LedgerCorrupt
from ..ledger import query
from . import (
    alerts_api,
    federation_api,
    live_readings,
    metrics,
    openapi,
    pages,
    settings_api,
)
from .auth import (
    AUTH,
    PUBLIC,
    ROUTE_ROLES,
    USER,
    AuthSettings,
    Role,
    auth_middleware,
)
from .auth import add_routes as add_auth_routes
from .control_socket import serve_on_socket
from .local_token import write_local_token
from .pages import translator_of
from .visibility import may_see

log = structlog.get_logger(__name__)

VIEW = web.AppKey("view", object)
HEAD_CACHE = web.AppKey("ledger_head", dict)
# With `web.anonymous_read`, every GET is open except accounts and tokens.
OPEN_READS = (
    ("GET", "/settings", Role.ADMIN),
    ("GET", "/api/v1/users*", Role.ADMIN),
    ("GET", "/api/v1/tokens*", Role.ADMIN),
    ("GET", "/api/v1/session", Role.COOWNER),
    ("GET", "*", PUBLIC),
)
MAX_RANGE_MS = 400 * 86_400_000
USUAL_DAYS = 14


class BadRequest(ValueError):
    """A query parameter is missing or malformed."""


async def start_web(view, config: Config) -> tuple[web.AppRunner, str | None]:
    """Serve the app on TCP (unless the web is off) and on the control socket.

    Returns the runner and the URL bound on TCP (None when the web is off).
    """
    app = _build_app(view, config.web)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    url = None
    if config.web.enabled:
        site = web.TCPSite(runner, config.web.host, config.web.port)
        await site.start()
        url = f"http://{config.web.host}:{runner.addresses[0][1]}/"
        log.info("web_listening", url=url)
    await _serve_control_socket(runner, view.control_socket, config.control.group)
    return runner, url


def _build_app(view, config: WebConfig) -> web.Application:
    rules = (*OPEN_READS, *ROUTE_ROLES) if config.anonymous_read else ROUTE_ROLES
    app = web.Application(middlewares=[_json_errors, auth_middleware(rules)])
    app[VIEW] = view
    app[HEAD_CACHE] = {}
    add_auth_routes(app, VIEW, AuthSettings(secure_cookies=config.secure_cookies))
    app.add_routes(
        [
            web.get("/chart.svg", _chart),
            web.get("/api/v1/status", _status),
            web.get("/api/v1/sensors", _sensors),
            web.get("/api/v1/readings", _readings),
            web.get("/api/v1/building", _building),
        ]
    )
    federation_api.add_routes(app, VIEW, _in_ledger)
    alerts_api.add_routes(app, VIEW, _in_ledger)
    settings_api.add_routes(app, VIEW, _in_ledger)
    pages.add_routes(app, VIEW, _in_ledger, rules)
    openapi.add_routes(app)
    metrics.add_routes(app, VIEW)
    live_readings.add_routes(app, VIEW)
    write_local_token(app[AUTH].tokens, view.data_dir)
    return app


async def _serve_control_socket(runner: web.AppRunner, path: Path, group: str):
    """The CLI's way in; without it the node still runs, and says so once."""
    try:
        await serve_on_socket(runner, path, group)
    except OSError as exc:
        log.error("control_socket_unavailable", path=str(path), reason=str(exc))


@web.middleware
async def _json_errors(request: web.Request, handler: Callable) -> web.StreamResponse:
    try:
        return await handler(request)
    except (BadRequest, settings_api.SettingsError) as exc:
        return web.json_response({"error": str(exc)}, status=400)
    except LedgerCorrupt as exc:
        return web.json_response({"error": str(exc)}, status=503)


async def _in_ledger(request: web.Request, fn: Callable, *args):
    """Run a query function against a fresh read-only connection, off the loop."""
    db_path: Path = request.app[VIEW].db_path

    def run():
        conn = query.open_reader(db_path)
        try:
            return fn(conn, *args)
        finally:
            conn.close()

    return await asyncio.to_thread(run)


async def _ledger_head(request: web.Request) -> dict:
    """The last block, read again only when the writer has committed another.

    Pages poll the status every few seconds per visitor; most polls fall
    between two commits and need no trip to SQLite.
    """
    view = request.app[VIEW]
    cached = request.app[HEAD_CACHE]
    if cached.get("height") != view.writer.height or not cached:
        cached.clear()
        cached.update(await _in_ledger(request, query.head))
    return dict(cached)


async def _status(request: web.Request) -> web.Response:
    view = request.app[VIEW]
    head = await _ledger_head(request)
    stats = view.stats
    return web.json_response(
        {
            "node": {
                "building_id": view.config.node.building_id,
                "peer_id": view.peer_id,
                "name": view.config.node.name,
                "uptime_s": round(time.time() - view.started_s, 1),
                "clock_trusted": view.clock.trusted,
            },
            "ingest": {
                "committed_total": stats.committed_total,
                "rate_per_s": round(stats.rate_per_s(), 2),
                "queue_depth": view.queue.qsize(),
                "rejects_by_reason": stats.rejects_by_reason(),
            },
            "ledger": {
                **head,
                "size_bytes": _ledger_bytes(view.db_path),
            },
            "sources": [_source_status(view, h) for h in view.health.values()],
            "federation": view.federation.summary() if view.federation else None,
            "detection": view.detection.summary() if view.detection else None,
        }
    )


def _source_status(view, health) -> dict:
    """A source's supervision state, plus its devices' health if it has any."""
    status = dict(vars(health))
    devices = getattr(view.sources.get(health.name), "devices_health", None)
    if devices:
        status["devices"] = {name: d.as_dict() for name, d in devices.items()}
    return status


def _ledger_bytes(db_path: Path) -> int:
    total = 0
    for suffix in ("", "-wal"):
        path = db_path.with_name(db_path.name + suffix)
        if path.exists():
            total += path.stat().st_size
    return total


async def _sensors(request: web.Request) -> web.Response:
    view = request.app[VIEW]
    caller, config = request[USER], view.config
    rows = await _in_ledger(request, query.sensors)
    rows = [row for row in rows if may_see(caller, config, row["name"])]
    now_ms = view.clock.stamp().ts * 1000
    for row in rows:
        live = view.latest.get(row["name"])
        if live is not None:
            row["live_value"] = live.value
            row["live_ts_ms"] = int(live.ts * 1000)
        seen = row.get("live_ts_ms") or row["last_ts_ms"]
        row["age_s"] = None if seen is None else round((now_ms - seen) / 1000, 1)
    return web.json_response({"sensors": rows})


async def _readings(request: web.Request) -> web.Response:
    params = request.query
    sensor = params.get("sensor")
    if not sensor:
        raise BadRequest("sensor is required, e.g. ?sensor=p1.import_t1")
    step = params.get("step", "raw")
    if step not in query.STEPS:
        raise BadRequest(f"step must be one of {', '.join(query.STEPS)}, got {step!r}")
    now_ms = int(request.app[VIEW].clock.stamp().ts * 1000)
    to_ms = _parse_time(params.get("to"), "to")
    to_ms = now_ms + 1 if to_ms is None else to_ms
    from_ms = _parse_time(params.get("from"), "from")
    from_ms = to_ms - 86_400_000 if from_ms is None else from_ms
    if from_ms >= to_ms or to_ms - from_ms > MAX_RANGE_MS:
        raise BadRequest("from must be before to, and the range at most 400 days")
    answer_as = params.get("format", "json")
    if answer_as not in ("json", "csv"):
        raise BadRequest(f"format must be json or csv, got {answer_as!r}")
    if not may_see(request[USER], request.app[VIEW].config, sensor):
        error = {"error": f"{sensor} is an apartment's meter: technicians and admins"}
        raise web.HTTPForbidden(text=json.dumps(error), content_type="application/json")
    rows = await _in_ledger(request, _known_readings, sensor, from_ms, to_ms, step)
    if rows is None:
        error = {"error": f"unknown sensor {sensor}; see /api/v1/sensors"}
        raise web.HTTPNotFound(text=json.dumps(error), content_type="application/json")
    if answer_as == "csv":
        return _csv_answer(sensor, step, rows)
    return web.json_response(
        {
            "sensor": sensor,
            "step": step,
            "from_ms": from_ms,
            "to_ms": to_ms,
            "readings": rows,
        }
    )


CSV_COLUMNS = ("ts_ms", "value", "delta", "quality", "n", "consumption", "mean")


def _csv_answer(sensor: str, step: str, rows: list[dict]) -> web.Response:
    """Rows as CSV, with the columns this step has, for a spreadsheet."""
    columns = [c for c in CSV_COLUMNS if any(c in row for row in rows)] or ["ts_ms"]
    columns[1:1] = ["time_utc"]
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        stamp = datetime.fromtimestamp(row["ts_ms"] / 1000, timezone.utc)
        writer.writerow({**row, "time_utc": stamp.isoformat()})
    filename = f"{sensor}-{step}.csv".replace("/", "_")
    return web.Response(
        text=out.getvalue(),
        content_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _known_readings(conn, sensor: str, *args) -> list[dict] | None:
    """The sensor's readings, or None if the ledger has no such sensor."""
    if sensor not in query.sensor_names(conn):
        return None
    return query.readings(conn, sensor, *args)


def _parse_time(text: str | None, name: str) -> int | None:
    """Accept Unix seconds or ISO 8601 (naive means UTC); return milliseconds."""
    if not text:
        return None
    problem = BadRequest(f"{name} must be Unix seconds or ISO 8601, got {text!r}")
    try:
        return int(float(text) * 1000)
    except OverflowError:  # inf, 1e400: a number, but no time
        raise problem from None
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return int(moment.timestamp() * 1000)
    except (ValueError, OverflowError):
        raise problem from None


async def _building(request: web.Request) -> web.Response:
    return web.json_response(await building_summary(request))


async def building_summary(request: web.Request) -> dict:
    """Live power, the totals of the data day, and a usual day up to now."""
    view = request.app[VIEW]
    data_ms = await _in_ledger(request, query.data_time_ms)
    if data_ms is None:
        return {"data_time_ms": None, "power_kw": None, "today": {}, "usual": {}}
    day_start = int(data_ms // 1000) // Tier.DAY.value * Tier.DAY.value
    series = await _in_ledger(
        request,
        query.family_series,
        day_start - USUAL_DAYS * Tier.DAY.value,
        day_start + Tier.DAY.value,
        Tier.QUARTER,
        view.writer.open_buckets(),
    )
    today = {
        fam: round(sum(v for start, v in values.items() if start >= day_start), 3)
        for fam, values in series.items()
    }
    elapsed_s = int(data_ms // 1000) - day_start
    return {
        "data_time_ms": data_ms,
        "power_kw": _live_power(view.latest),
        "today": today,
        "usual": _usual_so_far(series, day_start, elapsed_s),
    }


def _usual_so_far(series: dict, day_start: int, elapsed_s: int) -> dict[str, float]:
    """Per family, the mean of earlier days' totals from midnight to the same hour.

    Only days with data for that family count, so a new node compares with
    the days it has rather than with zeros.
    """
    usual = {}
    for fam, values in series.items():
        per_day: dict[int, float] = {}
        for start, value in values.items():
            day = (start - day_start) // Tier.DAY.value  # negative: an earlier day
            if day < 0 and start - (day_start + day * Tier.DAY.value) < elapsed_s:
                per_day[day] = per_day.get(day, 0.0) + value
        if per_day:
            usual[fam] = round(sum(per_day.values()) / len(per_day), 3)
    return usual


def _live_power(latest: dict) -> float | None:
    powers = [r.value for name, r in latest.items() if family(name) == "power_import"]
    return round(sum(powers), 3) if powers else None


async def _chart(request: web.Request) -> web.Response:
    view = request.app[VIEW]
    try:
        hours = min(max(int(request.query.get("hours", "24")), 1), 24 * 14)
    except ValueError as exc:
        raise BadRequest("hours must be an integer") from exc
    data_ms = await _in_ledger(request, query.data_time_ms)
    end_s = int(data_ms // 1000) if data_ms else int(view.clock.stamp().ts)
    start_s = end_s - hours * 3600
    series = await _in_ledger(
        request,
        query.family_series,
        start_s,
        end_s + 1,
        Tier.QUARTER,
        view.writer.open_buckets(),
    )
    from .chart import render_chart  # pygal is loaded on the first chart only

    tr = translator_of(request)
    svg = await asyncio.to_thread(render_chart, series, start_s, end_s, tr)
    return web.Response(body=svg, content_type="image/svg+xml")
