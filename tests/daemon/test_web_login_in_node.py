"""A real daemon's dashboard needs a login, has no default one, and prints a
one-time setup code; local tools still read it through the local token."""

import json
import re
import urllib.error
import urllib.request

import pytest

from .conftest import cli, free_port, start_node, wait_for_event

pytestmark = pytest.mark.slow


def request(url, body=None, headers=None, method=None):
    """(status, JSON body, response headers) of one HTTP exchange."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, json.load(response), response.headers
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc), exc.headers


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    root = tmp_path_factory.mktemp("login")
    port = free_port()
    config = root / "node.toml"
    config.write_text(f"""
[time]
trust = "always"
[web]
port = {port}
[log]
format = "json"
[[sources]]
type = "simulated"
name = "sim"
lots = 10
speed = 600.0
emit = "readings"
""")
    log_path = root / "node.log"
    proc = start_node(config, root / "data", log_path)
    wait_for_event(log_path, "web_listening")
    yield {"base": f"http://127.0.0.1:{port}", "log": log_path, "data": root / "data"}
    proc.terminate()
    proc.wait(timeout=20)


def test_reads_need_a_login_and_no_default_account_exists(node):
    """Anonymous reads get 401; usual default logins are refused."""
    status, body, _ = request(f"{node['base']}/api/v1/status")
    logins = [
        request(f"{node['base']}/api/v1/session", {"username": u, "password": p})[0]
        for u, p in (("admin", "admin"), ("demo", "demo"), ("root", "koprogo"))
    ]

    assert status == 401 and "log in" in body["error"]
    assert all(code in (401, 429) for code in logins)


def test_the_setup_code_makes_the_first_admin_once(node):
    """The code printed at start creates an admin, who can then read."""
    printed = node["log"].read_text()
    code = re.search(r"One-time setup code: (\S+)", printed).group(1)
    admin = {"code": code, "username": "syndic", "password": "correct horse 42"}

    first, _, _ = request(f"{node['base']}/api/v1/setup", admin)
    again, _, _ = request(f"{node['base']}/api/v1/setup", admin)
    login = {"username": "syndic", "password": "correct horse 42"}
    status, session, headers = request(f"{node['base']}/api/v1/session", login)
    cookie = headers["Set-Cookie"].split(";")[0]
    read, body, _ = request(f"{node['base']}/api/v1/status", headers={"Cookie": cookie})

    assert first == 200 and again in (400, 403, 409, 429)
    assert status == 200 and session["role"] == "admin"
    assert "HttpOnly" in headers["Set-Cookie"]
    assert "SameSite=Strict" in headers["Set-Cookie"]
    assert read == 200 and body["node"]["building_id"]


def test_local_tools_read_the_live_api_with_the_local_token(node):
    """`status` reads the daemon's live figures without any login."""
    result = cli("status", "--json", "--data-dir", str(node["data"]))

    report = json.loads(result.stdout)
    assert report["daemon"]["running"] is True
    assert report["live"]["node"]["clock_trusted"] is True
