"""Readings as the daemon receives them, streamed to the CLI's `readings tail`.

Served only on the control socket (404 on TCP): it is a technician's tool,
and an endless stream has no place in the public API. One JSON object per
line; an empty line every few seconds of quiet tells the daemon whether the
reader is still there.
"""

from __future__ import annotations

import json

from aiohttp import web

from .control_socket import is_local

LIVE_PATH = "/local/readings/live"
KEEPALIVE_S = 5.0


def add_routes(app: web.Application, view_key: web.AppKey) -> None:
    """Register the live stream on the app (answered on the socket only)."""

    async def live(request: web.Request) -> web.StreamResponse:
        if not is_local(request):
            raise web.HTTPNotFound()
        taps = request.app[view_key].taps
        tap = taps.open(request.query.getall("sensor", []))
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        try:
            await _pump(tap, response)
        except ConnectionError:
            pass  # the reader went away: nothing to tell anyone
        finally:
            taps.close(tap)
        return response

    app.router.add_get(LIVE_PATH, live)


async def _pump(tap, response: web.StreamResponse) -> None:
    while True:
        batch = await tap.next(KEEPALIVE_S)
        if batch is None:
            break
        lines = [json.dumps(_as_json(r)) for r in batch]
        if tap.missed:
            lines.append(json.dumps({"missed": tap.missed}))
            tap.missed = 0
        await response.write(("\n".join(lines) + "\n").encode())
    await response.write_eof()


def _as_json(reading) -> dict:
    return {
        "sensor": reading.sensor,
        "ts_ms": int(reading.ts * 1000),
        "value": reading.value,
        "unit": reading.unit,
        "kind": reading.kind.value,
        "quality": reading.quality.name.lower(),
    }
