"""The dashboard's authentication, roles, CSRF and rate limiting, end to end."""

from __future__ import annotations

import json
import stat
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import nacl.pwhash.argon2id as argon2id
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from koprogo_node.web.auth import (
    AuthSettings,
    PasswordHasher,
    add_routes,
    auth_middleware,
    ensure_setup_code,
)
from koprogo_node.web.auth.setup_code import ALPHABET, CODE_FILE

VIEW = web.AppKey("view", object)
ADMIN_PASSWORD = "correct horse battery"
PASSWORD = "a long enough secret"


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now_s = 10_000.0

    def __call__(self) -> float:
        return self.now_s

    def advance(self, seconds: float) -> None:
        self.now_s += seconds


class FakeWriter:
    """Keeps the events the routes ask the ledger to chain."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str | None, dict]] = []

    def record_event(self, kind: str, sensor: str | None, detail: dict) -> None:
        self.events.append((kind, sensor, detail))


@dataclass
class FakeView:
    data_dir: Path
    writer: FakeWriter = field(default_factory=FakeWriter)
    config: SimpleNamespace = field(
        default_factory=lambda: SimpleNamespace(secure_cookies=False)
    )


@dataclass
class Node:
    """A running test app and what the tests poke at."""

    client: TestClient
    view: FakeView
    clock: FakeClock
    setup_code: str | None

    async def setup_admin(self, username: str = "syndic") -> str:
        """Create the first admin with the setup code; return its CSRF token."""
        response = await self.client.post(
            "/api/v1/setup",
            json={
                "code": self.setup_code,
                "username": username,
                "password": ADMIN_PASSWORD,
            },
        )
        assert response.status == 200, await response.text()
        return (await response.json())["csrf_token"]

    async def login(self, username: str, password: str) -> str:
        """Log in (replacing any session) and return the CSRF token."""
        response = await self.client.post(
            "/api/v1/session", json={"username": username, "password": password}
        )
        assert response.status == 200, await response.text()
        return (await response.json())["csrf_token"]

    async def add_user(self, csrf: str, username: str, role: str) -> None:
        """As the logged-in admin, create an account with PASSWORD."""
        response = await self.client.post(
            "/api/v1/users",
            json={"username": username, "password": PASSWORD, "role": role},
            headers={"X-CSRF-Token": csrf},
        )
        assert response.status == 201, await response.text()

    async def create_token(self, csrf: str, name: str, role: str) -> str:
        """As the logged-in admin, make an API token and return it."""
        response = await self.client.post(
            "/api/v1/tokens",
            json={"name": name, "role": role},
            headers={"X-CSRF-Token": csrf},
        )
        assert response.status == 201, await response.text()
        return (await response.json())["token"]

    async def status_with_only(self, session_id: str) -> int:
        """GET /api/v1/session presenting just this session id as the cookie."""
        self.client.session.cookie_jar.clear()
        response = await self.client.get(
            "/api/v1/session", cookies={"koprogo_session": session_id}
        )
        return response.status

    def session_id(self) -> str | None:
        """The session id the client's cookie jar holds, if any."""
        for cookie in self.client.session.cookie_jar:
            if cookie.key == "koprogo_session":
                return cookie.value
        return None


