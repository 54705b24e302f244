"""`/api/v1/alerts`: alerts as the ledger records them; admins ack, resolve or
add a note."""

from __future__ import annotations

import json

from aiohttp import web

from ..detect import alert_log
from ..ledger import query
from .auth import USER

STATES = ("active", "open", "acknowledged", "resolved")
MAX_NOTE = 500
ACTIONS = {"ack": "acknowledge", "resolve": "resolve", "note": "note"}


def add_routes(app: web.Application, view_key: web.AppKey, in_ledger) -> None:
    """Register the alert routes on the dashboard's app."""

    async def alerts(request: web.Request) -> web.Response:
        state = request.query.get("state")
        if state is not None and state not in STATES:
            return web.json_response(
                {"error": f"state must be one of {', '.join(STATES)}"}, status=400
            )
        current = await current_alerts(request, view_key, in_ledger)
        return web.json_response({"alerts": alert_log.listed(current, state)})

    async def alert(request: web.Request) -> web.Response:
        wanted = request.match_info["alert_id"]
        current = await current_alerts(request, view_key, in_ledger)
        if wanted not in current:
            return web.json_response({"error": f"no alert {wanted}"}, status=404)
        return web.json_response(current[wanted])

    async def change(request: web.Request) -> web.Response:
        detection = request.app[view_key].detection
        if detection is None:
            return web.json_response({"error": "detection is off"}, status=503)
        body = await _json_body(request)
        action = ACTIONS[request.match_info["action"]]
        if action == "note" and not body.get("note", "").strip():
            raise _bad_request('a note needs some text: {"note": "…"}')
        result = detection.apply(
            {
                "action": action,
                "id": request.match_info["alert_id"],
                "note": body.get("note", ""),
                "by": request[USER].username or "",
            }
        )
        if not result["ok"]:
            status = 404 if result["error"].startswith("no alert") else 409
            return web.json_response({"error": result["error"]}, status=status)
        return web.json_response(result["alert"])

    app.add_routes(
        [
            web.get("/api/v1/alerts", alerts),
            web.get("/api/v1/alerts/{alert_id}", alert),
            web.post("/api/v1/alerts/{alert_id}/{action:ack|resolve|note}", change),
        ]
    )


async def current_alerts(request: web.Request, view_key, in_ledger) -> dict[str, dict]:
    """Every alert's latest state, by id: the ledger, then what is not yet in it."""
    stored = alert_log.fold(
        await in_ledger(request, query.events, alert_log.EVENT_PREFIX)
    )
    detection = request.app[view_key].detection
    if detection is not None:  # newer than the ledger until the next commit
        stored.update(detection.feed)
    return stored


async def _json_body(request: web.Request) -> dict:
    """The request's JSON object, or {} when it has no body."""
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except ValueError:
        raise _bad_request("the body is not JSON") from None
    if not isinstance(body, dict) or not isinstance(body.get("note", ""), str):
        raise _bad_request('expected {"note": string}')
    if len(body.get("note", "")) > MAX_NOTE:
        raise _bad_request(f"a note is at most {MAX_NOTE} characters")
    return body


def _bad_request(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(
        text=json.dumps({"error": message}), content_type="application/json"
    )
