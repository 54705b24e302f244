"""models, alerts and peers commands: refusals are clear and exit as documented."""

import json
import shutil
from pathlib import Path

from ..daemon.conftest import cli

MODELS = Path(__file__).parents[2] / "models"


def test_a_tampered_model_is_listed_with_its_real_digest_and_fails(tmp_path):
    """models list names the file's own digest and exits 1, in JSON too."""
    copy = tmp_path / "models"
    shutil.copytree(MODELS, copy)
    onnx = copy / "water_leak.onnx"
    data = bytearray(onnx.read_bytes())
    data[100] ^= 0xFF
    onnx.write_bytes(bytes(data))
    env = {"KOPROGO_MODELS": str(copy)}

    text = cli("models", "list", env=env)
    as_json = cli("models", "list", "--json", env=env)

    assert text.returncode == 1 and as_json.returncode == 1
    rows = {m["name"]: m for m in json.loads(as_json.stdout)}
    assert rows["water_leak"]["ok"] is False
    assert rows["water_leak"]["file_sha256"] != rows["water_leak"]["sha256"]
    assert rows["water_leak"]["file_sha256"][:16] in text.stdout
    assert rows["anomaly_mlp"]["ok"] is True


def test_an_unknown_alert_is_a_usage_error(tmp_path):
    """Acknowledging an id nobody raised exits 2 and says so."""
    data = tmp_path / "data"
    _ledger(data)

    result = cli("alerts", "ack", "nope", "--data-dir", str(data))

    assert result.returncode == 2
    assert "no alert with id 'nope'" in result.stderr


def test_federation_without_roster_stops_before_opening_anything(tmp_path):
    """The roster is checked before the ledger or the web port is opened."""
    config = tmp_path / "node.toml"
    config.write_text(
        "[web]\nenabled = false\n[federation]\nenabled = true\n"
        f"federation_key = '{'AB' * 32}'\n"
    )
    data = tmp_path / "data"

    result = cli("run", "--config", str(config), "--data-dir", str(data))

    assert result.returncode == 2
    assert "roster" in result.stderr and "cannot be read" in result.stderr
    assert not (data / "ledger.db").exists()


def test_banning_a_stranger_works_but_says_so(tmp_path):
    """A pre-emptive ban is kept, with a note that the peer was never seen."""
    data = tmp_path / "data"
    _ledger(data)
    stranger = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"

    banned = cli("peers", "ban", stranger, "--data-dir", str(data))
    listed = json.loads(cli("peers", "list", "--json", "--data-dir", str(data)).stdout)

    assert banned.returncode == 0
    assert "never heard from that peer" in banned.stderr
    assert listed["peers"] == [
        {"peer_id": stranger, "connected": False, "banned": True}
    ]


def _ledger(data: Path) -> None:
    """An empty but real ledger, made by the ledger's own writer."""
    import asyncio

    from koprogo_node.config.model import LedgerConfig
    from koprogo_node.ledger.stats import IngestStats
    from koprogo_node.ledger.writer import LedgerWriter

    from ..ledger.conftest import FakeClock

    async def make():
        data.mkdir(parents=True)
        writer = LedgerWriter(data, LedgerConfig(), FakeClock(), "b", IngestStats())
        await writer.open()
        await writer.close()

    asyncio.run(make())
