"""Every read command, with --json, against a running and a stopped daemon."""

import json
import os
import subprocess

import pytest

from ..daemon.conftest import CLI, cli, start_node, wait_for_event, write_config

READ_COMMANDS = [
    ["status"],
    ["doctor"],
    ["sensors", "list"],
    ["peers", "list"],
    ["alerts", "list"],
    ["keys", "show"],
    ["config", "show"],
    ["ledger", "verify"],
    ["models", "list"],
    ["sensors", "profiles"],
]
DOCTOR_CODES = {0, 1, 4}  # all OK, a FAIL, warnings only


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    """A daemon that can be stopped and started again by the tests."""
    root = tmp_path_factory.mktemp("every")
    config, data, log = root / "node.toml", root / "data", root / "node.log"
    write_config(config, speed=60.0)
    proc = start_node(config, data, log)
    wait_for_event(log, "block_committed", height=2)
    yield {"config": config, "data": data, "proc": proc, "log": log}
    proc.terminate()
    proc.wait(timeout=20)


def run_json(node, command):
    where = ["--config", str(node["config"]), "--data-dir", str(node["data"])]
    done = cli(*where, *command, "--json")
    assert "Traceback" not in done.stderr, done.stderr
    expected = DOCTOR_CODES if command == ["doctor"] else {0}
    assert done.returncode in expected, (command, done.returncode, done.stderr)
    return json.loads(done.stdout)


@pytest.mark.parametrize("command", READ_COMMANDS, ids=" ".join)
def test_read_commands_answer_in_json_with_the_daemon_running(node, command):
    assert node["proc"].poll() is None
    answer = run_json(node, command)

    assert isinstance(answer, (dict, list))


def test_read_commands_answer_in_json_with_the_daemon_stopped(node):
    node["proc"].terminate()
    node["proc"].wait(timeout=20)

    answers = {" ".join(c): run_json(node, c) for c in READ_COMMANDS}

    assert answers["status"]["daemon"]["running"] is False
    assert answers["sensors list"]["sources"][0]["state"] == "daemon down"
    assert answers["ledger verify"]["ok"] is True
    assert answers["peers list"]["live"] is False


def test_help_of_every_command_has_an_example():
    """Each leaf command's --help shows at least one example line."""
    from koprogo_node.cli.main import cli as root

    missing = []
    for path, command in _leaves(root, []):
        done = subprocess.run(
            [*CLI, *path, "--help"], capture_output=True, text=True, timeout=60
        )
        assert 0 == done.returncode, (path, done.stderr)
        if "Example" not in done.stdout and command.help is not None:
            missing.append(" ".join(path))

    assert [] == missing, missing


def _leaves(group, prefix):
    for name, command in sorted(getattr(group, "commands", {}).items()):
        if getattr(command, "hidden", False):
            continue
        if hasattr(command, "commands"):
            yield from _leaves(command, [*prefix, name])
        else:
            yield [*prefix, name], command


def test_bash_completion_completes_commands_and_subcommands():
    script = cli("completion", "bash")
    env = {**os.environ, "_KOPROGO_NODE_COMPLETE": "bash_complete"}

    def complete(words: str, index: int) -> list[str]:
        done = subprocess.run(
            [*CLI],
            env={**env, "COMP_WORDS": words, "COMP_CWORD": str(index)},
            capture_output=True,
            text=True,
        )
        return [line.split(",", 1)[1] for line in done.stdout.splitlines()]

    assert 0 == script.returncode
    assert "_KOPROGO_NODE_COMPLETE=bash_complete" in script.stdout
    assert ["doctor"] == complete("koprogo-node doc", 1)
    assert {"backup", "restore", "verify", "export"} <= set(
        complete("koprogo-node ledger ", 2)
    )
