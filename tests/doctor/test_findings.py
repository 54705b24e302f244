"""Judging the raw figures: storage wear and the systemd unit's state."""

import os

import pytest

from koprogo_node.doctor import wear
from koprogo_node.doctor.checks import unit_finding, wear_finding
from koprogo_node.doctor.probes import parse_properties
from koprogo_node.doctor.result import Level, worst
from koprogo_node.doctor.result import ok as ok_finding

DAY_S = 86_400
# /sys/block/<dev>/stat: the seventh field counts 512-byte sectors written.
STAT = "55892 8930 4389090 42205 28938 32309 {written} 19708 0 18100 64705"
CARD_32GB = 32_000_000_000 // 512


def stat_with(written_bytes: int) -> str:
    return STAT.format(written=written_bytes // 512)


def test_write_rate_is_bytes_written_per_day_of_uptime():
    found = wear.estimate("mmcblk0", stat_with(2_000_000_000), CARD_32GB, 2 * DAY_S)

    assert 1e9 == pytest.approx(found.bytes_per_day)
    assert 32e9 * wear.CARD_WRITE_CYCLES / 1e9 / 365.25 == pytest.approx(
        found.years_left
    )


@pytest.mark.parametrize(
    ("gb_per_day", "level"),
    [(0.5, Level.OK), (10.0, Level.WARN), (50.0, Level.FAIL)],
)
def test_a_card_written_faster_is_judged_worse(gb_per_day, level):
    """32 GB x 500 writes: 0.5 GB/day lasts 88 years, 10 GB 4.4, 50 GB 0.9."""
    written = int(gb_per_day * 1e9)
    found = wear.estimate("mmcblk0", stat_with(written), CARD_32GB, DAY_S)

    assert level == wear_finding(found).level


def test_emmc_own_wear_figure_wins_over_the_write_rate():
    found = wear.estimate("mmcblk0", stat_with(0), CARD_32GB, DAY_S, "0x0a 0x02\n")

    finding = wear_finding(found)

    assert 100 == found.emmc_used_percent
    assert Level.FAIL == finding.level
    assert "100 % of its life used" in finding.detail


def test_nothing_written_since_boot_is_fine():
    found = wear.estimate("sda", stat_with(0), CARD_32GB, DAY_S)

    assert found.years_left is None
    assert Level.OK == wear_finding(found).level


def test_the_disk_under_a_real_directory_is_found_or_honestly_absent(tmp_path):
    """On this machine's filesystem, either a disk with counters or None."""
    disk = wear.block_device_of(tmp_path)

    if disk is None:
        dev = os.stat(tmp_path).st_dev
        assert not os.path.exists(f"/sys/dev/block/{os.major(dev)}:{os.minor(dev)}")
    else:
        assert (disk / "stat").exists() and (disk / "size").exists()
        assert not (disk / "partition").exists()


@pytest.mark.parametrize(
    ("shown", "level", "words"),
    [
        (
            "LoadState=loaded\nActiveState=active\nSubState=running\nNRestarts=0",
            Level.OK,
            "active (running)",
        ),
        (
            "LoadState=loaded\nActiveState=failed\nSubState=failed\nResult=watchdog",
            Level.FAIL,
            "failed (watchdog)",
        ),
        (
            "LoadState=loaded\nActiveState=inactive\nSubState=dead",
            Level.WARN,
            "inactive (dead)",
        ),
        ("LoadState=not-found\nActiveState=inactive", Level.WARN, "not-found"),
        (
            "LoadState=loaded\nActiveState=active\nSubState=running\nNRestarts=7",
            Level.WARN,
            "restarted 7 times",
        ),
    ],
)
def test_unit_states(shown, level, words):
    finding = unit_finding(parse_properties(shown))

    assert level == finding.level
    assert words in finding.detail
    assert (finding.fix != "") == (level != Level.OK)


def test_the_worst_finding_decides_and_skips_count_as_fine():
    from koprogo_node.doctor.result import fail, skip, warn

    assert Level.OK == worst([ok_finding("a", ""), skip("b", "")])
    assert Level.WARN == worst([ok_finding("a", ""), warn("b", "", "x")])
    assert Level.FAIL == worst([warn("b", "", "x"), fail("c", "", "y")])
