"""Satellite main loop: pulses in, buffering while offline, ordered flush."""

from pathlib import Path

import pytest

from tests.firmware import standin_esp32, standin_machine
from tests.firmware.fake_board import FakeBroker, clocked_board
from tests.firmware.support import example_config

PULSE_PIN = 4


def satellite(root: Path, broker: FakeBroker, **changes):
    from kpsat.app import Satellite

    config = example_config(leak=None, onewire=None, **changes)
    board = clocked_board(config, str(root), broker)
    return Satellite(config, board), board


def pulses(board, n: int) -> None:
    """`n` clean 50 ms pulses on the meter input (active low), IRQ driven."""
    for _ in range(n):
        standin_machine.drive(PULSE_PIN, 0)
        board.ms += 50
        standin_machine.drive(PULSE_PIN, 1)
        board.ms += 50


def test_readings_wait_while_broker_is_down_then_flush_in_order(
    tmp_path: Path,
) -> None:
    """Readings taken offline arrive later, oldest first, none missing."""
    broker = FakeBroker()
    broker.down = True
    sat, board = satellite(tmp_path, broker, interval_s=1)

    sat.run(until=lambda: sat.reports >= 6)
    assert broker.sent == []
    broker.down = False
    sat.run(until=lambda: sat.reports >= 8 and not len(sat.ring))

    seqs = [m["seq"] for m in broker.states()]
    assert seqs == list(range(1, len(seqs) + 1))
    assert len(seqs) >= 8
    assert board.lines.count("link_down") == 1
    assert board.lines.count("link_up") == 1


def test_full_buffer_drops_oldest_and_publishes_the_count(tmp_path: Path) -> None:
    """With room for three, the oldest offline readings go; each state counts them."""
    broker = FakeBroker()
    broker.down = True
    sat, _ = satellite(tmp_path, broker, interval_s=1, buffer_size=3)

    sat.run(until=lambda: sat.reports >= 5)
    broker.down = False
    sat.run(until=lambda: not len(sat.ring))

    states = broker.states()
    dropped = states[0]["dropped"]
    assert dropped >= 2
    assert [m["seq"] for m in states[:3]] == [dropped + 1, dropped + 2, dropped + 3]
    assert {m["dropped"] for m in states} == {dropped}


def test_discovery_is_retained_and_sent_before_states(tmp_path: Path) -> None:
    """The first messages on a connection are the retained discovery documents."""
    broker = FakeBroker()
    sat, _ = satellite(tmp_path, broker)

    sat.run(until=lambda: sat.reports >= 1 and not len(sat.ring))

    topics = [(t, retain) for t, _, retain in broker.sent]
    assert topics[:3] == [
        ("homeassistant/sensor/cellar-1/water/config", True),
        ("homeassistant/sensor/cellar-1/dropped/config", True),
        ("homeassistant/sensor/cellar-1/rssi/config", True),
    ]
    assert topics[3] == ("koprogo-sat/cellar-1/state", False)


def test_irq_pulses_reach_the_payload(tmp_path: Path) -> None:
    """Pulses on the pin between reports show in the next total."""
    broker = FakeBroker()
    sat, board = satellite(tmp_path, broker, interval_s=1)
    sat.run(until=lambda: sat.reports >= 1)

    pulses(board, 1234)
    sat.run(until=lambda: sat.reports >= 2 and not len(sat.ring))

    last = broker.states()[-1]
    assert (last["pulses"], last["water"]) == (1234, "1.234")


def wake(tmp_path: Path, broker: FakeBroker, now_s: int, **changes):
    """Boot once in deep-sleep mode; the DeepSleep it ends with."""
    sat, board = satellite(tmp_path, broker, deep_sleep_s=300, **changes)
    board.now_s = now_s
    with pytest.raises(standin_machine.DeepSleep) as slept:
        sat.run()
    return sat, slept.value


def test_count_survives_deep_sleep_and_pin_wakes(tmp_path: Path) -> None:
    """Pulses, a pulse wake and a timer wake add up; only due wakes publish."""
    broker = FakeBroker()
    sat, board = satellite(tmp_path, broker, deep_sleep_s=300)
    sat.start()
    pulses(board, 5)
    with pytest.raises(standin_machine.DeepSleep):
        sat.wake_cycle()
    sent_first = len(broker.states())

    standin_machine.boot_as(standin_machine.DEEPSLEEP_RESET, standin_machine.EXT0_WAKE)
    _, slept = wake(tmp_path, broker, board.now_s + 100)
    standin_machine.boot_as(standin_machine.DEEPSLEEP_RESET, standin_machine.TIMER_WAKE)
    after, _ = wake(tmp_path, broker, board.now_s + 301)

    assert sent_first == 1
    assert slept.ms == 200_000
    assert [m["pulses"] for m in broker.states()] == [5, 6]
    assert after.counter.count == 6
    assert standin_esp32.ARMED["ext0"] == (PULSE_PIN, 0)


def test_power_cut_resumes_from_flash_without_rewriting_it_often(
    tmp_path: Path,
) -> None:
    """After a power cut the count comes from the file, written only once an hour."""
    broker = FakeBroker()
    sat, board = satellite(tmp_path, broker, interval_s=1, persist_every_s=3600)
    sat.start()
    pulses(board, 7)
    sat.run(until=lambda: sat.reports >= 1)
    pulses(board, 3)
    sat.run(until=lambda: sat.reports >= 30)
    writes = sat.store.file_writes

    standin_machine.boot_as(standin_machine.PWRON_RESET, power_cut=True)
    again, _ = satellite(tmp_path, broker)

    assert writes == 1
    assert again.counter.count == 7
    assert again.state["count"] == 7


def test_soft_reset_keeps_every_pulse_through_rtc_memory(tmp_path: Path) -> None:
    """A reset without power loss resumes from RTC memory, newer than flash."""
    broker = FakeBroker()
    sat, board = satellite(tmp_path, broker, interval_s=1)
    sat.start()
    pulses(board, 7)
    sat.run(until=lambda: sat.reports >= 1)
    pulses(board, 3)
    sat.run(until=lambda: sat.reports >= 2)

    standin_machine.boot_as(standin_machine.PWRON_RESET)
    again, _ = satellite(tmp_path, broker)

    assert again.counter.count == 10
