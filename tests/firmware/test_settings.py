"""config.json: placeholders and bad values refused by name, defaults filled in."""

import copy
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


def changed(dotted: str, value: object) -> dict:
    """The filled example with the value at `dotted` (a.b for nested) replaced."""
    raw = filled_example()
    node = raw
    *parents, last = dotted.split(".")
    for part in parents:
        node = node[part]
    node[last] = value
    return raw


LONG_ID = "a" * 200

# (dotted key, bad value, a fragment of the refusal)
BAD_VALUES = [
    ("interval_s", "60", "interval_s: expected a number of seconds above 0"),
    ("interval_s", 0, "interval_s: expected a number"),
    ("interval_s", float("nan"), "interval_s: expected a number"),
    ("interval_s", float("inf"), "interval_s: expected a number"),
    ("interval_s", True, "interval_s: expected a number"),
    ("buffer_size", "200", "buffer_size: expected a whole number >= 1, got '200'"),
    ("buffer_size", 0, "buffer_size: expected a whole number >= 1"),
    ("meter", 5, "meter: expected an object or null, got 5"),
    ("meter", [1], "meter: expected an object or null, got [1]"),
    ("leak", "yes", "leak: expected an object or null"),
    ("broker", [], "broker: expected an object, got []"),
    ("deep_sleep_s", -1, "deep_sleep_s: expected a whole number from 0 to 86400"),
    ("deep_sleep_s", "900", "deep_sleep_s: expected a whole number"),
    ("persist_every_s", -5, "persist_every_s: expected a whole number from 60"),
    ("wifi_timeout_s", -1, "wifi_timeout_s: expected a whole number from 1"),
    ("broker.timeout_s", -1, "broker.timeout_s: expected a number of seconds"),
    ("retry_max_s", 0, "retry_max_s: expected a whole number from 1 to 86400"),
    (
        "broker.port",
        "1883",
        "broker.port: expected a whole number from 1 to 65535, got '1883'",
    ),
    ("broker.port", 70000, "broker.port: expected a whole number from 1 to 65535"),
    ("broker.port", 1883.0, "broker.port: expected a whole number"),
    ("broker.keepalive_s", -1, "broker.keepalive_s: expected a whole number"),
    ("broker.host", 5, "broker.host: expected text, got 5"),
    ("wifi.ssid", ["net"], "wifi.ssid: expected text"),
    ("meter.pin", -1, "meter.pin: expected a GPIO number from 0 to 48"),
    ("meter.pin", 999, "meter.pin: expected a GPIO number from 0 to 48"),
    ("meter.pin", True, "Pico W 0-28), got True"),
    ("leak.pin", "5", "leak.pin: expected a GPIO number"),
    ("onewire.pin", None, "onewire.pin: expected a GPIO number"),
    ("meter.pulses_per_unit", True, "meter.pulses_per_unit: expected a whole number"),
    ("meter.pulses_per_unit", 0.5, "meter.pulses_per_unit: expected a whole number"),
    ("meter.debounce_ms", -20, "meter.debounce_ms: expected a whole number from 0"),
    ("leak.debounce_ms", -1, "leak.debounce_ms: expected a whole number from 0"),
    ("meter.active_low", 1, "meter.active_low: expected true or false, got 1"),
    ("leak.active_high", "true", "leak.active_high: expected true or false"),
    ("meter.kind", "heat", "meter.kind: expected one of electricity, gas, water"),
    ("meter.kind", ["water"], "meter.kind: expected one of"),
    ("leak.pin", 4, "leak.pin: GPIO 4 is already meter.pin"),
    ("onewire.pin", 4, "onewire.pin: GPIO 4 is already meter.pin"),
    ("onewire.pin", 5, "onewire.pin: GPIO 5 is already leak.pin"),
    ("intervall_s", 30, "unknown key 'intervall_s' (did you mean 'interval_s'?)"),
    (
        "meter.pulse_per_unit",
        1000,
        "unknown key 'meter.pulse_per_unit' (did you mean 'meter.pulses_per_unit'?)",
    ),
    ("broker.tls", True, "unknown key 'broker.tls'"),
    ("comment", "x", "unknown key 'comment'"),
    ("device_id", "cellar 1", "device_id: expected 1 to 32 letters, digits"),
    ("device_id", LONG_ID, "device_id: expected 1 to 32 letters"),
    ("device_id", 5, "device_id: expected 1 to 32 letters, digits, '-' or '_', got 5"),
    ("discovery_prefix", "home#", "discovery_prefix: expected MQTT topic levels"),
    ("discovery_prefix", "home/+/x", "discovery_prefix: expected MQTT topic levels"),
    ("discovery_prefix", "home//x", "discovery_prefix: expected MQTT topic levels"),
    ("discovery_prefix", "homeassistant/", "discovery_prefix: expected MQTT topic"),
    ("discovery_prefix", "", "discovery_prefix: expected MQTT topic levels"),
    ("ntp_host", 0, "ntp_host: expected text, got 0"),
    ("onewire.conversion_ms", "750", "onewire.conversion_ms: expected a whole number"),
]


@pytest.mark.parametrize(("key", "value", "complaint"), BAD_VALUES)
def test_bad_value_is_refused_naming_key_and_expectation(
    key: str, value: object, complaint: str
) -> None:
    """Each wrong value gives a ConfigError saying which key and what it needs."""
    from kpsat.errors import ConfigError
    from kpsat.settings import check

    raw = changed(key, value)

    with pytest.raises(ConfigError) as caught:
        check(raw)

    message = str(caught.value)
    assert message.startswith("config.json: ")
    assert complaint in message


