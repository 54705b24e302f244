"""Saved dashboard settings: checked on load, and a damaged file stops the
node with a message saying which file and what is wrong."""

import json

import pytest

from koprogo_node.web import settings_api

from ..daemon.conftest import cli, write_config


def test_saved_values_are_checked_like_api_changes(tmp_path):
    saved = {"min_history_days": 3, "meters": {"sim.water": {"watched": False}}}
    (tmp_path / "settings.json").write_text(json.dumps(saved))

    loaded = settings_api.load(tmp_path)

    assert {"min_history_days": 3} == loaded.values
    assert {"sim.water"} == loaded.unwatched()
    assert "sim.gas" == loaded.label("sim.gas")
    assert settings_api.Saved() == settings_api.load(tmp_path / "absent")


@pytest.mark.parametrize(
    "text",
    [
        '{"water_eur_per_m3": "x"}',
        "{not json",
        '["a list"]',
        '{"nope": 1}',
        '{"meters": {"sim.water": {"watched": "no"}}}',
        '{"meters": ["sim.water"]}',
    ],
)
def test_a_damaged_settings_file_stops_the_node_with_a_clear_error(tmp_path, text):
    data = tmp_path / "data"
    data.mkdir()
    (data / "settings.json").write_text(text)
    config = write_config(tmp_path / "node.toml")

    run = cli("run", "--config", str(config), "--data-dir", str(data))

    assert run.returncode != 0
    assert "settings.json" in run.stderr and "fix or remove the file" in run.stderr
    assert "Traceback" not in run.stderr