async def _ok(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


def _build_app(view: FakeView, clock: FakeClock, secure: bool) -> web.Application:
    app = web.Application(middlewares=[auth_middleware()])
    app[VIEW] = view
    fast = PasswordHasher(argon2id.OPSLIMIT_MIN, argon2id.MEMLIMIT_MIN)
    add_routes(app, VIEW, AuthSettings(secure_cookies=secure), clock=clock, hasher=fast)
    app.add_routes(
        [
            web.get("/api/v1/health", _ok),
            web.get("/api/v1/status", _ok),
            web.get("/api/v1/alerts", _ok),
            web.post("/api/v1/alerts/{alert_id}/ack", _ok),
            web.get("/api/v1/tech/diagnostics", _ok),
            web.get("/chart.svg", _ok),
        ]
    )
    return app


@pytest.fixture
async def make_node(tmp_path):
    """Start nodes on a fresh data dir; close them after the test."""
    clients = []

    async def make(secure: bool = False) -> Node:
        code = ensure_setup_code(tmp_path)
        view, clock = FakeView(tmp_path), FakeClock()
        client = TestClient(TestServer(_build_app(view, clock, secure)))
        await client.start_server()
        clients.append(client)
        return Node(client, view, clock, code)

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
async def node(make_node) -> Node:
    return await make_node()


@pytest.fixture
async def admin_node(node) -> tuple[Node, str]:
    """A node with an admin `syndic` logged in; yields it with the CSRF token."""
    return node, await node.setup_admin()


PROTECTED = [
    ("GET", "/api/v1/status"),
    ("GET", "/api/v1/alerts"),
    ("POST", "/api/v1/alerts/7/ack"),
    ("GET", "/api/v1/session"),
    ("DELETE", "/api/v1/session"),
    ("GET", "/api/v1/users"),
    ("POST", "/api/v1/users"),
    ("DELETE", "/api/v1/users/syndic"),
    ("POST", "/api/v1/users/syndic/password"),
    ("GET", "/api/v1/tokens"),
    ("POST", "/api/v1/tokens"),
    ("DELETE", "/api/v1/tokens/x"),
    ("GET", "/api/v1/tech/diagnostics"),
    ("GET", "/chart.svg"),
    ("GET", "/api/v1/not-a-route"),
]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
async def test_fresh_node_answers_401_on_protected_routes(node, method, path):
    """With no login, every protected route answers 401 JSON."""
    response = await node.client.request(method, path, json={})

    assert response.status == 401
    assert "error" in await response.json()


async def test_public_routes_need_no_login(node):
    """Health and the setup status are open to anyone."""
    health = await node.client.get("/api/v1/health")
    setup = await node.client.get("/api/v1/setup")

    assert health.status == 200
    assert {"needed": True} == await setup.json()


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("admin", "admin"),
        ("admin", "password"),
        ("admin", "koprogo123"),
        ("root", "root"),
        ("koprogo", "koprogo"),
    ],
)
async def test_fresh_node_has_no_default_credentials(node, username, password):
    """Common default logins fail on a fresh node."""
    response = await node.client.post(
        "/api/v1/session", json={"username": username, "password": password}
    )

    assert response.status == 401
    assert node.session_id() is None


async def test_setup_code_is_made_once_hashed_and_private(tmp_path):
    """The code uses the unambiguous alphabet, and only its hash reaches the disk."""
    code = ensure_setup_code(tmp_path)

    plain = code.replace("-", "")
    stored = (tmp_path / CODE_FILE).read_text()
    assert len(plain) >= 8 and set(plain) <= set(ALPHABET)
    assert plain not in stored and code not in stored
    assert 0o600 == stat.S_IMODE((tmp_path / CODE_FILE).stat().st_mode)


async def test_setup_rejects_a_wrong_code(node):
    """Without the right code no admin is created."""
    response = await node.client.post(
        "/api/v1/setup",
        json={"code": "AAAA-BBBB-CCCC", "username": "mallory", "password": PASSWORD},
    )

    assert response.status == 403
    assert {"needed": True} == await (await node.client.get("/api/v1/setup")).json()


async def test_setup_works_once_only(node, tmp_path):
    """The code makes the first admin, is deleted, and cannot be replayed."""
    await node.setup_admin()

    again = await node.client.post(
        "/api/v1/setup",
        json={"code": node.setup_code, "username": "other", "password": PASSWORD},
    )
    assert again.status == 409
    assert not (tmp_path / CODE_FILE).exists()
    assert ensure_setup_code(tmp_path) is None
    detail = {"by": "setup-code", "action": "setup_admin", "target": "syndic"}
    assert ("admin_action", None, detail) in node.view.writer.events


async def test_setup_code_accepts_lowercase_without_dashes(node):
    """The code is forgiving about case and grouping, as people type it."""
    code = node.setup_code.replace("-", "").lower()

    response = await node.client.post(
        "/api/v1/setup", json={"code": code, "username": "syndic", "password": PASSWORD}
    )

    assert response.status == 200


async def test_wrong_setup_codes_are_rate_limited(node):
    """After five wrong codes the sixth attempt gets 429 and Retry-After."""
    body = {"code": "WRONG", "username": "mallory", "password": PASSWORD}
    for _ in range(5):
        assert (await node.client.post("/api/v1/setup", json=body)).status == 403

    response = await node.client.post(
        "/api/v1/setup", json={**body, "code": node.setup_code}
    )

    assert response.status == 429
    assert response.headers["Retry-After"] == "1"


