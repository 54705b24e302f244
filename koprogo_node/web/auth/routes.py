"""Login, setup, account and API-token endpoints under /api/v1."""

from __future__ import annotations

import time
from typing import Callable

from aiohttp import web

from . import setup_code
from .middleware import (
    AUTH,
    SESSION,
    USER,
    AuthSettings,
    AuthState,
    Caller,
    json_error,
)
from .passwords import PasswordHasher, check_password_policy
from .sessions import COOKIE_NAME, Session
from .users import Conflict, InvalidInput, Role, normalize_name

BAD_LOGIN = "wrong username or password"


def add_routes(
    app: web.Application,
    view_key: web.AppKey,
    settings: AuthSettings | None = None,
    *,
    clock: Callable[[], float] = time.monotonic,
    hasher: PasswordHasher | None = None,
) -> None:
    """Register the auth endpoints; `app[view_key]` must already hold the view."""
    view = app[view_key]
    app[AUTH] = AuthState.open(
        view.data_dir, settings or AuthSettings(), clock, hasher or PasswordHasher()
    )
    handlers = _Handlers(view_key)
    app.add_routes(
        [
            web.post("/api/v1/session", handlers.login),
            web.get("/api/v1/session", handlers.current),
            web.delete("/api/v1/session", handlers.logout),
            web.get("/api/v1/setup", handlers.setup_status),
            web.post("/api/v1/setup", handlers.setup),
            web.get("/api/v1/users", handlers.list_users),
            web.post("/api/v1/users", handlers.create_user),
            web.delete("/api/v1/users/{username}", handlers.delete_user),
            web.post("/api/v1/users/{username}/password", handlers.change_password),
            web.get("/api/v1/tokens", handlers.list_tokens),
            web.post("/api/v1/tokens", handlers.create_token),
            web.delete("/api/v1/tokens/{name}", handlers.delete_token),
        ]
    )


class _BadRequest(Exception):
    """The request body is not the JSON object the endpoint expects."""


async def _json_fields(
    request: web.Request, *names: str, optional: tuple[str, ...] = ()
) -> dict:
    """The named fields of the JSON body; raise _BadRequest if any is missing,
    or if the body holds a field the endpoint does not know (likely a typo)."""
    try:
        body = await request.json()
    except ValueError as exc:
        raise _BadRequest("the body must be a JSON object") from exc
    if not isinstance(body, dict):
        raise _BadRequest("the body must be a JSON object")
    missing = [name for name in names if not isinstance(body.get(name), str)]
    if missing:
        raise _BadRequest(f"missing string field(s): {', '.join(missing)}")
    wrong = [n for n in optional if n in body and not isinstance(body[n], str)]
    if wrong:
        raise _BadRequest(f"not a string: {', '.join(wrong)}")
    unknown = sorted(set(body) - set(names) - set(optional))
    if unknown:
        raise _BadRequest(f"unknown field(s): {', '.join(unknown)}")
    return body


def _input_errors(handler):
    """Turn the shared input errors of a handler into JSON 400/409 answers."""

    async def guarded(self, request: web.Request) -> web.StreamResponse:
        try:
            return await handler(self, request)
        except (_BadRequest, InvalidInput) as exc:
            return json_error(400, str(exc))
        except Conflict as exc:
            return json_error(409, str(exc))

    guarded.__doc__ = handler.__doc__
    return guarded


def record_admin_action(
    request: web.Request, view_key: web.AppKey, action: str, target: str, **extra
) -> None:
    """Chain an admin action in the ledger (never with a secret in it)."""
    caller: Caller = request[USER]
    by = caller.username or "setup-code"
    if caller.via == "token":
        by = f"token:{by}"
    detail = {"by": by, "action": action, "target": target, **extra}
    request.app[view_key].writer.record_event("admin_action", None, detail)


