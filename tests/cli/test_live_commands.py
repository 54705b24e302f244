"""The CLI against a running daemon, through its control socket, and stopped."""

import grp
import json
import os
import shutil
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from koprogo_node.cli.daemon_client import call

from ..daemon.conftest import CLI, cli, start_node, wait_for_event, write_config


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    """A daemon with its web server off: the CLI reaches it on the socket only."""
    root = tmp_path_factory.mktemp("live")
    config, data, log = root / "node.toml", root / "data", root / "node.log"
    write_config(config, speed=60.0)
    proc = start_node(config, data, log)
    wait_for_event(log, "block_committed", height=2)
    yield config, data, log
    proc.terminate()
    proc.wait(timeout=20)


def args(config, data, *more):
    return [*more, "--config", str(config), "--data-dir", str(data)]


def test_control_socket_is_private_to_root_and_its_group(running):
    _, data, log = running
    path = data / "control.sock"

    mode = os.stat(path).st_mode

    assert stat.S_ISSOCK(mode)
    assert 0o660 == stat.S_IMODE(mode)
    assert str(path) == json.loads((data / "node.json").read_text())["control_socket"]
    assert wait_for_event(log, "control_socket_listening")["path"] == str(path)


def test_the_socket_acts_as_the_local_admin(running):
    """No token or cookie: whoever may open the socket may manage accounts."""
    _, data, _ = running

    status, users = call(data, "GET", "/api/v1/users")

    assert 200 == status
    assert "users" in users


def test_status_reads_the_live_daemon(running):
    config, data, _ = running

    done = cli(*args(config, data, "status", "--json"))
    report = json.loads(done.stdout)
    text = cli(*args(config, data, "status")).stdout

    assert 0 == done.returncode
    assert report["daemon"]["running"] and report["daemon"]["answering"]
    assert report["daemon"]["uptime_s"] > 0
    assert report["live"]["ingest"]["committed_total"] > 0
    assert {"enabled": False} == report["peers"]
    assert [] == report["alerts"]
    assert "up " in text and "readings/s" in text and "federation off" in text


def test_sensors_list_shows_the_daemon_state(running):
    config, data, _ = running

    rows = json.loads(cli(*args(config, data, "sensors", "list", "--json")).stdout)
    text = cli(*args(config, data, "sensors", "list")).stdout

    assert [("sim", "simulated", "running", 52)] == [
        (r["name"], r["type"], r["state"], r["channels"]) for r in rows["sources"]
    ]
    assert "running" in text.splitlines()[1]


def test_sensors_test_sees_fresh_readings_through_the_daemon(running):
    config, data, _ = running

    done = cli(
        *args(config, data, "sensors", "test", "sim", "--seconds", "10", "--json")
    )
    result = json.loads(done.stdout)

    assert 0 == done.returncode
    assert "daemon" == result["via"]
    assert "sim.water" in {r["sensor"] for r in result["readings"]}


def test_sensors_test_names_unknown_sources_and_missing_devices(running, tmp_path):
    config, data, _ = running
    p1 = tmp_path / "p1.toml"
    p1.write_text('[[sources]]\ntype = "p1"\nname = "p1"\npath = "/dev/ttyNONE"\n')

    unknown = cli(*args(config, data, "sensors", "test", "nope"))
    missing = cli(
        *args(p1, tmp_path / "empty", "sensors", "test", "p1", "--seconds", "2")
    )

    assert 2 == unknown.returncode
    assert "no source 'nope'" in unknown.stderr and "sim" in unknown.stderr
    assert 3 == missing.returncode
    assert "FAIL  p1: cannot open P1 port /dev/ttyNONE" in missing.stdout
    assert "Traceback" not in missing.stderr + unknown.stderr


