"""Three real daemons federate on loopback: peers, aggregates, bans, ledger."""

import json
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from ..daemon.conftest import CLI, cli, free_port

pytestmark = pytest.mark.slow
NODES = 3
DEMO_S = 75


def get_json(url):
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def wait_until(predicate, timeout_s, what):
    """Poll `predicate` until it returns something truthy; return that."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            found = predicate()
        except (OSError, ValueError, KeyError):
            found = None
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def connected(base):
    peers = get_json(f"{base}/api/v1/peers")["peers"]
    return {p["peer_id"] for p in peers if p["connected"]}


@pytest.fixture(scope="module")
def federation(tmp_path_factory):
    """`demo --nodes 3`, and what it served while running."""
    data = tmp_path_factory.mktemp("federation") / "data"
    port = free_port() // 10 * 10
    log = (data.parent / "demo.log").open("w")
    proc = subprocess.Popen(
        [*CLI, "demo", "--nodes", str(NODES), "--duration", str(DEMO_S)]
        + ["--data-dir", str(data), "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    bases = [f"http://127.0.0.1:{port + i}" for i in range(NODES)]
    try:
        result = _observe(data, bases)
    finally:
        code = proc.wait(timeout=DEMO_S + 60)
    result["code"] = code
    result["log"] = (data.parent / "demo.log").read_text()
    result["data"] = data
    return result


def _observe(data, bases):
    ids = [
        wait_until(
            lambda b=b: get_json(f"{b}/api/v1/status")["node"]["peer_id"], 60, f"{b} up"
        )
        for b in bases
    ]
    meshed = [
        wait_until(
            lambda b=b: len(connected(b)) == NODES - 1 and connected(b),
            60,
            f"{b} connected to both others",
        )
        for b in bases
    ]
    neighbours = [
        wait_until(lambda b=b: _others_with_values(b), 60, f"{b} aggregates")
        for b in bases
    ]
    status = get_json(f"{bases[0]}/api/v1/status")
    banned = _ban_round_trip(data / "node1", bases[0], ids[1])
    return {
        "ids": ids,
        "meshed": meshed,
        "neighbours": neighbours,
        "status": status,
        **banned,
    }


def _others_with_values(base):
    buildings = get_json(f"{base}/api/v1/neighbours?tier=hour")["buildings"]
    others = [b for b in buildings if not b["self"] and b["values"]]
    return others if len(others) == NODES - 1 else None


def _ban_round_trip(node_dir, base, victim):
    cli("peers", "ban", victim, "--data-dir", str(node_dir))
    wait_until(lambda: victim not in connected(base), 20, "ban to disconnect")
    while_banned = get_json(f"{base}/api/v1/peers/{victim}")
    listed = json.loads(
        cli("peers", "list", "--json", "--data-dir", str(node_dir)).stdout
    )
    cli("peers", "unban", victim, "--data-dir", str(node_dir))
    wait_until(lambda: victim in connected(base), 60, "unbanned peer to return")
    return {"while_banned": while_banned, "listed_live": listed}


def test_each_node_connects_to_the_two_others(federation):
    """Every daemon lists the other two peer ids as connected."""
    ids = federation["ids"]

    assert len(set(ids)) == NODES
    for i, peers in enumerate(federation["meshed"]):
        assert peers == set(ids) - {ids[i]}


def test_each_node_stores_the_others_aggregates(federation):
    """Hourly figures per lot from both neighbours reach each node's API."""
    for i, others in enumerate(federation["neighbours"]):
        origins = {b["peer_id"] for b in others}
        assert origins == set(federation["ids"]) - {federation["ids"][i]}
        for building in others:
            water = building["values"]["water"]  # the building's main meter
            assert water["unit"] == "m3"
            assert 0 < water["per_lot"] < 0.2  # m³ per flat in an hour
            assert water["per_m2"] == pytest.approx(water["per_lot"] / 78, rel=1e-4)
            assert building["meta"]["lots_band"] == "20-49"
            assert "lot01" not in json.dumps(building)


def test_status_counts_what_was_published_and_withheld(federation):
    """The privacy gate's verdicts are visible: published, withheld by reason."""
    summary = federation["status"]["federation"]

    assert summary["peer_id"] == federation["ids"][0]
    assert summary["published"] > 0
    # Few flats have solar panels: their export never passes the k-threshold.
    assert summary["withheld"]["electricity_export:too_few_lots"] > 0


def test_a_ban_disconnects_and_an_unban_lets_the_peer_back(federation):
    """`peers ban` cuts the peer off on the running daemon; `unban` restores it."""
    assert federation["while_banned"]["banned"] is True
    assert federation["while_banned"]["connected"] is False
    assert federation["listed_live"]["live"] is True


def test_the_demo_exits_cleanly_and_every_ledger_verifies(federation):
    """All three daemons stop at --duration; remote aggregates verify."""
    assert federation["code"] == 0, federation["log"][-3000:]
    assert "Traceback" not in federation["log"]
    for i in range(NODES):
        node_dir = federation["data"] / f"node{i + 1}"
        verdict = cli("ledger", "verify", "--data-dir", str(node_dir))
        assert verdict.returncode == 0, verdict.stdout + verdict.stderr


def test_peers_list_reads_the_ledger_when_the_daemon_is_down(federation):
    """With the daemons stopped, peers come from the stored aggregates."""
    node_dir = federation["data"] / "node2"
    result = cli("peers", "list", "--json", "--data-dir", str(node_dir))

    report = json.loads(result.stdout)
    ids = federation["ids"]
    assert report["live"] is False
    assert {p["peer_id"] for p in report["peers"]} == {ids[0], ids[2]}
    assert all(p["messages"] > 0 for p in report["peers"])
