"""config.json: placeholders refused with a clear message, defaults filled in."""

import json
from pathlib import Path

import pytest

from tests.firmware.support import EXAMPLE, FIRMWARE, filled_example


def test_shipped_example_is_refused_naming_each_placeholder() -> None:
    """The example as shipped cannot start and says which keys to fill in."""
    from kpsat.errors import ConfigError
    from kpsat.settings import load

    with pytest.raises(ConfigError) as caught:
        load(str(EXAMPLE))

    message = str(caught.value)
    assert "still has placeholders in: broker.host, broker.password" in message
    for key in ("wifi.ssid", "wifi.password", "broker.user", "device_id"):
        assert key in message


def test_main_prints_refusal_and_does_not_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """main() with placeholders left prints why and returns without running."""
    import importlib.util

    config = tmp_path / "config.json"
    raw = filled_example()
    raw["broker"]["password"] = "CHANGE-ME"
    config.write_text(json.dumps(raw))
    spec = importlib.util.spec_from_file_location("sat_main", FIRMWARE / "main.py")
    main = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(main)

    main.main(str(config))

    out = capsys.readouterr().out
    assert out.startswith("koprogo satellite not started:")
    assert "placeholders in: broker.password." in out


def test_missing_file_says_what_to_do(tmp_path: Path) -> None:
    """No config.json on the device points at the example."""
    from kpsat.errors import ConfigError
    from kpsat.settings import load

    with pytest.raises(ConfigError, match="copy config.example.json"):
        load(str(tmp_path / "config.json"))


def test_filled_example_gets_defaults() -> None:
    """A filled example passes and gains the defaults it left out."""
    from kpsat.settings import check

    raw = filled_example()
    del raw["retry_max_s"]
    del raw["meter"]["debounce_ms"]

    config = check(raw)

    assert config["retry_max_s"] == 300
    assert config["meter"]["debounce_ms"] == 20
    assert config["broker"]["password"] == "sat-secret"


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"device_id": "cellar 1"}, "device_id must be letters"),
        ({"meter": {"kind": "heat", "pin": 4, "pulses_per_unit": 1}}, "meter.kind"),
        ({"meter": {"pin": 4, "pulses_per_unit": 0.5}}, "whole number"),
        ({"leak": {"debounce_ms": 100}}, "leak.pin"),
    ],
)
def test_invalid_values_are_named(change: dict, complaint: str) -> None:
    """Each wrong value is refused with the key to correct."""
    from kpsat.errors import ConfigError
    from kpsat.settings import check

    raw = filled_example()
    raw.update(change)

    with pytest.raises(ConfigError, match=complaint):
        check(raw)