def test_a_too_long_socket_path_leaves_the_node_running(tmp_path):
    config, data, log = tmp_path / "node.toml", tmp_path / "data", tmp_path / "n.log"
    write_config(config, extra=f'[control]\nsocket = "{tmp_path / ("x" * 120)}"\n')
    # [control] after [[sources]] would belong to the source: put it first.
    text = config.read_text()
    config.write_text(text[text.index("[control]") :] + text[: text.index("[control]")])
    proc = start_node(config, data, log)
    try:
        event = wait_for_event(log, "control_socket_unavailable")
        wait_for_event(log, "block_committed", height=1)
        report = json.loads(cli(*args(config, data, "status", "--json")).stdout)
    finally:
        proc.terminate()
        proc.wait(timeout=20)

    assert "longer than a Unix socket path may be" in event["reason"]
    assert report["daemon"]["running"] and not report["daemon"]["answering"]


def test_commands_read_the_data_directory_when_the_daemon_is_down(tmp_path):
    config, data, log = tmp_path / "node.toml", tmp_path / "data", tmp_path / "n.log"
    write_config(config, speed=60.0)
    proc = start_node(config, data, log)
    wait_for_event(log, "block_committed", height=2)
    proc.terminate()
    proc.wait(timeout=20)

    status = json.loads(cli(*args(config, data, "status", "--json")).stdout)
    listed = json.loads(cli(*args(config, data, "sensors", "list", "--json")).stdout)
    tested = cli(
        *args(config, data, "sensors", "test", "sim", "--seconds", "2", "--json")
    )

    assert not status["daemon"]["running"] and status["live"] is None
    assert "daemon down" == listed["sources"][0]["state"]
    assert 52 == listed["sources"][0]["channels"]
    assert 0 == tested.returncode
    assert "device" == json.loads(tested.stdout)["via"]
    assert not (data / "control.sock").exists()


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_readings_tail_follows_new_readings_in_a_terminal(running, tmp_path):
    """Run `readings tail` in tmux and read new lines back off its screen."""
    config, data, _ = running
    session = f"tail-{os.getpid()}"
    command = " ".join(
        [
            *CLI,
            *args(config, data, "readings", "tail", "--sensor", "sim.water", "-n", "2"),
        ]
    )
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", "160", "-y", "50", command],
        check=True,
    )
    try:
        first = _screen_lines(session, at_least=4)  # 2 stored, a note, 1 live
        later = _screen_lines(session, at_least=len(first) + 2)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], check=False)

    notes = [line for line in later if line.startswith("--")]
    shown = [line for line in later if not line.startswith("--")]
    assert ["-- live, as the daemon receives them"] == [n[:36] for n in notes]
    assert all("sim.water" in line and " m3 " in line for line in shown)
    assert first == later[: len(first)]
    assert len(later) >= len(first) + 2


