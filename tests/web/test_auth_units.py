"""The auth building blocks on their own: lock-out maths, route table, stores."""

from __future__ import annotations

import stat

import pytest

from koprogo_node.web.auth import PUBLIC, ROUTE_ROLES, Role, required_role
from koprogo_node.web.auth.ratelimit import FailureLimiter
from koprogo_node.web.auth.sessions import SessionStore
from koprogo_node.web.auth.setup_code import (
    CODE_FILE,
    check_setup_code,
    ensure_setup_code,
)
from koprogo_node.web.auth.tokens import TokenStore
from koprogo_node.web.auth.users import Conflict, InvalidInput, UserStore


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now_s = 500.0

    def __call__(self) -> float:
        return self.now_s


def test_lockout_doubles_up_to_fifteen_minutes():
    """1 s after five failures, then 2, 4, ... capped at 900 s."""
    clock = FakeClock()
    limiter = FailureLimiter(clock)
    waits = []

    for _ in range(20):
        limiter.fail("k")
        waits.append(limiter.retry_after_s("k"))

    assert [0, 0, 0, 0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900] == waits[:15]
    assert 900 == waits[-1]


def test_lockout_ends_and_reset_clears():
    """The wait runs out with time, and a success forgets the failures."""
    clock = FakeClock()
    limiter = FailureLimiter(clock)
    for _ in range(6):
        limiter.fail("k")

    clock.now_s += 2
    assert 0 == limiter.retry_after_s("k")
    limiter.reset("k")
    limiter.fail("k")

    assert 0 == limiter.retry_after_s("k")


def test_limiter_memory_is_bounded():
    """A flood of distinct keys never grows the table past max_keys."""
    limiter = FailureLimiter(FakeClock(), max_keys=100)

    for index in range(1000):
        limiter.fail(("user", f"u{index}"))

    assert len(limiter._failures) <= 100


ROUTE_CASES = [
    ("GET", "/api/v1/health", PUBLIC),
    ("GET", "/api/v1/openapi.json", PUBLIC),
    ("POST", "/api/v1/setup", PUBLIC),
    ("POST", "/api/v1/session", PUBLIC),
    ("GET", "/api/v1/session", Role.COOWNER),
    ("DELETE", "/api/v1/session", Role.COOWNER),
    ("GET", "/api/v1/status", Role.COOWNER),
    ("HEAD", "/api/v1/readings", Role.COOWNER),
    ("GET", "/api/v1/alerts/{alert_id}", Role.COOWNER),
    ("POST", "/api/v1/alerts/{alert_id}/ack", Role.ADMIN),
    ("PATCH", "/api/v1/alerts", Role.ADMIN),
    ("GET", "/api/v1/users", Role.ADMIN),
    ("DELETE", "/api/v1/users/{username}", Role.ADMIN),
    ("POST", "/api/v1/users/{username}/password", Role.COOWNER),
    ("GET", "/api/v1/tokens", Role.ADMIN),
    ("GET", "/api/v1/peers/{peer_id}", Role.TECHNICIAN),
    ("PUT", "/api/v1/settings", Role.ADMIN),
    ("POST", "/api/v1/alerts/{alert_id}/note", Role.ADMIN),
    ("GET", "/api/v1/settings", Role.COOWNER),
    ("GET", "/login", PUBLIC),
    ("GET", "/static", PUBLIC),  # the canonical path of every static file
    ("GET", "/", Role.COOWNER),
    ("GET", "/history", Role.COOWNER),
    ("GET", "/alerts", Role.COOWNER),
    ("GET", "/comparison", Role.COOWNER),
    ("GET", "/network", Role.TECHNICIAN),
    ("GET", "/settings", Role.ADMIN),
    ("GET", "/chart.svg", Role.COOWNER),
    ("POST", "/somewhere/new", Role.ADMIN),
]


@pytest.mark.parametrize(("method", "path", "expected"), ROUTE_CASES)
def test_route_table(method, path, expected):
    """Each route needs the role the table promises."""
    assert expected == required_role(ROUTE_ROLES, method, path)


def test_session_ids_are_random_and_long():
    """Ids and CSRF tokens are unique 43-character URL-safe strings."""
    store = SessionStore(FakeClock(), 60, 120)

    sessions = [store.create("u", Role.COOWNER) for _ in range(50)]

    ids = {s.session_id for s in sessions} | {s.csrf_token for s in sessions}
    assert 100 == len(ids)
    assert all(len(value) >= 43 for value in ids)


def test_user_store_refuses_duplicates_and_last_admin(tmp_path):
    """A taken name and deleting the only admin both raise Conflict."""
    store = UserStore(tmp_path)
    store.add("boss", Role.ADMIN, "$argon2id$x")

    with pytest.raises(Conflict):
        store.add("boss", Role.COOWNER, "$argon2id$y")
    with pytest.raises(Conflict):
        store.remove("boss")


def test_user_store_is_atomic_and_private(tmp_path):
    """users.json is 0600 and no temporary file is left behind."""
    store = UserStore(tmp_path)

    store.add("boss", Role.ADMIN, "$argon2id$x")

    assert ["users.json"] == [p.name for p in tmp_path.iterdir()]
    assert 0o600 == stat.S_IMODE((tmp_path / "users.json").stat().st_mode)
    assert Role.ADMIN == UserStore(tmp_path).get("boss").role


def test_role_parse_rejects_unknown_names():
    """Only the three role names are accepted."""
    with pytest.raises(InvalidInput):
        Role.parse("public")


def test_tokens_are_found_by_clear_text_only(tmp_path):
    """A token is found by its clear text, which is never written down."""
    store = TokenStore(tmp_path)

    plain = store.create("bms", Role.TECHNICIAN)

    assert "bms" == TokenStore(tmp_path).find(plain).name
    assert TokenStore(tmp_path).find(plain + "x") is None
    assert plain not in (tmp_path / "tokens.json").read_text()


def test_new_setup_code_replaces_the_old(tmp_path):
    """Each start without an admin makes a fresh code; the old one stops working."""
    first = ensure_setup_code(tmp_path)

    second = ensure_setup_code(tmp_path)

    assert not check_setup_code(tmp_path, first) or first == second
    assert check_setup_code(tmp_path, second)


def test_setup_code_removed_once_an_admin_exists(tmp_path):
    """With an admin, no code is made and a stale code file is deleted."""
    ensure_setup_code(tmp_path)
    UserStore(tmp_path).add("boss", Role.ADMIN, "$argon2id$x")

    assert ensure_setup_code(tmp_path) is None
    assert not (tmp_path / CODE_FILE).exists()