ROLE_CASES = [
    ("coowner", "GET", "/api/v1/status", 200),
    ("coowner", "GET", "/api/v1/alerts", 200),
    ("coowner", "GET", "/chart.svg", 200),
    ("coowner", "POST", "/api/v1/alerts/7/ack", 403),
    ("coowner", "GET", "/api/v1/tech/diagnostics", 403),
    ("coowner", "GET", "/api/v1/users", 403),
    ("coowner", "POST", "/api/v1/users", 403),
    ("coowner", "DELETE", "/api/v1/users/syndic", 403),
    ("coowner", "POST", "/api/v1/users/syndic/password", 403),
    ("coowner", "GET", "/api/v1/tokens", 403),
    ("coowner", "POST", "/api/v1/tokens", 403),
    ("technician", "GET", "/api/v1/tech/diagnostics", 200),
    ("technician", "GET", "/api/v1/status", 200),
    ("technician", "POST", "/api/v1/alerts/7/ack", 403),
    ("technician", "GET", "/api/v1/users", 403),
    ("technician", "POST", "/api/v1/users", 403),
    ("technician", "POST", "/api/v1/tokens", 403),
    ("admin", "GET", "/api/v1/tech/diagnostics", 200),
    ("admin", "POST", "/api/v1/alerts/7/ack", 200),
    ("admin", "GET", "/api/v1/users", 200),
    ("admin", "GET", "/api/v1/tokens", 200),
]


@pytest.mark.parametrize(("role", "method", "path", "expected"), ROLE_CASES)
async def test_role_boundaries(admin_node, role, method, path, expected):
    """Each role reaches what it may, and gets 403 JSON for the rest."""
    node, admin_csrf = admin_node
    await node.add_user(admin_csrf, "someone", role)
    csrf = await node.login("someone", PASSWORD)

    response = await node.client.request(method, path, headers={"X-CSRF-Token": csrf})

    assert response.status == expected
    assert response.content_type == "application/json"


async def test_admin_creates_users_and_tokens(admin_node):
    """An admin can create an account and an API token."""
    node, csrf = admin_node
    headers = {"X-CSRF-Token": csrf}

    user = await node.client.post(
        "/api/v1/users",
        json={"username": "tech", "password": PASSWORD, "role": "technician"},
        headers=headers,
    )
    token = await node.client.post(
        "/api/v1/tokens", json={"name": "grafana", "role": "coowner"}, headers=headers
    )

    assert user.status == 201 and token.status == 201
    listed = await (await node.client.get("/api/v1/users")).json()
    assert {"username": "tech", "role": "technician"} in listed["users"]


@pytest.mark.parametrize("token", [None, "", "not-the-token"])
async def test_csrf_missing_or_wrong_token_is_rejected(admin_node, token):
    """A cookie-authenticated change without the session's token gets 403."""
    node, _ = admin_node
    headers = {} if token is None else {"X-CSRF-Token": token}

    response = await node.client.post("/api/v1/alerts/7/ack", headers=headers)

    assert response.status == 403
    assert "CSRF" in (await response.json())["error"]


async def test_csrf_right_token_is_accepted(admin_node):
    """With the session's token the same change goes through."""
    node, csrf = admin_node

    response = await node.client.post(
        "/api/v1/alerts/7/ack", headers={"X-CSRF-Token": csrf}
    )

    assert response.status == 200


async def test_csrf_token_comes_back_from_get_session(admin_node):
    """GET /api/v1/session returns the same token the login gave."""
    node, csrf = admin_node

    body = await (await node.client.get("/api/v1/session")).json()

    assert {"user": "syndic", "role": "admin", "csrf_token": csrf} == body


async def test_csrf_foreign_origin_is_rejected(admin_node):
    """A right token from another site's page is still refused."""
    node, csrf = admin_node
    headers = {"X-CSRF-Token": csrf, "Origin": "http://evil.example"}

    response = await node.client.post("/api/v1/alerts/7/ack", headers=headers)

    assert response.status == 403
    assert "origin" in (await response.json())["error"]


async def test_csrf_same_origin_is_accepted(admin_node):
    """An Origin naming this host passes."""
    node, csrf = admin_node
    origin = str(node.client.make_url("/")).rstrip("/")
    headers = {"X-CSRF-Token": csrf, "Origin": origin}

    response = await node.client.post("/api/v1/alerts/7/ack", headers=headers)

    assert response.status == 200


