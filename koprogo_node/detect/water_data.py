"""Reader for the hourly household water set (henrygustavo/data_set).

The set has no licence, so it is read in place from the shared data folder and
never copied into the project. `consumes.csv` starts with a UTF-8 BOM; times
are naive local wall-clock times, read as if they were UTC so that hour of day
and weekday come out as written (daylight-saving shifts are not modelled).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from koprogo_node.detect.datasets import shared_data_root
from koprogo_node.detect.series import Series

DATASET = "water-consumption-henrygustavo"


def dataset_dir(data_root: Path | None = None) -> Path:
    """Folder of this data set under `data_root` (default: the shared folder)."""
    return (data_root or shared_data_root()) / DATASET


@dataclass(frozen=True, eq=False)
class Household:
    """One user's raw hourly series with the set's per-row fields."""

    user_id: int
    series: Series
    row_ids: np.ndarray
    anomalous: np.ndarray
    at_home: np.ndarray


def naive_to_seconds(text: str) -> float:
    """Seconds since the epoch of a naive 'YYYY-MM-DD hh:mm:ss', read as UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()


def load_households(directory: Path) -> dict[int, Household]:
    """Read consumes.csv into one raw (uncleaned) series per user."""
    columns: dict[int, list[tuple[float, float, int, bool, str]]] = {}
    with open(directory / "data_set" / "consumes.csv", encoding="utf-8-sig") as f:
        for row in csv.DictReader(f):
            columns.setdefault(int(row["userId"]), []).append(
                (
                    naive_to_seconds(row["time"]),
                    float(row["consume"]),
                    int(row["id"]),
                    row["isAnomalous"] == "1",
                    row["isAtHome"],
                )
            )
    return {user: _household(user, rows) for user, rows in sorted(columns.items())}


def _household(user: int, rows: list[tuple[float, float, int, bool, str]]) -> Household:
    """Build a household from its rows in file order."""
    ts, values, ids, anomalous, at_home = zip(*rows)
    return Household(
        user_id=user,
        series=Series.from_values(np.array(ts), np.array(values)),
        row_ids=np.array(ids, dtype=np.int64),
        anomalous=np.array(anomalous, dtype=bool),
        at_home=np.array(at_home),
    )


@dataclass(frozen=True)
class ScenarioRow:
    """One test case of a scenario file."""

    row_id: int
    user_id: int
    ts: float
    consume: float
    at_home: str
    anomalous: bool


def scenario_code(path: Path) -> str:
    """Short code of a scenario file, e.g. 'ACNZ' for ..._ACNZ.json."""
    return path.stem.rsplit("_", 1)[-1]


def load_scenarios(directory: Path) -> dict[str, list[ScenarioRow]]:
    """Read every scenario file, keyed by its code."""
    scenarios = {}
    for path in sorted((directory / "scenarios").glob("*.json")):
        cases = json.loads(path.read_text(encoding="utf-8-sig"))
        scenarios[scenario_code(path)] = [
            ScenarioRow(
                row_id=int(c["id"]),
                user_id=int(c["userId"]),
                ts=naive_to_seconds(c["time"]),
                consume=float(c["consume"]),
                at_home=c["isAtHome"],
                anomalous=bool(c["isAnomalous"]),
            )
            for c in cases
        ]
    return scenarios
