"""Cross-site request forgery checks for cookie-authenticated requests."""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from aiohttp import web

CSRF_HEADER = "X-CSRF-Token"
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def foreign_origin(request: web.Request) -> str | None:
    """The Origin (or Referer) when it names another host than this one, else None."""
    origin = request.headers.get("Origin")
    if origin is None:
        origin = request.headers.get("Referer")
    if origin is None:
        return None
    host = urlsplit(origin).netloc if origin != "null" else ""
    if host.lower() == request.host.lower():
        return None
    return origin


def token_matches(request: web.Request, expected: str) -> bool:
    """Whether the request's X-CSRF-Token header equals the session's token."""
    given = request.headers.get(CSRF_HEADER, "")
    return hmac.compare_digest(given.encode(), expected.encode())