async def test_bearer_token_is_exempt_from_csrf(admin_node):
    """An API token changes state with no CSRF header and no cookie."""
    node, csrf = admin_node
    token = await node.create_token(csrf, "bms", "admin")
    node.client.session.cookie_jar.clear()

    response = await node.client.post(
        "/api/v1/alerts/7/ack", headers={"Authorization": f"Bearer {token}"}
    )

    assert response.status == 200


async def test_bearer_token_role_is_enforced(admin_node):
    """A co-owner token reads but cannot change alerts."""
    node, csrf = admin_node
    token = await node.create_token(csrf, "wall-screen", "coowner")
    node.client.session.cookie_jar.clear()
    auth = {"Authorization": f"Bearer {token}"}

    read = await node.client.get("/api/v1/status", headers=auth)
    write = await node.client.post("/api/v1/alerts/7/ack", headers=auth)

    assert (200, 403) == (read.status, write.status)


async def test_unknown_bearer_token_is_rejected(node):
    """A made-up bearer token gets 401, even on a public route."""
    response = await node.client.get(
        "/api/v1/status", headers={"Authorization": "Bearer kpn_guess"}
    )

    assert response.status == 401


async def test_deleted_token_stops_working(admin_node, tmp_path):
    """A revoked token is refused; the clear token never reached the disk."""
    node, csrf = admin_node
    headers = {"X-CSRF-Token": csrf}
    created = await node.client.post(
        "/api/v1/tokens", json={"name": "bms", "role": "coowner"}, headers=headers
    )
    token = (await created.json())["token"]
    assert token not in (tmp_path / "tokens.json").read_text()

    deleted = await node.client.delete("/api/v1/tokens/bms", headers=headers)
    node.client.session.cookie_jar.clear()
    response = await node.client.get(
        "/api/v1/status", headers={"Authorization": f"Bearer {token}"}
    )

    assert (204, 401) == (deleted.status, response.status)


async def test_login_discards_a_pre_login_session_id(admin_node):
    """A cookie planted before login is replaced by a fresh id (no fixation)."""
    node, _ = admin_node
    planted = node.session_id()
    assert planted is not None

    await node.login("syndic", ADMIN_PASSWORD)

    assert node.session_id() not in (None, planted)
    assert 401 == await node.status_with_only(planted)


async def test_login_ignores_an_invented_session_id(admin_node):
    """An attacker-chosen id is never adopted as the session id."""
    node, _ = admin_node
    node.client.session.cookie_jar.clear()

    response = await node.client.post(
        "/api/v1/session",
        json={"username": "syndic", "password": ADMIN_PASSWORD},
        cookies={"koprogo_session": "chosen"},
    )

    assert response.cookies["koprogo_session"].value not in ("", "chosen")
    assert 401 == await node.status_with_only("chosen")


async def test_session_cookie_flags(make_node):
    """The cookie is HttpOnly, SameSite=Strict, Path=/ and Secure when asked."""
    node = await make_node(secure=True)

    response = await node.client.post(
        "/api/v1/setup",
        json={"code": node.setup_code, "username": "syndic", "password": PASSWORD},
    )

    header = response.headers["Set-Cookie"]
    for flag in ("HttpOnly", "SameSite=Strict", "Path=/", "Secure"):
        assert flag in header


async def test_session_cookie_not_secure_over_http_by_default(node):
    """Over plain HTTP without secure_cookies, the cookie is not marked Secure."""
    response = await node.client.post(
        "/api/v1/setup",
        json={"code": node.setup_code, "username": "syndic", "password": PASSWORD},
    )

    assert "Secure" not in response.headers["Set-Cookie"]


async def test_sixth_bad_login_gets_429_with_retry_after(admin_node):
    """Five failures lock the account out; even the right password waits."""
    node, _ = admin_node
    bad = {"username": "syndic", "password": "wrong password!"}
    for _ in range(5):
        assert (await node.client.post("/api/v1/session", json=bad)).status == 401

    response = await node.client.post(
        "/api/v1/session", json={**bad, "password": ADMIN_PASSWORD}
    )

    assert response.status == 429
    assert response.headers["Retry-After"] == "1"


async def test_lockout_doubles_then_success_resets(admin_node):
    """Each further failure doubles the wait; a success clears the count."""
    node, _ = admin_node
    bad = {"username": "syndic", "password": "wrong password!"}
    for _ in range(5):
        await node.client.post("/api/v1/session", json=bad)
    node.clock.advance(1)
    await node.client.post("/api/v1/session", json=bad)
    locked = await node.client.post("/api/v1/session", json=bad)
    assert locked.headers["Retry-After"] == "2"

    node.clock.advance(2)
    await node.login("syndic", ADMIN_PASSWORD)

    for _ in range(5):
        assert (await node.client.post("/api/v1/session", json=bad)).status == 401


