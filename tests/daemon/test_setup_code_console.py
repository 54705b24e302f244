"""The one-time setup code reaches the console's login screen and the login
page of a browser on the node itself, never a browser on the network."""

import re
import socket
import urllib.request

import pytest

from .conftest import free_port, start_node, wait_for_event
from .test_web_login_in_node import request

pytestmark = pytest.mark.slow


def lan_address() -> str | None:
    """An address of this machine that is not loopback, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent for UDP connect
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") else address


def login_page(base: str) -> str:
    with urllib.request.urlopen(f"{base}/login", timeout=10) as answer:
        return answer.read().decode()


@pytest.fixture
def node(tmp_path):
    port = free_port()
    config = tmp_path / "node.toml"
    config.write_text(f"""
[time]
trust = "always"
[web]
host = "0.0.0.0"
port = {port}
[log]
format = "json"
[[sources]]
type = "simulated"
name = "sim"
lots = 10
emit = "readings"
""")
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o750)
    log_path = tmp_path / "node.log"
    proc = start_node(
        config, tmp_path / "data", log_path, env={"RUNTIME_DIRECTORY": str(runtime)}
    )
    wait_for_event(log_path, "web_listening")
    code = re.search(r"One-time setup code: (\S+)", log_path.read_text()).group(1)
    yield {"port": port, "code": code, "console": runtime / "setup-code.issue"}
    proc.terminate()
    proc.wait(timeout=20)


def test_the_console_shows_the_code_with_the_dashboards_address(node):
    issue = node["console"]

    text = issue.read_text()

    assert node["code"] in text
    assert f"http://\\4:{node['port']}/" in text  # agetty puts the address in
    assert 0o600 == issue.stat().st_mode & 0o777


def test_only_a_browser_on_the_node_itself_sees_the_code(node):
    address = lan_address()
    if address is None:
        pytest.skip("this machine has no address besides loopback")

    here = login_page(f"http://127.0.0.1:{node['port']}")
    there = login_page(f"http://{address}:{node['port']}")

    assert f'<strong id="setup-code">{node["code"]}</strong>' in here
    assert node["code"] not in there
    assert 'id="setup"' in there and "console" in there


def test_the_code_leaves_the_console_once_the_admin_exists(node):
    base = f"http://127.0.0.1:{node['port']}"
    admin = {"code": node["code"], "username": "syndic", "password": "correct horse 42"}

    status, _, _ = request(f"{base}/api/v1/setup", admin)

    assert 200 == status
    assert not node["console"].exists()
    assert node["code"] not in login_page(base)