def _screen_lines(session: str, at_least: int, timeout_s: float = 30.0) -> list[str]:
    """The non-empty lines tmux shows, once there are `at_least` of them."""
    deadline = time.monotonic() + timeout_s
    lines: list[str] = []
    while time.monotonic() < deadline:
        shown = subprocess.run(
            ["tmux", "capture-pane", "-p", "-t", session],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        lines = [line for line in shown.splitlines() if line.strip()]
        if len(lines) >= at_least:
            return lines
        time.sleep(0.5)
    raise AssertionError(f"only {len(lines)} lines on screen: {lines}")


def test_tail_streams_live_readings_and_outlives_the_daemon(tmp_path):
    """Live lines arrive before any commit; a stopped daemon ends the stream."""
    config, data, log = tmp_path / "node.toml", tmp_path / "data", tmp_path / "n.log"
    write_config(config, speed=60.0, web=True)
    text = config.read_text().replace("batch_ms = 200", "batch_ms = 60000")
    config.write_text(text)  # a minute between commits: live lines come first
    proc = start_node(config, data, log)
    wait_for_event(log, "node_started")
    port = int(text.split("port = ")[1].split()[0])
    tail = subprocess.Popen(
        [*CLI, *args(config, data, "readings", "tail", "--json", "-n", "0")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = [json.loads(tail.stdout.readline()) for _ in range(3)]
        over_tcp = _http_status(f"http://127.0.0.1:{port}/local/readings/live")
        started = time.monotonic()
        proc.terminate()
        proc.wait(timeout=30)
        stopping_s = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
        tail.terminate()
        _, stderr = tail.communicate(timeout=10)

    assert all(line["committed"] is False for line in first)
    assert {"sensor", "ts", "value", "unit", "quality"} <= set(first[0])
    assert 404 == over_tcp  # a technician's tool: on the socket only
    assert stopping_s < 10  # an open tail does not hold the daemon up
    assert "the daemon stopped: following the ledger" in stderr


def _http_status(url: str) -> int:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.mark.skipif(os.geteuid() != 0, reason="changing users needs root")
def test_only_the_sockets_group_may_connect(tmp_path):
    """`nobody` is refused; `nobody` with the socket's group gets in."""
    # pytest's folders are private to root: put the socket where `nobody`
    # can reach it, so that only the socket's own mode decides.
    public = Path(tempfile.mkdtemp(prefix="koprogo-sock-", dir="/tmp"))
    public.chmod(0o755)
    path = public / "control.sock"
    config, data, log = tmp_path / "node.toml", tmp_path / "data", tmp_path / "n.log"
    write_config(config, speed=60.0)
    control = f'[control]\nsocket = "{path}"\ngroup = "daemon"\n'
    config.write_text(control + config.read_text())
    proc = start_node(config, data, log)
    try:
        wait_for_event(log, "control_socket_listening", timeout_s=30)
        owner_gid = os.stat(path).st_gid
        outsider = _connect_as(path, "nobody")
        member = _connect_as(path, "nobody", group="daemon")
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        shutil.rmtree(public, ignore_errors=True)

    assert grp.getgrnam("daemon").gr_gid == owner_gid
    assert "PermissionError" in outsider
    assert "connected" == member


def _connect_as(path, user: str, group: str | None = None) -> str:
    """Try to open the socket as another user; say what happened."""
    probe = (
        "import socket, sys\n"
        "s = socket.socket(socket.AF_UNIX)\n"
        "try:\n"
        f"    s.connect({str(path)!r}); print('connected')\n"
        "except OSError as exc:\n"
        "    print(type(exc).__name__)\n"
    )
    who = ["runuser", "-u", user, *(["-g", group] if group else []), "--"]
    done = subprocess.run(
        [*who, "python3", "-c", probe], capture_output=True, text=True, timeout=30
    )
    return done.stdout.strip() or done.stderr.strip()


def test_tail_leaves_no_gap_between_the_ledger_and_the_live_stream(tmp_path):
    """Readings received but not yet committed when tail starts are shown too."""
    config, data, log = tmp_path / "node.toml", tmp_path / "data", tmp_path / "n.log"
    write_config(config, speed=60.0)
    text = config.read_text().replace("batch_ms = 200", "batch_ms = 3000")
    config.write_text(text)
    proc = start_node(config, data, log)
    try:
        wait_for_event(log, "block_committed", height=2)
        time.sleep(1.5)  # some readings now wait for the next commit
        tail = subprocess.Popen(
            [*CLI, *args(config, data, "readings", "tail", "--json", "-n", "3")],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        shown = [json.loads(tail.stdout.readline()) for _ in range(300)]
        tail.terminate()
        tail.wait(timeout=10)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    stored = cli(*args(config, data, "ledger", "export", "--format", "jsonl"))
    water = [json.loads(x) for x in stored.stdout.splitlines()]
    water = [r["ts_ms"] for r in water if r["sensor"] == "sim.water"]

    seen = [r["ts_ms"] for r in shown if r["sensor"] == "sim.water"]
    expected = [ts for ts in water if seen[0] <= ts <= seen[-1]]
    assert len(seen) > 5
    assert expected == seen  # every stored reading in that span, once, in order