class _Handlers:
    """The endpoint handlers; each finds the shared state on request.app."""

    def __init__(self, view_key: web.AppKey) -> None:
        self.view_key = view_key

    def _record(self, request: web.Request, action: str, target: str, **extra):
        record_admin_action(request, self.view_key, action, target, **extra)

    @_input_errors
    async def login(self, request: web.Request) -> web.Response:
        """Check a username and password; start a new session."""
        state = request.app[AUTH]
        body = await _json_fields(request, "username", "password")
        username = body["username"].strip().lower()
        keys = (("ip", request.remote), ("user", username))
        wait_s = state.limiter.retry_after_s(*keys)
        if wait_s:
            return _too_many(wait_s)
        # Charged before the slow verify, so parallel guesses count at once.
        state.limiter.fail(*keys)
        user = state.users.get(username)
        stored_hash = user.password_hash if user else None
        if not await state.hasher.async_verify(stored_hash, body["password"]):
            return json_error(401, BAD_LOGIN)
        state.limiter.reset(*keys)
        return self._start_session(request, state, user.username, user.role)

    def _start_session(
        self, request: web.Request, state: AuthState, username: str, role: Role
    ) -> web.Response:
        # Whatever id the browser held before is dropped, never promoted.
        state.sessions.delete(request.cookies.get(COOKIE_NAME))
        session = state.sessions.create(username, role)
        response = web.json_response(_session_body(session))
        response.set_cookie(
            COOKIE_NAME,
            session.session_id,
            path="/",
            httponly=True,
            samesite="Strict",
            secure=state.settings.secure_cookies or request.secure,
        )
        return response

    async def current(self, request: web.Request) -> web.Response:
        """Who is logged in, with the CSRF token to send on changes."""
        session: Session | None = request[SESSION]
        if session is not None:
            return web.json_response(_session_body(session))
        caller: Caller = request[USER]
        return web.json_response(
            {"user": caller.username, "role": caller.role.label, "via": caller.via}
        )

    async def logout(self, request: web.Request) -> web.Response:
        """End the caller's session and clear its cookie."""
        request.app[AUTH].sessions.delete(request.cookies.get(COOKIE_NAME))
        response = web.Response(status=204)
        response.del_cookie(COOKIE_NAME, path="/")
        return response

    async def setup_status(self, request: web.Request) -> web.Response:
        """Whether the first admin still has to be created."""
        state = request.app[AUTH]
        return web.json_response({"needed": not state.users.has_admin()})

    @_input_errors
    async def setup(self, request: web.Request) -> web.Response:
        """Create the first admin with the one-time setup code."""
        state = request.app[AUTH]
        body = await _json_fields(request, "code", "username", "password")
        username = normalize_name(body["username"])
        password = check_password_policy(body["password"], username)
        key = ("setup", request.remote)
        wait_s = state.limiter.retry_after_s(key)
        if wait_s:
            return _too_many(wait_s)
        async with state.lock:
            if state.users.has_admin():
                return json_error(409, "setup is done; log in instead")
            if not setup_code.check_setup_code(state.data_dir, body["code"]):
                state.limiter.fail(key)
                return json_error(403, "wrong or expired setup code")
            password_hash = await state.hasher.async_hash(password)
            state.users.add(username, Role.ADMIN, password_hash)
            setup_code.discard_setup_code(state.data_dir)
        state.limiter.reset(key)
        self._record(request, "setup_admin", username)
        return self._start_session(request, state, username, Role.ADMIN)

    async def list_users(self, request: web.Request) -> web.Response:
        """Every account with its role."""
        users = request.app[AUTH].users.all()
        return web.json_response({"users": [user.public() for user in users]})

    @_input_errors
    async def create_user(self, request: web.Request) -> web.Response:
        """Create an account with a role."""
        state = request.app[AUTH]
        body = await _json_fields(request, "username", "password", "role")
        username = normalize_name(body["username"])
        role = Role.parse(body["role"])
        password = check_password_policy(body["password"], username)
        password_hash = await state.hasher.async_hash(password)
        async with state.lock:
            user = state.users.add(username, role, password_hash)
        self._record(request, "user_create", username, role=role.label)
        return web.json_response(user.public(), status=201)

    @_input_errors
    async def delete_user(self, request: web.Request) -> web.Response:
        """Delete an account (never the last admin) and end its sessions."""
        state = request.app[AUTH]
        username = request.match_info["username"]
        async with state.lock:
            if state.users.get(username) is None:
                return json_error(404, f"no user {username}")
            state.users.remove(username)
        state.sessions.delete_user(username)
        self._record(request, "user_delete", username)
        return web.Response(status=204)

    @_input_errors
    async def change_password(self, request: web.Request) -> web.Response:
        """Set a new password: one's own with the current one, anyone's as admin."""
        state = request.app[AUTH]
        caller: Caller = request[USER]
        username = request.match_info["username"]
        own = caller.via == "session" and caller.username == username
        if not own and not caller.at_least(Role.ADMIN):
            return json_error(403, "only an admin may change another user's password")
        user = state.users.get(username)
        if user is None:
            return json_error(404, f"no user {username}")
        body = await _json_fields(request, "password", optional=("current_password",))
        password = check_password_policy(body["password"], username)
        if own:
            refusal = await self._check_current_password(request, state, body)
            if refusal is not None:
                return refusal
        password_hash = await state.hasher.async_hash(password)
        async with state.lock:
            state.users.set_password_hash(username, password_hash)
        session = request[SESSION]
        state.sessions.delete_user(username, keep=session.session_id if own else None)
        self._record(request, "password_change" if own else "password_reset", username)
        return web.Response(status=204)

    async def _check_current_password(
        self, request: web.Request, state: AuthState, body: dict
    ) -> web.Response | None:
        """None if body["current_password"] is right, else the refusal to send."""
        username = request[USER].username
        key = ("user", username)
        wait_s = state.limiter.retry_after_s(key)
        if wait_s:
            return _too_many(wait_s)
        given = body.get("current_password")
        user = state.users.get(username)
        if not isinstance(given, str) or user is None:
            return json_error(403, "send the current password as current_password")
        state.limiter.fail(key)
        if not await state.hasher.async_verify(user.password_hash, given):
            return json_error(403, "current_password is wrong")
        state.limiter.reset(key)
        return None

    async def list_tokens(self, request: web.Request) -> web.Response:
        """Every API token's name and role (never the token itself)."""
        tokens = request.app[AUTH].tokens.all()
        return web.json_response({"tokens": [token.public() for token in tokens]})

    @_input_errors
    async def create_token(self, request: web.Request) -> web.Response:
        """Make an API token; the answer is the only place it ever appears."""
        state = request.app[AUTH]
        body = await _json_fields(request, "name", "role")
        name = normalize_name(body["name"], "token name")
        role = Role.parse(body["role"])
        async with state.lock:
            plain = state.tokens.create(name, role)
        self._record(request, "token_create", name, role=role.label)
        return web.json_response(
            {"name": name, "role": role.label, "token": plain}, status=201
        )

    async def delete_token(self, request: web.Request) -> web.Response:
        """Revoke an API token."""
        state = request.app[AUTH]
        name = request.match_info["name"]
        async with state.lock:
            removed = state.tokens.remove(name)
        if not removed:
            return json_error(404, f"no token {name}")
        self._record(request, "token_delete", name)
        return web.Response(status=204)


def _session_body(session: Session) -> dict:
    return {
        "user": session.username,
        "role": session.role.label,
        "csrf_token": session.csrf_token,
    }


def _too_many(wait_s: int) -> web.Response:
    return json_error(
        429,
        f"too many failed attempts; retry in {wait_s} s",
        {"Retry-After": str(wait_s)},
    )
