"""The daemon's lifecycle: systemd notifications, clean stop, bad config."""

import signal
import socket
import sqlite3

from .conftest import cli, log_events, start_node, wait_for_event, write_config


def test_sigterm_drains_queue_and_notifies_systemd(node_dir, tmp_path):
    """READY and STOPPING reach NOTIFY_SOCKET; SIGTERM commits what was queued."""
    config, data = node_dir
    write_config(config)
    notify_path = tmp_path / "notify.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(notify_path))
    listener.settimeout(20)
    log_path = tmp_path / "node.log"
    proc = start_node(
        config,
        data,
        log_path,
        env={"NOTIFY_SOCKET": str(notify_path), "WATCHDOG_USEC": "2000000"},
    )

    messages = {listener.recv(256).decode() for _ in range(2)}
    wait_for_event(log_path, "block_committed", readings=1)
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=20)
    while "STOPPING=1" not in messages:
        messages.add(listener.recv(256).decode())
    listener.close()

    assert code == 0
    assert {"READY=1", "WATCHDOG=1", "STOPPING=1"} <= messages
    stopped = log_events(log_path, "node_stopped")[0]
    con = sqlite3.connect(data / "ledger.db")
    stored = con.execute("SELECT count(*) FROM readings").fetchone()[0]
    con.close()
    assert stored == stopped["committed"] > 0


def test_second_daemon_on_same_directory_is_refused(node_dir, tmp_path):
    """A second writer on one data directory exits 3 with a clear message."""
    config, data = node_dir
    write_config(config)
    first = start_node(config, data, tmp_path / "first.log")
    wait_for_event(tmp_path / "first.log", "node_started")

    second = cli("run", "--config", str(config), "--data-dir", str(data))
    first.send_signal(signal.SIGTERM)
    first.wait(timeout=20)

    assert second.returncode == 3
    assert "in use by another koprogo-node" in second.stderr
    assert "Traceback" not in second.stderr


def test_invalid_config_fails_with_key_path(tmp_path):
    """An invalid file stops `run` and `config validate` with exit 2 and the key."""
    bad = tmp_path / "node.toml"
    bad.write_text("[ledger]\nbatch_ms = 'soon'\n")

    validate = cli("config", "validate", str(bad))
    run = cli("run", "--config", str(bad), "--data-dir", str(tmp_path / "d"))

    for result in (validate, run):
        assert result.returncode == 2
        assert "ledger.batch_ms: expected an integer, got 'soon'" in result.stderr
        assert "Traceback" not in result.stderr


def test_port_in_use_fails_fast_with_a_sentence(node_dir, tmp_path):
    """A busy web port ends `run` with exit 3 and one line, not a hang."""
    config, data = node_dir
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        write_config(config, web=True, extra="")
        text = config.read_text().replace("port = ", f"port = {port}  # was ", 1)
        config.write_text(text)

        result = cli(
            "run", "--config", str(config), "--data-dir", str(data), "--duration", "30"
        )

    assert result.returncode == 3
    assert f"cannot serve the dashboard on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_data_dir_that_is_a_file_is_refused(tmp_path):
    """A data directory that is really a file gives exit 3 and a sentence."""
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")

    result = cli("run", "--data-dir", str(not_a_dir), "--duration", "1")

    assert result.returncode == 3
    assert f"cannot use data directory {not_a_dir}" in result.stderr
    assert "Traceback" not in result.stderr
