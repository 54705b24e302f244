"""main.py: a config that cannot be used stops the board with one clear line."""

import importlib.util
import json
from pathlib import Path

import pytest

from tests.firmware.support import FIRMWARE, filled_example


def firmware_main():
    """firmware/main.py loaded as a module, without running it."""
    spec = importlib.util.spec_from_file_location("sat_main", FIRMWARE / "main.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"meter": 5}, "meter: expected an object or null, got 5"),
        ({"meter": [1]}, "meter: expected an object or null, got [1]"),
        ({"interval_s": "60"}, "interval_s: expected a number of seconds"),
        ({"buffer_size": "200"}, "buffer_size: expected a whole number"),
    ],
)
def test_bad_value_is_printed_and_nothing_starts(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    change: dict,
    complaint: str,
) -> None:
    """Values that used to raise TypeError or IndexError now print a refusal."""
    config = tmp_path / "config.json"
    raw = filled_example()
    raw.update(change)
    config.write_text(json.dumps(raw))

    firmware_main().main(str(config))

    out = capsys.readouterr().out
    assert out.startswith("koprogo satellite not started:")
    assert complaint in out


def test_unexpected_error_while_checking_is_a_refusal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error the checks did not foresee still ends in the same clear line."""
    from kpsat import settings

    def broken(raw: object, where: str) -> dict:
        raise IndexError("list index out of range")

    config = tmp_path / "config.json"
    config.write_text(json.dumps(filled_example()))
    monkeypatch.setattr(settings, "check", broken)

    firmware_main().main(str(config))

    out = capsys.readouterr().out
    assert out.startswith("koprogo satellite not started:")
    assert "IndexError: list index out of range" in out
