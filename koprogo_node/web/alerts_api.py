"""`/api/v1/alerts`: alerts as the ledger records them (read-only here)."""

from __future__ import annotations

from aiohttp import web

from ..detect import alert_log
from ..ledger import query

STATES = ("active", "open", "acknowledged", "resolved")


def add_routes(app: web.Application, view_key: web.AppKey, in_ledger) -> None:
    """Register the alert routes on the dashboard's app."""

    async def alerts(request: web.Request) -> web.Response:
        state = request.query.get("state")
        if state is not None and state not in STATES:
            return web.json_response(
                {"error": f"state must be one of {', '.join(STATES)}"}, status=400
            )
        current = await _current(request)
        return web.json_response({"alerts": alert_log.listed(current, state)})

    async def alert(request: web.Request) -> web.Response:
        wanted = request.match_info["alert_id"]
        current = await _current(request)
        if wanted not in current:
            return web.json_response({"error": f"no alert {wanted}"}, status=404)
        return web.json_response(current[wanted])

    async def _current(request: web.Request) -> dict[str, dict]:
        stored = alert_log.fold(
            await in_ledger(request, query.events, alert_log.EVENT_PREFIX)
        )
        detection = request.app[view_key].detection
        if detection is not None:  # newer than the ledger until the next commit
            stored.update(detection.feed)
        return stored

    app.add_routes(
        [
            web.get("/api/v1/alerts", alerts),
            web.get("/api/v1/alerts/{alert_id}", alert),
        ]
    )
