"""Who is calling, and may they: the auth middleware and its route table."""

from __future__ import annotations

import asyncio
import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from urllib.parse import urlencode

from aiohttp import web

from ..control_socket import is_local
from . import csrf
from .passwords import PasswordHasher
from .ratelimit import FailureLimiter
from .sessions import COOKIE_NAME, Session, SessionStore
from .tokens import TokenStore
from .users import Role, UserStore

PUBLIC = None

# First match wins. Patterns are matched against the route's canonical path
# ("/api/v1/users/{username}"), so encoded or odd spellings of a URL cannot
# dodge a rule. A route no rule matches needs admin.
RouteRules = tuple[tuple[str, str, Role | None], ...]

ROUTE_ROLES: RouteRules = (
    ("GET", "/api/v1/health", PUBLIC),
    ("GET", "/api/v1/openapi.json", PUBLIC),
    ("*", "/api/v1/setup", PUBLIC),
    ("POST", "/api/v1/session", PUBLIC),
    ("*", "/api/v1/session", Role.COOWNER),
    # Anyone may change their own password; the handler checks whose it is.
    ("POST", "/api/v1/users/{username}/password", Role.COOWNER),
    ("*", "/api/v1/users*", Role.ADMIN),
    ("*", "/api/v1/tokens*", Role.ADMIN),
    ("GET", "/api/v1/peers*", Role.TECHNICIAN),
    ("GET", "/api/v1/neighbours*", Role.TECHNICIAN),
    ("*", "/api/v1/tech/*", Role.TECHNICIAN),
    ("GET", "/api/v1/*", Role.COOWNER),
    ("*", "/api/v1/alerts*", Role.ADMIN),
    ("*", "/api/v1/settings*", Role.ADMIN),
    ("GET", "/login", PUBLIC),
    ("GET", "/static*", PUBLIC),
    ("GET", "/network", Role.TECHNICIAN),
    ("GET", "/settings", Role.ADMIN),
    ("GET", "*", Role.COOWNER),
    ("*", "*", Role.ADMIN),
)


@dataclass(frozen=True, kw_only=True)
class AuthSettings:
    """Cookie and timeout settings for dashboard logins."""

    secure_cookies: bool = False
    idle_timeout_s: float = 8 * 3600
    absolute_timeout_s: float = 24 * 3600


@dataclass(frozen=True)
class Caller:
    """Who made a request: an account, an API token, or nobody."""

    username: str | None
    role: Role | None
    via: str

    def at_least(self, role: Role) -> bool:
        """Whether the caller's role includes `role`."""
        return self.role is not None and self.role >= role


ANONYMOUS = Caller(None, None, "anonymous")
# Whoever opens the control socket (root, the `koprogo` group) on the node.
LOCAL_ADMIN = Caller("local", Role.ADMIN, "socket")


@dataclass
class AuthState:
    """Everything the auth middleware and routes share, kept on the app."""

    data_dir: Path
    settings: AuthSettings
    users: UserStore
    tokens: TokenStore
    sessions: SessionStore
    limiter: FailureLimiter
    hasher: PasswordHasher
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @classmethod
    def open(
        cls,
        data_dir: Path,
        settings: AuthSettings,
        clock: Callable[[], float],
        hasher: PasswordHasher,
    ) -> AuthState:
        """Load the stores from `data_dir` and start with no sessions."""
        return cls(
            data_dir=Path(data_dir),
            settings=settings,
            users=UserStore(data_dir),
            tokens=TokenStore(data_dir),
            sessions=SessionStore(
                clock, settings.idle_timeout_s, settings.absolute_timeout_s
            ),
            limiter=FailureLimiter(clock),
            hasher=hasher,
        )


AUTH = web.AppKey("auth", AuthState)
USER = web.RequestKey("user", Caller)
SESSION = web.RequestKey("session", object)


def json_error(
    status: int, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    """An error answer shaped like every other: {"error": message}."""
    return web.json_response({"error": message}, status=status, headers=headers)


def required_role(rules: RouteRules, method: str, path: str) -> Role | None:
    """The minimum role the table asks for this method and path (None: public)."""
    method = "GET" if method in ("HEAD", "OPTIONS") else method
    for rule_method, pattern, role in rules:
        if rule_method in ("*", method) and fnmatch.fnmatchcase(path, pattern):
            return role
    return Role.ADMIN


def auth_middleware(rules: RouteRules = ROUTE_ROLES):
    """Resolve the caller into request[USER] and enforce `rules` and CSRF."""

    @web.middleware
    async def authenticate(request: web.Request, handler) -> web.StreamResponse:
        state = request.app[AUTH]
        caller, session = _identify(state, request)
        request[USER] = caller
        request[SESSION] = session
        if caller is None:
            return json_error(401, "invalid or unknown API token")
        needed = required_role(rules, request.method, _route_path(request))
        problem = _csrf_problem(request, caller, session, needed is PUBLIC)
        if problem is not None:
            return json_error(403, problem)
        if needed is not PUBLIC and caller.role is None:
            if _is_page(request):
                raise web.HTTPSeeOther(f"/login?{urlencode({'next': request.path_qs})}")
            return json_error(401, "log in first (POST /api/v1/session)")
        if needed is not PUBLIC and not caller.at_least(needed):
            return json_error(403, f"this needs the {needed.label} role")
        return await handler(request)

    return authenticate


def _is_page(request: web.Request) -> bool:
    """A browser asking for a page (sent to log in) rather than for data."""
    return (
        request.method == "GET"
        and not request.path.startswith(("/api/", "/metrics", "/chart"))
        and "text/html" in request.headers.get("Accept", "")
    )


def _route_path(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else request.path


def _identify(state: AuthState, request: web.Request):
    """The caller and their session; a caller of None means a bad bearer token."""
    if is_local(request):  # the file's permissions already chose who may
        return LOCAL_ADMIN, None
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, plain = header.partition(" ")
        token = state.tokens.find(plain.strip()) if scheme.lower() == "bearer" else None
        if token is None:
            return None, None
        return Caller(token.name, token.role, "token"), None
    session = state.sessions.get(request.cookies.get(COOKIE_NAME))
    if session is None:
        return ANONYMOUS, None
    return Caller(session.username, session.role, "session"), session


def _csrf_problem(
    request: web.Request, caller: Caller, session: Session | None, public: bool
) -> str | None:
    """Why a state-changing request looks forged, or None if it does not."""
    # A browser never attaches a bearer token by itself, so those cannot be forged.
    if request.method not in csrf.STATE_CHANGING or caller.via in ("token", "socket"):
        return None
    origin = csrf.foreign_origin(request)
    if origin is not None:
        return f"CSRF check failed: request from foreign origin {origin}"
    # Public routes (login, setup) do not act with the session's authority.
    if public or session is None:
        return None
    if not csrf.token_matches(request, session.csrf_token):
        return (
            f"CSRF check failed: send the session's token in the {csrf.CSRF_HEADER} "
            "header (see GET /api/v1/session)"
        )
    return None