async def test_lockout_is_per_ip_across_usernames(admin_node):
    """Spreading guesses over many usernames from one address still locks out."""
    node, _ = admin_node
    for index in range(5):
        await node.client.post(
            "/api/v1/session", json={"username": f"user{index}", "password": "x" * 10}
        )

    response = await node.client.post(
        "/api/v1/session", json={"username": "syndic", "password": ADMIN_PASSWORD}
    )

    assert response.status == 429


async def test_unknown_user_and_wrong_password_look_alike(admin_node):
    """The answer does not reveal whether the account exists."""
    node, _ = admin_node

    unknown = await node.client.post(
        "/api/v1/session", json={"username": "nobody", "password": "x" * 12}
    )
    wrong = await node.client.post(
        "/api/v1/session", json={"username": "syndic", "password": "x" * 12}
    )

    assert (unknown.status, await unknown.json()) == (wrong.status, await wrong.json())


async def test_logout_invalidates_the_session(admin_node):
    """After logout the old session id no longer authenticates."""
    node, csrf = admin_node
    old_id = node.session_id()

    response = await node.client.delete(
        "/api/v1/session", headers={"X-CSRF-Token": csrf}
    )

    assert response.status == 204
    assert 401 == await node.status_with_only(old_id)


async def test_idle_session_expires(admin_node):
    """Eight idle hours end a session."""
    node, _ = admin_node

    node.clock.advance(8 * 3600)

    assert (await node.client.get("/api/v1/session")).status == 401


async def test_activity_keeps_a_session_alive_until_the_absolute_limit(admin_node):
    """Use resets the idle clock, but not past the absolute timeout."""
    node, _ = admin_node
    for _ in range(5):
        node.clock.advance(4 * 3600)
        assert (await node.client.get("/api/v1/session")).status == 200

    node.clock.advance(4 * 3600)

    assert (await node.client.get("/api/v1/session")).status == 401


async def test_last_admin_cannot_be_deleted(admin_node):
    """Deleting the only admin is refused with 409; with two it works."""
    node, csrf = admin_node
    headers = {"X-CSRF-Token": csrf}

    refused = await node.client.delete("/api/v1/users/syndic", headers=headers)
    await node.add_user(csrf, "deputy", "admin")
    allowed = await node.client.delete("/api/v1/users/deputy", headers=headers)

    assert (409, 204) == (refused.status, allowed.status)


async def test_deleted_user_is_logged_out(admin_node):
    """Deleting an account ends its live sessions."""
    node, csrf = admin_node
    await node.add_user(csrf, "owner", "coowner")
    admin_id = node.session_id()
    node.client.session.cookie_jar.clear()
    await node.login("owner", PASSWORD)
    owner_id = node.session_id()
    assert 200 == await node.status_with_only(owner_id)

    deleted = await node.client.delete(
        "/api/v1/users/owner",
        headers={"X-CSRF-Token": csrf},
        cookies={"koprogo_session": admin_id},
    )

    assert deleted.status == 204
    assert 401 == await node.status_with_only(owner_id)


async def test_data_files_are_private(admin_node, tmp_path):
    """users.json and tokens.json are readable by the owner only."""
    node, csrf = admin_node
    await node.create_token(csrf, "bms", "coowner")

    for name in ("users.json", "tokens.json"):
        assert 0o600 == stat.S_IMODE((tmp_path / name).stat().st_mode)


async def test_passwords_never_stored_or_recorded(admin_node, tmp_path):
    """Neither users.json nor the ledger events contain a password."""
    node, csrf = admin_node
    await node.add_user(csrf, "owner", "coowner")
    await node.client.post(
        "/api/v1/users/owner/password",
        json={"password": "another long secret"},
        headers={"X-CSRF-Token": csrf},
    )

    stored = (tmp_path / "users.json").read_text()
    recorded = json.dumps(node.view.writer.events)
    for secret in (ADMIN_PASSWORD, PASSWORD, "another long secret"):
        assert secret not in stored and secret not in recorded
    assert "$argon2id$" in stored


