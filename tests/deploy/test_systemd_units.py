"""The service unit passes systemd's own checks: verify, and an exposure
score of at most 2.0 from `systemd-analyze security --offline=true`."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNITS = Path(__file__).parents[2] / "systemd"
UNIT = UNITS / "koprogo-node.service"
INSTALLED_AT = "/opt/koprogo-node/venv/bin/koprogo-node"
ANALYZE = shutil.which("systemd-analyze")

pytestmark = pytest.mark.skipif(
    ANALYZE is None, reason="systemd-analyze is not installed (apt-get install systemd)"
)


def analyze(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([ANALYZE, *args], capture_output=True, text=True, timeout=120)


def test_every_unit_verifies(tmp_path):
    """As installed, but started from this checkout's entry point, which exists."""
    here = Path(sys.executable).parent / "koprogo-node"
    units = sorted(UNITS.glob("*.service")) + sorted(UNITS.glob("*.timer"))
    for unit in units:
        text = unit.read_text().replace(INSTALLED_AT, str(here))
        (tmp_path / unit.name).write_text(text)

    done = analyze("verify", *(str(tmp_path / u.name) for u in units))

    assert len(units) >= 3
    assert 0 == done.returncode, done.stderr
    assert "" == done.stderr.strip()


# First boot (and adding SSH keys) runs as root to write /etc and grow the
# disk, once; the services that run every day are the ones held to the score.
AS_ROOT = {
    UNITS / "koprogo-node-firstboot.service",
    UNITS / "koprogo-node-keys.service",
}
DAILY = sorted(set(UNITS.glob("*.service")) - AS_ROOT)


@pytest.mark.parametrize("unit", DAILY, ids=lambda p: p.name)
def test_each_services_exposure_score_is_at_most_2(unit):
    done = analyze("security", "--offline=true", "--threshold=20", str(unit))

    score = re.search(r"Overall exposure level for \S+: ([\d.]+)", done.stdout)
    assert score is not None, done.stdout[-500:] + done.stderr
    assert float(score.group(1)) <= 2.0


def test_the_hardening_the_node_relies_on_is_there():
    directives = dict(
        line.split("=", 1)
        for line in UNIT.read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )

    assert "notify" == directives["Type"]
    assert "koprogo" == directives["User"]
    assert "koprogo-node" == directives["StateDirectory"]
    assert "strict" == directives["ProtectSystem"]
    assert "" == directives["CapabilityBoundingSet"]
    assert "closed" == directives["DevicePolicy"]
    assert int(directives["WatchdogSec"]) > 0
    assert INSTALLED_AT in directives["ExecStart"]


def test_first_boot_runs_once_before_what_needs_its_secrets():
    unit = (UNITS / "koprogo-node-firstboot.service").read_text()
    before = " ".join(
        line.split("=", 1)[1]
        for line in unit.splitlines()
        if line.startswith("Before=")
    ).split()

    condition = "ConditionPathExists=!/var/lib/koprogo-node/provisioned.json"
    assert condition in unit.splitlines()
    for needs_secrets in ("koprogo-node.service", "mosquitto.service", "ssh.service"):
        assert needs_secrets in before
