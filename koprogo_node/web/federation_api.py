"""Federation endpoints: peers, and what neighbouring buildings published."""

from __future__ import annotations

import json

from aiohttp import web

from ..core.rollups import Tier
from ..federation.identity import peer_id
from ..ledger import query

TIER_PARAM = {"quarter": Tier.QUARTER, "hour": Tier.HOUR, "day": Tier.DAY}
LOOKBACK_S = {Tier.QUARTER: 86_400, Tier.HOUR: 7 * 86_400, Tier.DAY: 60 * 86_400}


def add_routes(app: web.Application, view_key: web.AppKey, in_ledger) -> None:
    """Register the federation routes on the dashboard's app."""

    async def peers(request: web.Request) -> web.Response:
        service = request.app[view_key].federation
        if service is None:
            return web.json_response({"enabled": False, "peers": []})
        return web.json_response(
            {"enabled": True, "federation": service.summary(), "peers": service.peers()}
        )

    async def peer(request: web.Request) -> web.Response:
        service = request.app[view_key].federation
        wanted = request.match_info["peer_id"]
        for entry in service.peers() if service else []:
            if entry["peer_id"] == wanted:
                return web.json_response(entry)
        return web.json_response({"error": f"no peer {wanted}"}, status=404)

    async def neighbours(request: web.Request) -> web.Response:
        view = request.app[view_key]
        tier = TIER_PARAM.get(request.query.get("tier", "hour"))
        if tier is None:
            return web.json_response(
                {"error": "tier must be quarter, hour or day"}, status=400
            )
        data_ms = await in_ledger(request, query.data_time_ms)
        since = int((data_ms or 0) // 1000) - LOOKBACK_S[tier]
        rows = await in_ledger(request, query.aggregates, tier, since)
        own = view.federation.key.public_key if view.federation else None
        return web.json_response(latest_by_building(rows, own))

    app.add_routes(
        [
            web.get("/api/v1/peers", peers),
            web.get("/api/v1/peers/{peer_id}", peer),
            web.get("/api/v1/neighbours", neighbours),
        ]
    )


def latest_by_building(rows: list[tuple], own: bytes | None) -> dict:
    """Each building's newest aggregate (rows come newest first)."""
    buildings: dict[bytes, dict] = {}
    for origin, start_s, body in rows:
        entry = buildings.get(origin)
        if entry is None:
            decoded = json.loads(body)
            buildings[origin] = {
                "peer_id": peer_id(origin),
                "self": origin == own,
                "start_s": start_s,
                "values": decoded["values"],
                "meta": decoded["meta"],
                "buckets": 1,
            }
        else:
            entry["buckets"] += 1
    ordered = sorted(buildings.values(), key=lambda b: (not b["self"], b["peer_id"]))
    return {"buildings": ordered}