async def test_admin_actions_are_recorded(admin_node):
    """Creating and deleting accounts and tokens is chained as admin_action."""
    node, csrf = admin_node
    headers = {"X-CSRF-Token": csrf}
    await node.add_user(csrf, "owner", "coowner")
    await node.client.delete("/api/v1/users/owner", headers=headers)
    await node.client.post(
        "/api/v1/tokens", json={"name": "bms", "role": "coowner"}, headers=headers
    )
    await node.client.delete("/api/v1/tokens/bms", headers=headers)

    actions = [
        (e[2]["by"], e[2]["action"], e[2]["target"]) for e in node.view.writer.events
    ]

    assert [
        ("setup-code", "setup_admin", "syndic"),
        ("syndic", "user_create", "owner"),
        ("syndic", "user_delete", "owner"),
        ("syndic", "token_create", "bms"),
        ("syndic", "token_delete", "bms"),
    ] == actions


async def test_own_password_change_needs_the_current_password(admin_node):
    """A co-owner changes their own password only with the current one."""
    node, csrf = admin_node
    await node.add_user(csrf, "owner", "coowner")
    csrf = await node.login("owner", PASSWORD)
    headers = {"X-CSRF-Token": csrf}
    path = "/api/v1/users/owner/password"

    without = await node.client.post(
        path, json={"password": "a new long secret"}, headers=headers
    )
    wrong = await node.client.post(
        path,
        json={"password": "a new long secret", "current_password": "nope nope!"},
        headers=headers,
    )
    right = await node.client.post(
        path,
        json={"password": "a new long secret", "current_password": PASSWORD},
        headers=headers,
    )

    assert (403, 403, 204) == (without.status, wrong.status, right.status)
    assert await node.login("owner", "a new long secret")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"username": "ok-name", "password": "short", "role": "coowner"}, 400),
        ({"username": "x", "password": PASSWORD, "role": "coowner"}, 400),
        ({"username": "bad name!", "password": PASSWORD, "role": "coowner"}, 400),
        ({"username": "ok-name", "password": PASSWORD, "role": "root"}, 400),
        ({"username": "ok-name", "password": "ok-name", "role": "coowner"}, 400),
        ({"username": "ok-name", "role": "coowner"}, 400),
        # A field the endpoint does not know is refused, not ignored.
        ({"username": "ok-name", "password": PASSWORD, "role": "coowner", "x": 1}, 400),
        ({"username": "syndic", "password": PASSWORD, "role": "coowner"}, 409),
    ],
)
async def test_user_creation_validates_input(admin_node, body, expected):
    """Bad names, short passwords, unknown roles and duplicates are refused."""
    node, csrf = admin_node

    response = await node.client.post(
        "/api/v1/users", json=body, headers={"X-CSRF-Token": csrf}
    )

    assert response.status == expected
    assert "error" in await response.json()


async def test_users_survive_a_restart(admin_node, make_node):
    """Accounts are read back from users.json by a new app."""
    node, csrf = admin_node
    await node.add_user(csrf, "owner", "coowner")

    restarted = await make_node()

    assert restarted.setup_code is None
    assert await restarted.login("owner", PASSWORD)


def test_default_hasher_uses_argon2id_interactive_limits():
    """Real deployments hash with argon2id at the interactive cost."""
    hasher = PasswordHasher()

    stored = hasher.hash_sync(PASSWORD)

    assert stored.startswith("$argon2id$") and "m=65536,t=2" in stored
    assert hasher.verify_sync(stored, PASSWORD)
    assert not hasher.verify_sync(stored, "wrong password")
    assert not hasher.verify_sync(None, "not a real password")


async def test_admin_resets_another_users_password(admin_node):
    """An admin sets a new password without the old one; old sessions end."""
    node, csrf = admin_node
    await node.add_user(csrf, "owner", "coowner")

    response = await node.client.post(
        "/api/v1/users/owner/password",
        json={"password": "a fresh long secret"},
        headers={"X-CSRF-Token": csrf},
    )

    assert response.status == 204
    assert await node.login("owner", "a fresh long secret")
    assert node.view.writer.events[-1][2]["action"] == "password_reset"


async def test_token_actions_are_recorded_with_the_token_name(admin_node):
    """An action taken with an API token names the token as its author."""
    node, csrf = admin_node
    token = await node.create_token(csrf, "bms", "admin")
    node.client.session.cookie_jar.clear()

    await node.client.post(
        "/api/v1/tokens",
        json={"name": "other", "role": "coowner"},
        headers={"Authorization": f"Bearer {token}"},
    )

    assert "token:bms" == node.view.writer.events[-1][2]["by"]
