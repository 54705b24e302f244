"""The OpenAPI document is valid and describes what a live node answers."""

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import jsonschema
import pytest
from openapi_spec_validator import validate

from koprogo_node.config.model import Config, WebConfig
from koprogo_node.web.app import start_web
from koprogo_node.web.local_token import read_local_token
from koprogo_node.web.openapi import add_routes, openapi_document

CLI = [sys.executable, "-m", "koprogo_node.cli"]
SCHEMATHESIS_CONFIG = """
# from < to and a range of at most 400 days cannot be said in a schema
[[operations]]
include-path = "/api/v1/readings"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "404"]
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fetch(url: str) -> tuple[int, dict]:
    """GET `url`; its status and JSON body, errors included."""
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory) -> Path:
    """The demo's folder: its log, and its data directory as `data/`."""
    return tmp_path_factory.mktemp("demo")


@pytest.fixture(scope="module")
def demo(demo_dir):
    """Base URL of a `koprogo-node demo` with some rolled-up history."""
    port = free_port()
    data_dir = demo_dir
    log = (data_dir / "demo.log").open("w")
    process = subprocess.Popen(
        [*CLI, "demo", "--duration", "300", "--port", str(port)]
        + ["--data-dir", str(data_dir / "data")],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for_history(base, process)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def _wait_for_history(base: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"demo exited with {process.returncode}")
        try:
            sensor = _a_counter(base)
            if all(_history(base, sensor, step) for step in ("1h", "1d")):
                return
        except (OSError, LookupError):
            pass
        time.sleep(0.5)
    raise RuntimeError("demo had no hourly and daily rollups after 60 s")


def _a_counter(base: str) -> dict:
    sensors = fetch(f"{base}/api/v1/sensors")[1]["sensors"]
    counters = [s for s in sensors if s["kind"] == "counter" and s["last_ts_ms"]]
    return counters[0]


def _history(base: str, sensor: dict, step: str) -> list:
    """The sensor's last five days at `step`."""
    return fetch(_history_url(base, sensor, step))[1]["readings"]


def _history_url(base: str, sensor: dict, step: str) -> str:
    to_s = sensor["last_ts_ms"] // 1000 + 1
    query = f"sensor={sensor['name']}&step={step}&from={to_s - 5 * 86400}&to={to_s}"
    return f"{base}/api/v1/readings?{query}"


def response_validator(path: str, status: int) -> jsonschema.Draft202012Validator:
    """A validator for the JSON body the document promises for `status`."""
    document = openapi_document()
    response = document["paths"][path]["get"]["responses"][str(status)]
    schema = response["content"]["application/json"]["schema"]
    # Refs point at #/components, so the components travel with the schema.
    root = {"allOf": [schema], "components": document["components"]}
    return jsonschema.Draft202012Validator(root)


def test_document_is_valid_openapi_3_1():
    """openapi-spec-validator accepts the document as OpenAPI 3.1."""
    document = openapi_document()

    validate(document)

    assert "3.1.0" == document["openapi"]


async def test_every_api_route_of_the_app_is_documented(tmp_path):
    """Each /api/v1 route the dashboard registers has a documented operation."""
    view = SimpleNamespace(data_dir=tmp_path, control_socket=tmp_path / "c.sock")
    config = Config(web=WebConfig(host="127.0.0.1", port=0))
    runner, _ = await start_web(view, config)
    try:
        routes = {
            (r.method.lower(), path)
            for r in runner.app.router.routes()
            # aiohttp adds a HEAD to every GET by itself
            if r.resource.canonical.startswith("/api/v1/")
            and r.method != "HEAD"
            and r.resource.canonical != "/api/v1/openapi.json"  # not itself
            for path in _concrete(r.resource.canonical)
        }
    finally:
        await runner.cleanup()
    paths = openapi_document()["paths"]

    documented = {(m, p) for p, ops in paths.items() for m in ops}

    assert routes
    assert set() == routes - documented


def _concrete(canonical: str) -> list[str]:
    """The alert action route is documented as one path per action."""
    if canonical.endswith("/{action}"):
        return [canonical.replace("{action}", a) for a in ("ack", "resolve", "note")]
    return [canonical]


def test_only_login_and_setup_are_open_to_anonymous_callers():
    """Every operation needs a cookie or a token but logging in and setting up."""
    document = openapi_document()
    public = {
        (path, method)
        for path, ops in document["paths"].items()
        for method, op in ops.items()
        if op.get("security") == []
    }

    assert [{"cookieAuth": []}, {"bearerAuth": []}] == document["security"]
    assert {"cookieAuth", "bearerAuth"} == set(
        document["components"]["securitySchemes"]
    )
    assert {
        ("/api/v1/session", "post"),
        ("/api/v1/setup", "get"),
        ("/api/v1/setup", "post"),
    } == public


def test_auth_endpoints_are_tagged_auth():
    """The login, user, token and alert-changing endpoints carry the auth tag."""
    paths = openapi_document()["paths"]
    tagged = {
        (path, method)
        for path, ops in paths.items()
        for method, op in ops.items()
        if op["tags"] == ["auth"]
    }

    assert 17 == len(tagged)
    assert ("/api/v1/alerts/{alert_id}/ack", "post") in tagged
    assert ("/api/v1/tokens/{name}", "delete") in tagged


async def test_document_is_served_as_json():
    """GET /api/v1/openapi.json returns the document."""
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    app = web.Application()
    add_routes(app)

    async with TestClient(TestServer(app)) as client:
        answer = await client.get("/api/v1/openapi.json")
        body = await answer.json()

    assert 200 == answer.status
    assert openapi_document() == body


LIVE_CASES = [
    ("/api/v1/status", "", 200),
    ("/api/v1/sensors", "", 200),
    ("/api/v1/building", "", 200),
    ("/api/v1/peers", "", 200),
    ("/api/v1/peers/{peer_id}", "12D3KooWnobody", 404),
    ("/api/v1/neighbours", "", 200),
    ("/api/v1/neighbours", "?tier=day", 200),
    ("/api/v1/neighbours", "?tier=week", 400),
    ("/api/v1/alerts", "", 200),
    ("/api/v1/alerts", "?state=active", 200),
    ("/api/v1/alerts", "?state=closed", 400),
    ("/api/v1/alerts/{alert_id}", "no-such-alert", 404),
    ("/api/v1/readings", "", 400),
    ("/api/v1/readings", "?sensor=no.such.sensor", 404),
    ("/api/v1/readings", "?sensor={sensor}&step=2h", 400),
    ("/api/v1/readings", "?sensor={sensor}&from=yesterday", 400),
    ("/api/v1/readings", "?sensor={sensor}&from=2000&to=1000", 400),
]


@pytest.mark.parametrize(("path", "query", "status"), LIVE_CASES)
def test_live_answer_matches_the_document(demo, path, query, status):
    """What the demo node answers validates against the documented schema."""
    sensor = _a_counter(demo)["name"]
    url = demo + path.split("{")[0] + query.format(sensor=sensor)

    got, body = fetch(url)

    assert status == got
    response_validator(path, status).validate(body)


@pytest.mark.parametrize("step", ["raw", "15m", "1h", "1d"])
def test_live_readings_match_the_document_at_every_step(demo, step):
    """Raw readings and each rollup shape validate, and none is empty."""
    sensor = _a_counter(demo)

    got, body = fetch(_history_url(demo, sensor, step))

    assert 200 == got
    assert body["readings"]
    response_validator("/api/v1/readings", 200).validate(body)


ODD_QUERIES = [
    ("?sensor={sensor}&to=inf", 400),  # a number, but no time
    ("?sensor={sensor}&from=1e400", 400),
    ("?sensor=a%22b%5C", 404),  # a quote and a backslash in the name
]


@pytest.mark.parametrize(("query", "status"), ODD_QUERIES)
def test_odd_queries_get_documented_answers(demo, query, status):
    """Out-of-range times and odd sensor names give clean JSON errors."""
    url = f"{demo}/api/v1/readings" + query.format(sensor=_a_counter(demo)["name"])

    got, body = fetch(url)

    assert status == got
    response_validator("/api/v1/readings", status).validate(body)


def test_schemathesis_finds_nothing_on_read_endpoints(demo, demo_dir, tmp_path):
    """Schemathesis' checks pass on every documented GET (auth ones excluded)."""
    token = read_local_token(demo_dir / "data")

    result = _schemathesis(
        demo,
        tmp_path,
        token,
        ["--include-method", "GET", "--exclude-tag", "auth", "--seed", "1"],
    )

    found = set(re.findall(r"^- (ST\d+) ", result.stdout, re.MULTILINE))
    assert found == set(), result.stdout[-4000:]
    assert result.returncode == 0, result.stdout[-4000:]


# Last in the module: it changes the demo's settings, users and tokens.
def test_schemathesis_finds_nothing_on_any_endpoint_as_admin(demo, demo_dir, tmp_path):
    """Every method of every operation, changes included, with an admin token.

    Two operations stay out: deleting a token (the fuzzer finds and deletes
    its own) and the session (it logs itself out); the auth tests cover both.
    """
    token = _admin_token(demo, demo_dir)

    result = _schemathesis(
        demo,
        tmp_path,
        token,
        ["--seed", "2", "--exclude-path", "/api/v1/session"]
        + ["--exclude-path-regex", "^/api/v1/tokens/\\{name\\}$"],
    )

    found = set(re.findall(r"^- (ST\d+) ", result.stdout, re.MULTILINE))
    assert found == set(), result.stdout[-4000:]
    assert "Selected: 23/27" in result.stdout, result.stdout[-2000:]
    assert result.returncode == 0, result.stdout[-4000:]


def _schemathesis(base: str, tmp_path: Path, token: str, options: list[str]):
    schema = tmp_path / "openapi.json"
    schema.write_text(json.dumps(openapi_document()))
    config = tmp_path / "schemathesis.toml"
    config.write_text(SCHEMATHESIS_CONFIG)
    schemathesis = Path(sys.executable).with_name("schemathesis")
    return subprocess.run(
        [str(schemathesis), "--config-file", str(config), "--no-color", "run"]
        + [str(schema), "--url", base, "--checks", "all", *options]
        + ["-H", f"Authorization: Bearer {token}"]
        + ["--generation-with-security-parameters", "false"]
        # The demo opens every read to anonymous callers (web.anonymous_read).
        + ["--exclude-checks", "ignored_auth"]
        + ["--max-examples", "40", "--report-dir", str(tmp_path / "reports")],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "SCHEMATHESIS_HOOKS": ""},
    )


def _admin_token(base: str, demo_dir: Path) -> str:
    """Log in with the credentials the demo printed; make an admin API token."""
    printed = (demo_dir / "demo.log").read_text()
    password = re.search(r"dashboard admin: demo / (\S+)", printed).group(1)
    login = _post(base + "/api/v1/session", {"username": "demo", "password": password})
    cookie = login.headers["Set-Cookie"].split(";")[0]
    csrf = json.load(login)["csrf_token"]
    made = _post(
        base + "/api/v1/tokens",
        {"name": "fuzzer", "role": "admin"},
        {"Cookie": cookie, "X-CSRF-Token": csrf},
    )
    return json.load(made)["token"]


def _post(url: str, body: dict, headers: dict | None = None):
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    return urllib.request.urlopen(request, timeout=10)
