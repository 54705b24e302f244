"""The demo as a newcomer runs it: P1 over pseudo-terminals into a verified ledger."""

import json
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from koprogo_node.web.local_token import read_local_token

from ..daemon.conftest import CLI, cli, free_port

DEMO_S = 25


def get_json(url, token=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)


def wait_up(url, timeout_s=30):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            return get_json(url)
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.3)
    raise AssertionError(f"{url} never answered")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """Run the demo once for the module; keep what it served while running."""
    data = tmp_path_factory.mktemp("demo") / "data"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [
            *CLI,
            "demo",
            "--duration",
            str(DEMO_S),
            "--data-dir",
            str(data),
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    wait_up(f"{base}/api/v1/status")
    time.sleep(8)
    # Apartments' meters are for technicians: read as the CLI does.
    technician = read_local_token(data)
    served = {
        "status": get_json(f"{base}/api/v1/status"),
        "sensors": get_json(f"{base}/api/v1/sensors", technician),
        "anonymous_sensors": get_json(f"{base}/api/v1/sensors"),
        "building": get_json(f"{base}/api/v1/building"),
        "water": get_json(f"{base}/api/v1/readings?sensor=sim.common.water&step=raw"),
        "page": urllib.request.urlopen(f"{base}/", timeout=5).read().decode(),
        "chart": urllib.request.urlopen(f"{base}/chart.svg", timeout=10).read(),
        "bad": _error(f"{base}/api/v1/readings?sensor=sim.common.water&step=2m"),
        # No --config: the CLI reads the file the demo wrote for its daemon.
        "sources": json.loads(
            cli("sensors", "list", "--json", "--data-dir", str(data)).stdout
        ),
    }
    output, _ = proc.communicate(timeout=DEMO_S + 30)
    return {"data": data, "code": proc.returncode, "output": output, **served}


def _error(url):
    try:
        urllib.request.urlopen(url, timeout=5)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)
    raise AssertionError("expected an HTTP error")


def test_demo_exits_zero_without_traceback(demo):
    """The demo stops by itself after --duration, cleanly."""
    assert demo["code"] == 0
    assert "Traceback" not in demo["output"]
    assert "readings committed" in demo["output"]


def test_every_meter_arrives_through_p1(demo):
    """Each flat's and the common meter's channels were read from their terminals."""
    names = {s["name"] for s in demo["sensors"]["sensors"]}

    for lot in range(1, 13):  # the default 12 lots
        assert f"sim.lot{lot:02d}.import_t1" in names
    assert {"sim.common.water", "sim.common.gas", "replay.machine_temperature"} <= names
    anonymous = {s["name"] for s in demo["anonymous_sensors"]["sensors"]}
    assert "sim.common.water" in anonymous and "sim.lot01.import_t1" not in anonymous
    p1_sources = [s for s in demo["status"]["sources"] if s["name"].startswith("sim.")]
    assert len(p1_sources) == 13
    assert all(s["state"] == "running" for s in p1_sources)


def test_api_serves_live_totals_and_readings(demo):
    """Status, building totals and readings answer with real figures."""
    assert demo["status"]["ingest"]["committed_total"] > 1000
    assert demo["status"]["ledger"]["height"] > 3
    assert demo["building"]["today"]["electricity_import"] > 0
    assert demo["building"]["power_kw"] > 0
    water = demo["water"]["readings"]
    assert len(water) > 100
    assert all(b["value"] >= a["value"] for a, b in zip(water, water[1:]))


def test_page_and_chart_are_self_contained(demo):
    """The page is HTML with no external resource, and the chart is SVG."""
    assert "<html" in demo["page"]
    assert "http://" not in demo["page"] and "https://" not in demo["page"]
    assert demo["chart"].lstrip().startswith(b"<?xml")
    assert b"<svg" in demo["chart"]


def test_bad_query_is_a_clear_400(demo):
    """A bad parameter gets a 400 with a sentence, not a server error."""
    code, body = demo["bad"]

    assert code == 400
    assert "step must be one of" in body["error"]


def test_ledger_verifies_and_exports(demo):
    """After the demo, verify says OK and export gives every reading."""
    data = str(demo["data"])

    verdict = cli("ledger", "verify", "--data-dir", data)
    exported = cli("ledger", "export", "--data-dir", data, "--format", "csv")

    assert verdict.returncode == 0 and verdict.stdout.startswith("OK")
    rows = exported.stdout.strip().splitlines()
    assert rows[0].startswith("id,block,sensor,kind,unit,ts")
    assert len(rows) - 1 == int(verdict.stdout.split(",")[1].split()[0])


def test_the_cli_finds_the_demos_own_configuration(demo):
    states = {s["name"]: s["state"] for s in demo["sources"]["sources"]}

    assert {"sim": "running", "replay": "running"} == {
        name: states.get(name) for name in ("sim", "replay")
    }
