"""Configuration is validated once, and errors name the key and the fix."""

from pathlib import Path

import pytest

from koprogo_node.config import load
from koprogo_node.errors import ConfigError

EXAMPLE = Path(__file__).parents[2] / "config" / "node.example.toml"


def test_example_file_is_valid():
    """The documented example configuration loads."""
    cfg = load(EXAMPLE)

    assert cfg.ledger.batch_ms == 30_000


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[ledger]\nbatch_rows = 0\n", "ledger.batch_rows: got 0, must be at least 1"),
        ("[web]\nport = 'x'\n", "web.port: expected an integer, got 'x'"),
        ("[[sources]]\ntype = 'p2'\n", "sources[0].type: got 'p2', expected one of"),
        ("[[sources]]\ntype = 'p1'\n", "sources[0]: path is required"),
        ("[nodes]\n", "nodes: unknown key"),
        ("[log]\nlevel = 'loud'\n", "log.level: got 'loud', expected one of"),
        ("[ledger\n", "not valid TOML"),
        ("[federation]\nenabled = true\n", "federation_key is required"),
        ("[federation]\npublish = ['week']\n", "unknown tier 'week'"),
        ("[federation]\nfederation_key = 'AB'\n", "64 hex digits"),
        ("[federation.privacy]\nlot_pattern = 'lot['\n", "not a regular expr"),
        ("[federation.privacy]\nmax_lot_share = 2\n", "must be at most 1"),
        ("[building]\npostcode = '105'\n", "building.postcode: got '105'"),
        ("[building]\nheating = 'coal'\n", "building.heating: got 'coal'"),
    ],
)
def test_invalid_file_names_key_value_and_allowed(tmp_path, text, message):
    """Each invalid file fails with the key path, the bad value and what is allowed."""
    path = tmp_path / "node.toml"
    path.write_text(text)

    with pytest.raises(ConfigError) as caught:
        load(path)

    assert message in str(caught.value)


def test_config_show_round_trips_and_masks_secrets(tmp_path):
    """`config show` prints TOML that validates again, with the key masked."""
    from ..daemon.conftest import cli

    given = tmp_path / "node.toml"
    key = "0" * 32
    given.write_text(
        f'[[sources]]\ntype = "p1"\npath = "/dev/ttyUSB0"\nspec = "luxembourg"\n'
        f'decryption_key = "{key}"\n'
    )
    shown = tmp_path / "shown.toml"

    result = cli("config", "show", "--config", str(given))
    shown.write_text(result.stdout)
    again = cli("config", "validate", str(shown))

    assert result.returncode == 0
    assert key not in result.stdout
    assert 'decryption_key = "********"' in result.stdout
    assert again.returncode == 2  # a masked key is not a key: validate says so
    assert "decryption_key" in again.stderr
