"""A real `koprogo-node run` with a leaking simulated building, and a browser-
like HTTP client (cookies, CSRF header, no automatic redirects)."""

from __future__ import annotations

import http.cookiejar
import json
import re
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from ..daemon.conftest import free_port, start_node, wait_for_event

ADMIN = ("syndic", "correct horse 42")


def write_node_config(path: Path, web_port: int) -> Path:
    """Login required; water leak from the 30th simulated hour; fast checks."""
    path.write_text(f"""
[node]
building_id = "pages"
name = "Résidence des Tests"
[time]
trust = "always"
[ledger]
batch_ms = 300
[log]
format = "json"
[web]
port = {web_port}
[alerts]
check_every_s = 1.0
water_min_history_days = 1
[[sources]]
type = "simulated"
name = "sim"
lots = 12
speed = 7200.0
step_s = 300.0
start = "2026-11-02T00:00:00+01:00"
emit = "readings"
water_leak_l_per_h = 40.0
water_leak_start_h = 30.0
""")
    return path


@dataclass
class RunningNode:
    """A started daemon: where it listens, logs and keeps its data."""

    base: str
    log: Path
    data: Path
    config: Path
    process: object = None

    def setup_code(self) -> str:
        return re.search(r"One-time setup code: (\S+)", self.log.read_text()).group(1)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=20)

    def start(self) -> None:
        self.log.write_text("")
        self.process = start_node(self.config, self.data, self.log)
        wait_for_event(self.log, "web_listening", timeout_s=60)


def start_leaky_node(root: Path) -> RunningNode:
    port = free_port()
    node = RunningNode(
        base=f"http://127.0.0.1:{port}",
        log=root / "node.log",
        data=root / "data",
        config=write_node_config(root / "node.toml", port),
    )
    node.start()
    return node


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


@dataclass
class Answer:
    status: int
    headers: dict
    text: str

    def json(self):
        return json.loads(self.text)


@dataclass
class Browser:
    """Keeps cookies like a browser and sends the CSRF token on changes."""

    base: str
    accept_language: str = "en"
    csrf: str = ""
    token: str = ""  # an API token, sent as a bearer instead of cookies
    jar: http.cookiejar.CookieJar = field(default_factory=http.cookiejar.CookieJar)

    def __post_init__(self) -> None:
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect()
        )

    def page(self, path: str) -> Answer:
        return self.call("GET", path, accept="text/html")

    def call(self, method: str, path: str, body=None, accept="application/json"):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Accept", accept)
        request.add_header("Accept-Language", self.accept_language)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self.csrf:
            request.add_header("X-CSRF-Token", self.csrf)
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with self.opener.open(request, timeout=10) as response:
                return Answer(response.status, dict(response.headers), _text(response))
        except urllib.error.HTTPError as exc:
            return Answer(exc.code, dict(exc.headers), _text(exc))

    def login(self, username: str, password: str) -> Answer:
        answer = self.call(
            "POST", "/api/v1/session", {"username": username, "password": password}
        )
        if answer.status == 200:
            self.csrf = answer.json()["csrf_token"]
        return answer


def _text(response) -> str:
    return response.read().decode("utf-8", errors="replace")