def test_long_value_is_cut_short_in_the_message() -> None:
    """A 200-character device_id is refused without flooding the console."""
    from kpsat.errors import ConfigError
    from kpsat.settings import check

    with pytest.raises(ConfigError) as caught:
        check(changed("device_id", LONG_ID))

    assert len(str(caught.value)) < 150


def test_every_problem_is_named_at_once() -> None:
    """Several bad values are reported together, so one edit can fix them all."""
    from kpsat.errors import ConfigError
    from kpsat.settings import check

    raw = changed("broker.port", "1883")
    raw["meter"]["pin"] = 999

    with pytest.raises(ConfigError) as caught:
        check(raw)

    message = str(caught.value)
    assert "broker.port: expected" in message
    assert "meter.pin: expected" in message


def test_section_without_pin_is_refused() -> None:
    """A leak section without its pin names leak.pin."""
    from kpsat.errors import ConfigError
    from kpsat.settings import check

    raw = changed("leak", {"debounce_ms": 100})

    with pytest.raises(ConfigError, match="leak.pin: expected a GPIO number"):
        check(raw)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("meter", None),
        ("leak", None),
        ("onewire", None),
        ("interval_s", 0.3),
        ("broker.timeout_s", 2.5),
        ("broker.keepalive_s", 0),
        ("deep_sleep_s", 900),
        ("meter.pin", 0),
        ("meter.pin", 48),
        ("meter.kind", "electricity"),
        ("device_id", "a" * 32),
        ("discovery_prefix", "ha/discovery"),
        ("ntp_host", "pool.ntp.org"),
    ],
)
def test_good_edge_values_are_accepted(key: str, value: object) -> None:
    """Values at the edges of what is allowed pass unchanged."""
    from kpsat.settings import check

    config = check(changed(key, value))

    node = config
    for part in key.split("."):
        node = node[part]
    assert node == value


def test_sections_left_out_stay_off() -> None:
    """meter, leak and onewire left out are None after the check."""
    from kpsat.settings import check

    raw = filled_example()
    for key in ("meter", "leak", "onewire"):
        del raw[key]

    config = check(raw)

    assert (config["meter"], config["leak"], config["onewire"]) == (None, None, None)


def test_check_leaves_its_input_alone() -> None:
    """Defaults go into the result, not into the dict that was passed."""
    from kpsat.settings import check

    raw = filled_example()
    del raw["broker"]["timeout_s"]
    before = copy.deepcopy(raw)

    check(raw)

    assert raw == before


def test_load_turns_an_unexpected_error_into_a_refusal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever check() raises, load() raises a ConfigError saying what happened."""
    from kpsat import settings
    from kpsat.errors import ConfigError

    def broken(raw: object, where: str) -> dict:
        raise TypeError("unorderable")

    config = tmp_path / "config.json"
    config.write_text(json.dumps(filled_example()))
    monkeypatch.setattr(settings, "check", broken)

    with pytest.raises(ConfigError, match="cannot be used .TypeError: unorderable"):
        settings.load(str(config))


try:
    from hypothesis import given
    from hypothesis import settings as hsettings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover - the property test needs hypothesis
    given = None

KEYS = [
    "device_id",
    "wifi",
    "wifi.ssid",
    "wifi.password",
    "broker",
    "broker.host",
    "broker.port",
    "broker.user",
    "broker.password",
    "broker.keepalive_s",
    "broker.timeout_s",
    "meter",
    "meter.kind",
    "meter.pin",
    "meter.pulses_per_unit",
    "meter.active_low",
    "meter.debounce_ms",
    "leak",
    "leak.pin",
    "leak.active_high",
    "leak.debounce_ms",
    "onewire",
    "onewire.pin",
    "onewire.conversion_ms",
    "interval_s",
    "deep_sleep_s",
    "buffer_size",
    "persist_every_s",
    "wifi_timeout_s",
    "retry_max_s",
    "ntp_host",
    "discovery_prefix",
    "intervall_s",
    "meter.pulse_per_unit",
]

if given is not None:
    JSON_VALUES = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(st.text(max_size=10), inner, max_size=4)
        ),
        max_leaves=10,
    )

    @hsettings(max_examples=400, deadline=None)
    @given(
        st.lists(st.tuples(st.sampled_from(KEYS), JSON_VALUES), min_size=1, max_size=4)
    )
    def test_any_json_value_gives_a_config_or_a_config_error(changes: list) -> None:
        """Random JSON at random keys of a valid config never escapes as a crash."""
        from kpsat.errors import ConfigError
        from kpsat.settings import check

        raw = filled_example()
        for dotted, value in changes:
            *parents, last = dotted.split(".")
            node = raw
            for part in parents:
                if not isinstance(node.get(part), dict):
                    node[part] = {}
                node = node[part]
            node[last] = value

        try:
            config = check(raw)
        except ConfigError as exc:
            assert str(exc).startswith("config.json")
        else:
            sections = [config[key] for key in ("meter", "leak", "onewire")]
            pins = [section["pin"] for section in sections if section is not None]
            assert len(set(pins)) == len(pins)

    @hsettings(max_examples=200, deadline=None)
    @given(JSON_VALUES)
    def test_any_json_document_gives_a_config_or_a_config_error(raw: object) -> None:
        """A config.json holding any JSON at all is used or refused, never a crash."""
        from kpsat.errors import ConfigError
        from kpsat.settings import check

        try:
            check(raw)
        except ConfigError:
            pass

else:

    def test_any_json_value_gives_a_config_or_a_config_error() -> None:
        """Needs hypothesis to generate the values."""
        pytest.skip("hypothesis is not installed")
